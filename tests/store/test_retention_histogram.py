"""CPU usage histograms of the rollups: compact, additive, subtractable, and percentiles within 4.4 %."""

from __future__ import annotations

import math
import random

import pytest

from shared.store.histograms import MAX_RELATIVE_ERROR, from_blob, nearest_rank, pack_values, percentile, to_blob
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def test_histograms_of_separate_hours_add_up_to_the_histogram_of_all_of_them():
    rng = random.Random(4)
    hours = [[rng.lognormvariate(4, 1.5) for _ in range(rng.randint(1, 600))] for _ in range(50)]

    stored = [to_blob(pack_values(values)) for values in hours]

    assert sum(from_blob(blob) for blob in stored) == pack_values([value for values in hours for value in values])


def test_a_running_total_minus_an_earlier_one_leaves_the_days_in_between():
    week, day = [0, 0, 3, 120, 130, 131, 4000, 70_000] * 500, [5, 5, 900]
    before, after = to_blob(pack_values(week)), to_blob(pack_values(week) + pack_values(day))

    between = from_blob(after) - from_blob(before)

    assert between == pack_values(day)
    assert [percentile(between, p) for p in (1, 50, 100)] == [percentile(pack_values(day), p) for p in (1, 50, 100)]


def test_percentiles_are_within_the_documented_relative_error():
    rng = random.Random(5)
    values = sorted(int(rng.lognormvariate(5, 2)) for _ in range(5000))
    histogram = from_blob(to_blob(pack_values(values)))

    for percent in (50, 90, 95, 99, 100):
        exact = nearest_rank(values, percent)
        assert exact == values[math.ceil(percent / 100 * len(values)) - 1]
        estimate = percentile(histogram, percent)
        assert abs(estimate - exact) <= MAX_RELATIVE_ERROR * exact, (percent, exact, estimate)


def test_idle_usage_is_reported_as_zero_and_an_empty_histogram_has_no_percentile():
    assert percentile(pack_values([0, 0, 0.5]), 95) == 0.0
    assert to_blob(pack_values([])) is None and from_blob(None) == 0
    assert percentile(from_blob(None), 95) is None and nearest_rank([], 95) is None


def test_counts_too_large_for_one_byte_survive_storage():
    histogram = pack_values([250] * 1000 + [3] * 255 + [0] * 70_000)

    assert from_blob(to_blob(histogram)) == histogram


def test_an_hour_of_one_container_takes_a_few_bytes():
    assert len(to_blob(pack_values(range(100, 112)))) <= 24

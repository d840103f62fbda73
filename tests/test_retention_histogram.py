"""The CPU usage histogram of hourly rollups: compact, additive, and percentiles within 4.4 %."""

from __future__ import annotations

import math
import random
from collections import Counter

from shared.usage_histogram import MAX_RELATIVE_ERROR, bucket_index, decode, encode, histogram_of, merge, percentile


def test_histograms_of_separate_hours_add_up_to_the_histogram_of_all_of_them():
    rng = random.Random(4)
    hours = [[rng.lognormvariate(4, 1.5) for _ in range(rng.randint(1, 600))] for _ in range(50)]

    merged = merge(histogram_of(values) for values in hours)

    assert merged == decode(histogram_of([value for values in hours for value in values]))
    assert sum(merged.values()) == sum(len(values) for values in hours)


def test_percentiles_are_within_the_documented_relative_error():
    rng = random.Random(5)
    values = sorted(int(rng.lognormvariate(5, 2)) for _ in range(5000))
    counts = merge([histogram_of(values)])

    for percent in (50, 90, 95, 99, 100):
        exact = values[math.ceil(percent / 100 * len(values)) - 1]
        estimate = percentile(counts, percent)
        assert abs(estimate - exact) <= MAX_RELATIVE_ERROR * exact, (percent, exact, estimate)


def test_idle_usage_is_reported_as_zero_and_an_empty_histogram_has_no_percentile():
    assert percentile(merge([histogram_of([0, 0, 0.5])]), 95) == 0.0
    assert percentile(merge([None, b""]), 95) is None


def test_counts_above_one_byte_survive_encoding():
    counts = Counter({bucket_index(250): 1000, bucket_index(3): 255, 0: 256})

    assert decode(encode(counts)) == counts
    assert len(encode(counts)) == 2 * (4 + 1 + 2)


def test_an_hour_of_one_container_takes_a_few_bytes():
    assert len(histogram_of(range(100, 112))) <= 24

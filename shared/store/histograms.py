"""CPU usage percentiles: exact over raw samples, or from log-bucket histograms kept in the rollups.

An exact percentile over many days needs every raw sample, which retention deletes after
RETENTION_RAW_DAYS. Each hourly and daily rollup therefore keeps how many of its CPU samples fell in
each of a fixed set of logarithmic buckets; the histograms of any set of hours or days add up, and a
percentile of the sum is exact in rank and approximate in value only by the width of one bucket.

Buckets: index 0 holds values below 1 millicore (idle containers report 0); index i >= 1 holds
[GROWTH**(i-1), GROWTH**i) millicores with GROWTH = 2**(1/8). A percentile is reported as the
geometric middle of its bucket, so it is within a factor of 2**(1/16) of the true value: at most
4.4 % off (0 for the first bucket). Index 255 reaches 2**31.9 millicores, far beyond any node.

In memory a histogram is one Python integer, bucket i being the 64-bit field at bit 64*i, so adding
the histograms of a thousand rows costs a thousand `+`, and subtracting an earlier running total
from a later one leaves the counts in between (no field goes below zero, so nothing borrows).
Stored (a BLOB, NULL when empty): the lowest used bucket, the bytes per count (1, 2, 4 or 8: the
fewest that hold the largest count), then the counts from that bucket on, little-endian: 7-30 bytes
for an hour of a container's samples in the benchmarks and tests, less than (index, count) pairs.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import accumulate

GROWTH = 2 ** (1 / 8)
MAX_INDEX = 255
MAX_RELATIVE_ERROR = 2 ** (1 / 16) - 1
FIELD_BITS = 64
_LOG_GROWTH = math.log(GROWTH)
_ARRAY_TYPES = {1: "B", 2: "H", 4: "I", 8: "Q"}


def nearest_rank(sorted_values: Sequence[float], percent: float) -> float | None:
    """The exact nearest-rank percentile (0 < percent <= 100) of sorted values; None when empty."""
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values), max(1, math.ceil(len(sorted_values) * percent / 100))) - 1]


def pack_values(values_millicores: Iterable[float]) -> int:
    """The histogram of some usage values."""
    return sum(count << (FIELD_BITS * index)
               for index, count in Counter(_bucket_index(value) for value in values_millicores).items())


def to_blob(histogram: int) -> bytes | None:
    """The stored form of a histogram (the `cpu_usage_histogram` columns); None when empty."""
    if histogram <= 0:
        return None
    fields = _counts(histogram)
    offset = next(index for index, count in enumerate(fields) if count)
    width = next(size for size in (1, 2, 4, 8) if max(fields) < 1 << (8 * size))
    stored = _native(array(_ARRAY_TYPES[width], fields[offset:]))
    return bytes((offset, width)) + stored.tobytes()


def from_blob(blob: bytes | None) -> int:
    """A stored histogram back in memory form; 0 (empty) for NULL."""
    if not blob:
        return 0
    stored = array(_ARRAY_TYPES[blob[1]])
    stored.frombytes(blob[2:])
    wide = _native(array("Q", _native(stored)))
    return int.from_bytes(wide.tobytes(), "little") << (FIELD_BITS * blob[0])


def percentile(histogram: int, percent: float) -> float | None:
    """Nearest-rank percentile (0 < percent <= 100) in millicores: the geometric middle of the bucket
    holding that rank (0 for the first bucket); None when the histogram is empty."""
    seen = list(accumulate(_counts(histogram)))  # samples up to and including each bucket
    samples = seen[-1] if seen else 0
    if samples == 0:
        return None
    rank = min(samples, max(1, math.ceil(percent / 100 * samples)))
    index = bisect_left(seen, rank)  # the first bucket holding that rank
    return 0.0 if index == 0 else GROWTH ** (index - 0.5)


def _bucket_index(millicores: float) -> int:
    if millicores < 1:
        return 0
    return min(MAX_INDEX, int(math.log(millicores) / _LOG_GROWTH) + 1)


def _counts(histogram: int) -> list[int]:
    """Bucket counts, index 0 first, up to the highest used bucket."""
    if histogram <= 0:
        return []
    fields = array("Q")
    fields.frombytes(histogram.to_bytes(-(-histogram.bit_length() // FIELD_BITS) * 8, "little"))
    return _native(fields).tolist()


def _native(fields: array) -> array:
    """Little-endian storage order <-> this machine's order (a no-op on x86 and ARM)."""
    if sys.byteorder == "big":
        fields.byteswap()
    return fields

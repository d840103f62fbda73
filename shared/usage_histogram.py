"""A compact fixed log-bucket histogram of CPU usage, kept in each hourly rollup.

An exact percentile over many days needs every raw sample, which retention deletes after
RETENTION_RAW_DAYS. Each hourly rollup therefore keeps how many of its samples fell in each of a
fixed set of logarithmic buckets; the histograms of any set of hours add up, and a percentile of
the sum is exact in rank and approximate in value only by the width of one bucket.

Buckets: index 0 holds values below 1 millicore (idle containers report 0); index i >= 1 holds
[GROWTH**(i-1), GROWTH**i) millicores with GROWTH = 2**(1/8). A percentile is reported as the
geometric middle of its bucket, so it is within a factor of 2**(1/16) of the true value: at most
4.4 % off (0 for the first bucket). Index 255 reaches 2**31.9 millicores, far beyond any node.

Encoding: (index, count) byte pairs sorted by index; a count above 255 repeats the pair. An hour of
12 samples of one container takes at most 24 bytes.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate

GROWTH = 2 ** (1 / 8)
MAX_INDEX = 255
MAX_RELATIVE_ERROR = 2 ** (1 / 16) - 1
_LOG_GROWTH = math.log(GROWTH)


def bucket_index(millicores: float) -> int:
    """The bucket a usage value falls in."""
    if millicores < 1:
        return 0
    return min(MAX_INDEX, int(math.log(millicores) / _LOG_GROWTH) + 1)


def bucket_value(index: int) -> float:
    """The value a bucket stands for: 0 for the first, else the geometric middle of its bounds."""
    return 0.0 if index == 0 else GROWTH ** (index - 0.5)


def encode(counts: Counter[int]) -> bytes:
    """Bucket counts as the byte pairs stored in `hourly_rollups.cpu_usage_histogram`."""
    out = bytearray()
    for index in sorted(counts):
        remaining = counts[index]
        while remaining > 0:
            step = min(remaining, 255)
            out += bytes((index, step))
            remaining -= step
    return bytes(out)


def decode(blob: bytes | None) -> Counter[int]:
    counts: Counter[int] = Counter()
    if blob:
        for position in range(0, len(blob) - 1, 2):
            counts[blob[position]] += blob[position + 1]
    return counts


def histogram_of(values_millicores: Iterable[float]) -> bytes:
    """The encoded histogram of some usage values."""
    return encode(Counter(bucket_index(value) for value in values_millicores))


def merge(blobs: Iterable[bytes | None]) -> Counter[int]:
    """The sum of several stored histograms (for example every hour of a week)."""
    total: Counter[int] = Counter()
    for blob in blobs:
        total.update(decode(blob))
    return total


def percentile(counts: Counter[int], percent: float) -> float | None:
    """Nearest-rank percentile (0 < percent <= 100) of a histogram, in millicores; None when empty."""
    indexes = sorted(index for index, count in counts.items() if count > 0)
    cumulative = list(accumulate(counts[index] for index in indexes))
    if not cumulative:
        return None
    rank = min(cumulative[-1], max(1, math.ceil(percent / 100 * cumulative[-1])))
    return bucket_value(indexes[bisect_left(cumulative, rank)])

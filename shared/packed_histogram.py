"""CPU usage histograms packed into one Python integer, so adding many of them costs one `+` each.

The buckets are those of shared/usage_histogram.py (the hourly rollups' histograms), so a percentile
read here is within the same 4.4 % of the true value. Bucket i is the 64-bit field at bit 64*i: adding
two packed histograms adds every bucket at once, and subtracting an earlier cumulative histogram from
a later one leaves the counts in between (no field ever goes below zero, so nothing borrows).

Stored form (a BLOB, NULL when empty): the lowest used bucket, the bytes per count (1, 2, 4 or 8:
the fewest that hold the largest count), then the counts from that bucket on, little-endian.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import Counter
from collections.abc import Iterable

from shared.usage_histogram import bucket_index, bucket_value

FIELD_BITS = 64
_ARRAY_TYPES = {1: "B", 2: "H", 4: "I", 8: "Q"}


def pack_values(values_millicores: Iterable[float]) -> int:
    """The packed histogram of some usage values."""
    return sum(count << (FIELD_BITS * index)
               for index, count in Counter(bucket_index(value) for value in values_millicores).items())


def pack_pairs(blob: bytes | None) -> int:
    """An hourly rollup's (index, count) byte-pair histogram (shared/usage_histogram.py), packed."""
    total = 0
    if blob:
        for position in range(0, len(blob) - 1, 2):
            total += blob[position + 1] << (FIELD_BITS * blob[position])
    return total


def counts(packed: int) -> list[int]:
    """Bucket counts, index 0 first, up to the highest used bucket."""
    if packed <= 0:
        return []
    fields = array("Q")
    fields.frombytes(packed.to_bytes(-(-packed.bit_length() // FIELD_BITS) * 8, "little"))
    return _native(fields).tolist()


def to_blob(packed: int) -> bytes | None:
    if packed <= 0:
        return None
    fields = counts(packed)
    offset = next(index for index, count in enumerate(fields) if count)
    width = next(size for size in (1, 2, 4, 8) if max(fields) < 1 << (8 * size))
    stored = _native(array(_ARRAY_TYPES[width], fields[offset:]))
    return bytes((offset, width)) + stored.tobytes()


def from_blob(blob: bytes | None) -> int:
    if not blob:
        return 0
    stored = array(_ARRAY_TYPES[blob[1]])
    stored.frombytes(blob[2:])
    wide = _native(array("Q", _native(stored)))
    return int.from_bytes(wide.tobytes(), "little") << (FIELD_BITS * blob[0])


def _native(fields: array) -> array:
    """Little-endian storage order <-> this machine's order (a no-op on x86 and ARM)."""
    if sys.byteorder == "big":
        fields.byteswap()
    return fields


def total(packed: int) -> int:
    return sum(counts(packed))


def percentile(packed: int, percent: float) -> float | None:
    """Nearest-rank percentile (0 < percent <= 100) in millicores, as usage_histogram.percentile."""
    buckets = counts(packed)
    samples = sum(buckets)
    if samples == 0:
        return None
    rank = min(samples, max(1, math.ceil(percent / 100 * samples)))
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return bucket_value(index)
    raise AssertionError("unreachable: the rank is at most the number of samples")

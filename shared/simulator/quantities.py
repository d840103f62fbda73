"""Exact Kubernetes quantity spellings: the many ways real manifests write the same amount.

The simulated API serves requests and limits in mixed spellings ("250m" and "0.25", "512Mi" and
"0.5Gi", "1G" and "1e9") so the collector's parser meets them all. Every spelling offered here
parses back to exactly the integer it was made from; inexact ones such as "0.1Gi" are never offered.
"""

from __future__ import annotations

import zlib
from decimal import Decimal

_BINARY_SUFFIXES = (("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10))
_DECIMAL_SUFFIXES = (("T", 12), ("G", 9), ("M", 6), ("k", 3))


def cpu_spellings(millicores: int) -> tuple[str, ...]:
    """Spellings of a CPU amount: "1500m" and "1.5", "2000m" and "2"."""
    cores = format((Decimal(millicores) / 1000).normalize(), "f")
    return (f"{millicores}m", cores)


def memory_spellings(amount_bytes: int) -> tuple[str, ...]:
    """Spellings of a byte amount: plain, binary and decimal suffixes, fractions of Gi, exponents."""
    spellings = [str(amount_bytes)]
    binary = [(suffix, shift) for suffix, shift in _BINARY_SUFFIXES if amount_bytes % (1 << shift) == 0]
    spellings += [f"{amount_bytes >> shift}{suffix}" for suffix, shift in binary[:2]]
    if amount_bytes % (1 << 30) and amount_bytes % (1 << 27) == 0:
        spellings.append(format(Decimal(amount_bytes) / (1 << 30), "f") + "Gi")  # 0.5Gi, 0.125Gi, 1.5Gi
    decimal = [(suffix, power) for suffix, power in _DECIMAL_SUFFIXES if amount_bytes % 10**power == 0]
    if decimal:
        suffix, power = decimal[0]
        spellings.append(f"{amount_bytes // 10**power}{suffix}")
        spellings.append(f"{amount_bytes // 10**power}e{power}")
    return tuple(dict.fromkeys(spellings))


def pick_spelling(spellings: tuple[str, ...], *salt: str) -> str:
    """One of `spellings`, chosen by a stable hash of `salt` so every response spells it alike."""
    return spellings[zlib.crc32("/".join(salt).encode()) % len(spellings)]

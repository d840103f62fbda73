"""Exact parsing of Kubernetes resource quantities ("250m", "0.5", "1e3", "128Mi", "1G", "0.1Gi").

Quantities are parsed with Decimal, never float, so "0.1Gi" is exactly 107374182.4 bytes before
rounding up to a whole byte as the API server does, and "100m" CPU is exactly 100 millicores.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<exponent>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """The exact value of a quantity in base units (cores or bytes)."""
    if isinstance(text, (int, float)):
        return Decimal(str(text))
    match = _QUANTITY.match(text.strip())
    if not match:
        raise QuantityError(f"not a Kubernetes quantity: {text!r}")
    try:
        number = Decimal(match["number"])
        if match["exponent"]:
            return number.scaleb(int(match["exponent"][1:]))
        return number * _SUFFIX[match["suffix"] or ""]
    except InvalidOperation:
        raise QuantityError(f"not a Kubernetes quantity: {text!r}") from None


def cpu_millicores(text: str | int | float) -> int:
    """CPU quantity in whole millicores, rounded up as the API server rounds (1 core = 1000)."""
    return int((parse_quantity(text) * 1000).to_integral_value(rounding=ROUND_CEILING))


def memory_bytes(text: str | int | float) -> int:
    """Memory quantity in whole bytes, rounded up."""
    return int(parse_quantity(text).to_integral_value(rounding=ROUND_CEILING))

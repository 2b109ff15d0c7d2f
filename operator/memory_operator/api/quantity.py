"""Kubernetes resource quantities ("512Mi", "1G", 1048576) as bytes."""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["QUANTITY_PATTERN", "parse_bytes"]

_SUFFIXES = {
    "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
_QUANTITY = re.compile(QUANTITY_PATTERN)


def parse_bytes(value: int | str) -> int:
    """Whole bytes for a quantity; fractions round up (a quota is never smaller than written)."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a quantity such as 512Mi, 2G or 1048576")
    number, suffix = value.strip()[: match.start(2) if match.group(2) else None], match.group(2) or ""
    exact = Decimal(number) * _SUFFIXES[suffix]
    return int(exact.to_integral_value(rounding="ROUND_CEILING"))

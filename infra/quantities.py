"""Kubernetes resource quantities (`"500m"`, `"1.5"`, `"512Mi"`, `"10Gi"`) as exact numbers.

The tenant namespace's ResourceQuota is derived from a cluster's `Size` (one node's CPU, memory
and storage times its replicas, plus room for one extra pod), so the quantities in a spec have
to be parsed, multiplied and written back. Parsing also rejects a malformed size before
anything reaches Pulumi: a bad quantity is an invalid spec, which the driver reports as a
permanent error rather than a failed `pulumi up` minutes later.

Only the suffixes Kubernetes accepts are understood (decimal SI `k M G T P E`, binary
`Ki Mi Gi Ti Pi Ei`, and `m` for thousandths); exponents (`1e3`) are refused as unusual in
hand-written sizes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>m|k|Ki|[MGTPE]i?)?$")


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity, or one out of range for its use."""


def parse_quantity(value: str) -> Decimal:
    """The quantity's value in base units (cores, bytes): `"500m"` -> 0.5, `"1Gi"` -> 2**30."""
    match = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. '500m', '1Gi')")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{value!r} is not a number") from exc
    suffix = match["suffix"] or ""
    if suffix == "m":
        return number / 1000
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number


def cpu_millis(value: str) -> int:
    """CPU in millicores, which must be a positive whole number (`"0.5"` -> 500)."""
    millis = parse_quantity(value) * 1000
    if millis <= 0 or millis != millis.to_integral_value():
        raise QuantityError(f"cpu {value!r} must be a positive multiple of 1m")
    return int(millis)


def byte_count(value: str) -> int:
    """Memory or storage in bytes, which must be a positive whole number."""
    amount = parse_quantity(value)
    if amount <= 0 or amount != amount.to_integral_value():
        raise QuantityError(f"{value!r} must be a positive whole number of bytes")
    return int(amount)


def format_cpu(millis: int) -> str:
    """Millicores back to a quantity: whole cores as `"2"`, otherwise `"1500m"`."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_bytes(count: int) -> str:
    """Bytes back to the largest binary suffix that divides them exactly (`"3Gi"`)."""
    for suffix, factor in sorted(_BINARY.items(), key=lambda item: -item[1]):
        if count % factor == 0:
            return f"{count // factor}{suffix}"
    return str(count)

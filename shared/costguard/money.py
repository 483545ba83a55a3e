"""Money is `decimal.Decimal` end to end; these are the only conversions."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO = Decimal("0.000001")
ZERO = Decimal(0)
MILLION = Decimal(1_000_000)


def parse_usd(value: str | int | Decimal) -> Decimal:
    """A finite decimal from a string or int; floats are refused on purpose."""
    if isinstance(value, float | bool):
        raise TypeError("money must be a decimal string, never a float")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return amount


def format_usd(amount: Decimal) -> str:
    """At least six decimals, more when the exact value needs them (never rounded)."""
    if amount == amount.quantize(MICRO):
        return f"{amount.quantize(MICRO):f}"
    return f"{amount.normalize():f}"

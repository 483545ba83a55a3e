"""How values are written to and read from the table's items: times and figures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costguard.errors import LedgerCorrupted


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    """Fixed-width UTC timestamps: they sort and compare as strings inside conditions.

    Not `strftime("%Y")`: glibc does not pad years before 1000 ("211-04-16"), which neither
    sorts nor reads back with `fromisoformat`.
    """
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def counter_figure(counter: dict[str, Any], attribute: str, default: Decimal) -> Decimal:
    """A counter's figure; anything but a number there is a corrupted item, refused."""
    value = counter.get(attribute, default)
    if not isinstance(value, Decimal) or not value.is_finite():
        where = f"{counter.get('pk')}/{counter.get('sk')}"
        raise LedgerCorrupted(f"counter {where} has a non-numeric {attribute}")
    return value


def opt_int(value: Any) -> int | None:
    return None if value is None else int(value)

"""How values are written to and read from the table's items: times and counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


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


def opt_int(value: Any) -> int | None:
    return None if value is None else int(value)

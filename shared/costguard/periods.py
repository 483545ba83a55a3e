"""UTC calendar periods: day, ISO week (Monday), month. Counters are keyed by period."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def letter(self) -> str:
        return self.value[0]

    @classmethod
    def from_letter(cls, letter: str) -> Period:
        return {"d": cls.DAY, "w": cls.WEEK, "m": cls.MONTH}[letter]


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime: costguard works in UTC only")
    return at.astimezone(UTC)


def period_start(period: Period, at: datetime) -> datetime:
    at = _utc(at)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period: Period, at: datetime) -> datetime:
    """The first instant of the next period."""
    start = period_start(period, at)
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def period_key(period: Period, at: datetime) -> str:
    """`DAY#2026-11-25`, `WEEK#2026-W48`, `MONTH#2026-11` — the counter's sort key."""
    at = _utc(at)
    if period is Period.DAY:
        return f"DAY#{at:%Y-%m-%d}"
    if period is Period.WEEK:
        year, week, _ = at.isocalendar()
        return f"WEEK#{year}-W{week:02d}"
    return f"MONTH#{at:%Y-%m}"


def seconds_until_reset(period: Period, at: datetime) -> int:
    """Whole seconds until the period resets, at least 1 (the `Retry-After` value)."""
    remaining = (period_end(period, at) - _utc(at)).total_seconds()
    return max(1, math.ceil(remaining))


def parse_period_key(key: str) -> tuple[Period, datetime]:
    """`MONTH#2026-11` → (month, its first instant). ValueError for anything else."""
    kind, _, text = key.partition("#")
    if kind == "DAY":
        return Period.DAY, datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    if kind == "WEEK":
        year, _, week = text.partition("-W")
        return Period.WEEK, datetime.fromisocalendar(int(year), int(week), 1).replace(tzinfo=UTC)
    if kind == "MONTH":
        return Period.MONTH, datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    raise ValueError(f"not a period key: {key!r}")

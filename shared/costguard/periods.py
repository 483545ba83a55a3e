"""Calendar periods: day, ISO week (Monday), month. Counters are keyed by period.

Every function takes the instant in any zone and computes in `tz` (default UTC): the period's
boundaries are local midnights (a day is 23 or 25 hours long across a DST change), returned
as UTC instants; keys name the local date. The ledger calls these with the tenant's zone for
tenant and user quotas and with UTC for platform quotas (docs/decisions.md D37, D64).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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


ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}$")
"""The shape of an IANA zone name (`Etc/GMT+5`, `America/Argentina/Buenos_Aires`): no dots,
so never a path out of the zone database."""
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory", "right", "posix"})
"""Files (and, first in a name, folders) of the database that are not zones a tenant can live
in: `right/…` counts leap seconds, `posix/…` repeats the database."""


@cache
def zone(name: str) -> tzinfo:
    """An IANA time zone by name (`UTC`, `America/Los_Angeles`); ValueError if unknown."""
    if name == "UTC":
        return UTC
    # A zone's name, not a file path; `available_timezones()` would say it exactly, but it
    # walks the whole database (≈ 0.3 s on a cold process).
    if len(name) > 64 or not ZONE_NAME.match(name) or name.split("/")[0] in NOT_ZONES:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder's name
        raise ValueError(f"unknown time zone {name!r}") from exc


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime: costguard works with aware datetimes only")
    return at.astimezone(UTC)


def _local(at: datetime, tz: tzinfo | None) -> datetime:
    return _utc(at).astimezone(tz or UTC)


def _midnight(year: int, month: int, day: int, tz: tzinfo | None) -> datetime:
    """The first instant of a local date, as UTC (a midnight skipped by DST maps to the
    first instant that exists: the pre-transition offset of `fold=0`)."""
    return datetime(year, month, day, tzinfo=tz or UTC).astimezone(UTC)


def _first_day(period: Period, at: datetime, tz: tzinfo | None) -> datetime:
    """The local date (a naive midnight) the period of `at` starts on."""
    local = _local(at, tz).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period is Period.DAY:
        return local
    if period is Period.WEEK:
        return local - timedelta(days=local.weekday())
    return local.replace(day=1)


def period_start(period: Period, at: datetime, tz: tzinfo | None = None) -> datetime:
    """The first instant (UTC) of the period of `at`, its calendar taken in `tz`."""
    first = _first_day(period, at, tz)
    return _midnight(first.year, first.month, first.day, tz)


def period_end(period: Period, at: datetime, tz: tzinfo | None = None) -> datetime:
    """The first instant (UTC) of the next period."""
    first = _first_day(period, at, tz)
    if period is Period.DAY:
        nxt = first + timedelta(days=1)
    elif period is Period.WEEK:
        nxt = first + timedelta(days=7)
    elif first.month == 12:
        nxt = first.replace(year=first.year + 1, month=1)
    else:
        nxt = first.replace(month=first.month + 1)
    return _midnight(nxt.year, nxt.month, nxt.day, tz)


def period_key(period: Period, at: datetime, tz: tzinfo | None = None) -> str:
    """`DAY#2026-11-25`, `WEEK#2026-W48`, `MONTH#2026-11` — the counter's sort key (the local
    date in `tz`)."""
    at = _local(at, tz)
    # Integer fields, not strftime: every reserve and commit builds a few of these.
    if period is Period.DAY:
        return f"DAY#{at.year:04d}-{at.month:02d}-{at.day:02d}"
    if period is Period.WEEK:
        year, week, _ = at.isocalendar()
        return f"WEEK#{year}-W{week:02d}"
    return f"MONTH#{at.year:04d}-{at.month:02d}"


def seconds_until_reset(period: Period, at: datetime, tz: tzinfo | None = None) -> int:
    """Whole seconds until the period resets, at least 1 (the `Retry-After` value)."""
    remaining = (period_end(period, at, tz) - _utc(at)).total_seconds()
    return max(1, math.ceil(remaining))


_DAY_KEY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_MONTH_KEY = re.compile(r"(\d{4})-(\d{2})")
_WEEK_KEY = re.compile(r"(\d{4})-W(\d{2})")


@lru_cache(maxsize=4096)
def parse_period_key(key: str, tz: tzinfo | None = None) -> tuple[Period, datetime]:
    """`MONTH#2026-11` → (month, its first instant, UTC). ValueError for anything else.

    Remembered (keys repeat: every stream record of a counter and every expiry names one), and
    read by pattern, not `strptime` (≈ 20 µs a call, most of a stream record's key test)."""
    kind, _, text = key.partition("#")
    if kind == "DAY" and (day := _DAY_KEY.fullmatch(text)):
        period, first = Period.DAY, date(int(day[1]), int(day[2]), int(day[3]))
    elif kind == "WEEK" and (week := _WEEK_KEY.fullmatch(text)):
        year, number = map(int, week.groups())
        period, first = Period.WEEK, date.fromisocalendar(year, number, 1)
    elif kind == "MONTH" and (month := _MONTH_KEY.fullmatch(text)):
        period, first = Period.MONTH, date(int(month[1]), int(month[2]), 1)
    else:
        raise ValueError(f"not a period key: {key!r}")
    return period, _midnight(first.year, first.month, first.day, tz)

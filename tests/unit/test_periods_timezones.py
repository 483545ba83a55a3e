"""Periods in a time zone: local midnights as UTC instants, 23- and 25-hour days across DST,
month and ISO-week boundaries, Retry-After — for America/Los_Angeles, Europe/Berlin and
Asia/Kolkata. UTC (the default) is unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pytest
from costguard.periods import (
    Period,
    parse_period_key,
    period_end,
    period_key,
    period_start,
    seconds_until_reset,
    zone,
)

LA, BERLIN, KOLKATA = zone("America/Los_Angeles"), zone("Europe/Berlin"), zone("Asia/Kolkata")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "instant", "start", "end", "hours"),
    [
        # Los Angeles springs forward on 2026-03-08 (PST -8 → PDT -7): a 23-hour day
        (LA, utc(2026, 3, 8, 12), utc(2026, 3, 8, 8), utc(2026, 3, 9, 7), 23),
        # and falls back on 2026-11-01 (PDT -7 → PST -8): a 25-hour day
        (LA, utc(2026, 11, 1, 12), utc(2026, 11, 1, 7), utc(2026, 11, 2, 8), 25),
        # Berlin: 2026-03-29 (CET +1 → CEST +2) and 2026-10-25 (back)
        (BERLIN, utc(2026, 3, 29, 12), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23),
        (BERLIN, utc(2026, 10, 25, 12), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25),
        # Kolkata: +05:30 all year, no DST
        (KOLKATA, utc(2026, 3, 8, 12), utc(2026, 3, 7, 18, 30), utc(2026, 3, 8, 18, 30), 24),
    ],
)
def test_a_day_runs_from_local_midnight_to_local_midnight_23_or_25_hours_across_dst(
    tz: tzinfo, instant: datetime, start: datetime, end: datetime, hours: int
) -> None:
    assert period_start(Period.DAY, instant, tz) == start
    assert period_end(Period.DAY, instant, tz) == end
    assert end - start == timedelta(hours=hours)
    local_day = instant.astimezone(tz).date()
    assert period_key(Period.DAY, instant, tz) == f"DAY#{local_day}"
    assert parse_period_key(f"DAY#{local_day}", tz) == (Period.DAY, start)


def test_the_last_utc_hours_of_a_month_belong_to_the_next_local_month_east_and_the_same_west() -> (
    None
):
    # 2026-11-30 20:00 UTC is Dec 1 01:30 in Kolkata, still Nov 30 12:00 in Los Angeles
    at = utc(2026, 11, 30, 20)
    assert period_key(Period.MONTH, at, KOLKATA) == "MONTH#2026-12"
    assert period_start(Period.MONTH, at, KOLKATA) == utc(2026, 11, 30, 18, 30)
    assert period_key(Period.MONTH, at, LA) == "MONTH#2026-11"
    assert period_end(Period.MONTH, at, LA) == utc(2026, 12, 1, 8)  # midnight PST
    assert period_key(Period.MONTH, at) == "MONTH#2026-11"  # UTC unchanged
    assert period_end(Period.MONTH, at) == utc(2026, 12, 1)


def test_a_month_that_spans_a_dst_change_ends_at_the_new_offset() -> None:
    # March 2026 in Berlin starts at CET (+1) and ends at CEST (+2): 31 days less one hour
    at = utc(2026, 3, 15)
    assert period_start(Period.MONTH, at, BERLIN) == utc(2026, 2, 28, 23)
    assert period_end(Period.MONTH, at, BERLIN) == utc(2026, 3, 31, 22)
    assert parse_period_key("MONTH#2026-03", BERLIN) == (Period.MONTH, utc(2026, 2, 28, 23))
    # October 2026 in Los Angeles: November starts after the fall-back, at PST
    assert period_end(Period.MONTH, utc(2026, 10, 15), LA) == utc(2026, 11, 1, 7)


def test_the_iso_week_starts_on_the_local_monday() -> None:
    # Sunday 2026-11-29 23:30 in Los Angeles is Monday 07:30 UTC: still the local week 48
    at = utc(2026, 11, 30, 7, 30)
    assert period_key(Period.WEEK, at, LA) == "WEEK#2026-W48"
    assert period_key(Period.WEEK, at) == "WEEK#2026-W49"
    assert period_end(Period.WEEK, at, LA) == utc(2026, 11, 30, 8)
    # the week of the fall-back is 7 days and one hour
    week = period_end(Period.WEEK, utc(2026, 10, 28), LA) - period_start(
        Period.WEEK, utc(2026, 10, 28), LA
    )
    assert week == timedelta(days=7, hours=1)


@pytest.mark.parametrize(
    ("tz", "at", "seconds"),
    [
        (LA, utc(2026, 3, 8, 12), 19 * 3600),  # 05:00 PDT → next midnight is 19 h away
        (LA, utc(2026, 11, 1, 7, 30), 24 * 3600 + 30 * 60),  # 00:30 PDT on a 25-hour day
        (BERLIN, utc(2026, 3, 29, 21, 59, 59), 1),  # one second before midnight CEST
        (KOLKATA, utc(2026, 11, 30, 18, 29, 59), 1),  # one second before the local month
    ],
)
def test_retry_after_counts_to_the_local_reset(tz: tzinfo, at: datetime, seconds: int) -> None:
    assert seconds_until_reset(Period.DAY, at, tz) == seconds


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Mars/Olympus_Mons")
    assert zone("UTC") is UTC


@pytest.mark.parametrize(
    "key",
    [
        "MONTH#2026-13",
        "MONTH#2026-1",
        "MONTH#2026-12x",
        "DAY#2026-02-30",
        "DAY#2026-12-2",
        "WEEK#2026-W54",
        "WEEK#2026-W00",
        "WEEK#2026-48",
        "YEAR#2026",
        "MONTH",
        "",
    ],
)
def test_a_malformed_period_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError):
        parse_period_key(key)


@pytest.mark.parametrize("period", list(Period))
def test_every_period_key_reads_back_as_its_period_and_start(period: Period) -> None:
    # Given every day of three years, in a zone with DST
    at = utc(2025, 1, 1)
    while at < utc(2028, 1, 1):
        # When its key is read back, Then it names the period and its first instant
        assert parse_period_key(period_key(period, at, BERLIN), BERLIN) == (
            period,
            period_start(period, at, BERLIN),
        )
        at += timedelta(days=1)

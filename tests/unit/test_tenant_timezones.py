"""Periods in the tenant's time zone: counters, rollups, Retry-After and zone changes (moto).

Dates are of 2026: Los Angeles springs forward on 8 March and falls back on 1 November,
Berlin on 29 March and 25 October; Kolkata (+05:30) has no DST.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from costguard.errors import InvalidRequest, QuotaExceeded, ReservationNotFound
from costguard.ledger import Ledger
from costguard.ledger.terms import ReservationRef
from costguard.models import TenantSettings
from costguard.quotas import Resource
from costguard.store.keys import day_key
from ulid import ULID

from tests.conftest import Clock
from tests.helpers import actual, estimate, quota, quota_state, set_quota, usd

T = "acme"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tenant_in(ledger: Ledger, tz: str) -> None:
    """A tenant in `tz` with a $10 day quota, a $100 month quota, a $4 day quota for user u1
    and a $1000 platform day quota (platform quotas stay UTC)."""
    ledger.create_tenant(T, "Acme", settings=TenantSettings(timezone=tz))
    set_quota(ledger, T, "tenant:llm:day", "10")
    set_quota(ledger, T, "tenant:llm:month", "100")
    set_quota(ledger, T, "user:u1:llm:day", "4")
    set_quota(ledger, None, "platform:llm:day", "1000")


def keys(ledger: Ledger) -> dict[str, str]:
    return {q.quota_id: q.period_key for q in ledger.quotas(T)}


def day_rollup(ledger: Ledger, day: str) -> Decimal:
    item = ledger.table.get((f"TENANT#{T}", f"DAY#{day}"), consistent=True) or {}
    return Decimal(item.get("usd_all", 0))


# Each local midnight M (as UTC), the local date before and after it, and the months.
MIDNIGHTS = [
    # Los Angeles, month end in winter: 2026-12-01 00:00 PST = 08:00 UTC
    ("America/Los_Angeles", "2026-12-01T08:00", "2026-11-30", "2026-12-01", "2026-11", "2026-12"),
    # Los Angeles, the end of the 23-hour day (8 March) and of the 25-hour day (1 November)
    ("America/Los_Angeles", "2026-03-09T07:00", "2026-03-08", "2026-03-09", "2026-03", "2026-03"),
    ("America/Los_Angeles", "2026-11-02T08:00", "2026-11-01", "2026-11-02", "2026-11", "2026-11"),
    # Berlin, month end right after falling back: 2026-11-01 00:00 CET = 23:00 UTC
    ("Europe/Berlin", "2026-10-31T23:00", "2026-10-31", "2026-11-01", "2026-10", "2026-11"),
    # Berlin, the end of the 23-hour day (29 March) and of the 25-hour day (25 October)
    ("Europe/Berlin", "2026-03-29T22:00", "2026-03-29", "2026-03-30", "2026-03", "2026-03"),
    ("Europe/Berlin", "2026-10-25T23:00", "2026-10-25", "2026-10-26", "2026-10", "2026-10"),
    # Kolkata, month end: 2026-12-01 00:00 IST = 2026-11-30 18:30 UTC
    ("Asia/Kolkata", "2026-11-30T18:30", "2026-11-30", "2026-12-01", "2026-11", "2026-12"),
]


@pytest.mark.parametrize(("tz", "midnight", "before", "after", "m_before", "m_after"), MIDNIGHTS)
def test_the_daily_quota_resets_at_local_midnight_and_spend_lands_on_its_local_day(
    ledger: Ledger,
    clock: Clock,
    tz: str,
    midnight: str,
    before: str,
    after: str,
    m_before: str,
    m_after: str,
) -> None:
    # Given a tenant in `tz`, one second before a local midnight
    reset = utc(midnight)
    clock.at = reset - timedelta(hours=2)
    tenant_in(ledger, tz)
    clock.at = reset - timedelta(seconds=1)

    # When it fills its day quota (user u1 $3 of its $4), the next reserve is refused
    first = ledger.reserve(T, estimate("3", user_id="u1"))
    other = ledger.reserve(T, estimate("7"))
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve(T, estimate("1"))
    b = refused.value.binding
    assert (b.quota_id, b.period_key) == ("tenant:llm:day", f"DAY#{before}")
    assert (b.retry_after_seconds, b.resets_at) == (1, f"{midnight}:00.000000Z")

    # Then a second after local midnight a full day's budget is there again, for u1 too
    clock.advance(seconds=2)
    second = ledger.reserve(T, estimate("4", user_id="u1"))
    assert {q.quota_id: q.period_key for q in second.quotas or []} == {
        "tenant:llm:day": f"DAY#{after}",
        "tenant:llm:month": f"MONTH#{m_after}",
        "user:u1:llm:day": f"DAY#{after}",
        "platform:llm:day": f"DAY#{(reset + timedelta(seconds=1)).date()}",
    }

    # And each commit lands on the counters and the rollup of the local day it was reserved on
    ledger.commit(T, first.reservation_id, actual("2.5"))
    ledger.commit(T, other.reservation_id, actual("6.5"))
    ledger.commit(T, second.reservation_id, actual("4"))
    assert (day_rollup(ledger, before), day_rollup(ledger, after)) == (usd("9"), usd("4"))
    month = quota_state(ledger, T, "tenant:llm:month")
    assert month.spent_usd == (usd("4") if m_before != m_after else usd("13"))
    assert quota_state(ledger, T, "user:u1:llm:day").spent_usd == usd("4")
    assert ledger.reconcile(T) == []


@pytest.mark.parametrize(
    ("tz", "start", "hours"),
    [
        ("America/Los_Angeles", "2026-03-08T08:00", 23),
        ("America/Los_Angeles", "2026-11-01T07:00", 25),
        ("Europe/Berlin", "2026-03-28T23:00", 23),
        ("Europe/Berlin", "2026-10-24T22:00", 25),
        ("Asia/Kolkata", "2026-11-29T18:30", 24),
    ],
)
def test_a_dst_day_is_23_or_25_hours_long_and_retry_after_counts_to_its_local_midnight(
    ledger: Ledger, clock: Clock, tz: str, start: str, hours: int
) -> None:
    # Given a tenant in `tz` at the first second of a local day
    clock.at = utc(start) - timedelta(hours=1)
    tenant_in(ledger, tz)
    clock.at = utc(start) + timedelta(seconds=1)
    local_day = f"DAY#{(utc(start) + timedelta(hours=12)).astimezone(UTC).date()}"
    ledger.reserve(T, estimate("10"))

    # When it asks for more, Retry-After is the rest of that (23-, 24- or 25-hour) day
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve(T, estimate("1"))
    assert refused.value.binding.retry_after_seconds == hours * 3600 - 1

    # Then the same day goes on until its last second, and the next one starts after it
    clock.at = utc(start) + timedelta(hours=hours, seconds=-1)
    with pytest.raises(QuotaExceeded) as still:
        ledger.reserve(T, estimate("1"))
    assert (still.value.binding.retry_after_seconds, still.value.binding.period_key) == (
        1,
        local_day,
    )
    clock.advance(seconds=1)
    assert ledger.reserve(T, estimate("10")).reserved_usd == usd("10")
    assert ledger.reconcile(T) == []


def test_a_hold_reserved_before_local_midnight_settles_on_that_day_after_it(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a Berlin tenant with a hold made at 23:59:59 local (23:00 UTC is midnight)
    clock.at = utc("2026-11-30T20:00")
    tenant_in(ledger, "Europe/Berlin")
    clock.at = utc("2026-11-30T22:59:59")
    late = ledger.reserve(T, estimate("3", user_id="u1"))
    ledger.reserve(T, estimate("1"), ttl_seconds=60)
    assert ReservationRef.parse(late.reservation_id).tz == "Europe/Berlin"

    # When it is committed and the other expires (charged) after midnight
    clock.advance(seconds=90)
    ledger.commit(T, late.reservation_id, actual("2.5", user_id="u1"))
    assert ledger.expire_due(T) == 1

    # Then both are spend of 30 November (the local day they were reserved on), nothing of
    # 1 December, and the counters equal the records
    assert day_rollup(ledger, "2026-11-30") == usd("3.5")
    assert day_rollup(ledger, "2026-12-01") == usd("0")
    assert ledger.table.get(day_key(T, clock.at, "Europe/Berlin"), consistent=True) is None
    assert quota_state(ledger, T, "user:u1:llm:day").spent_usd == usd("0")  # a new day
    assert ledger.reconcile(T) == []


def test_usage_recorded_without_a_reservation_counts_in_the_local_day(
    ledger: Ledger, clock: Clock
) -> None:
    clock.at = utc("2026-11-30T17:00")
    tenant_in(ledger, "Asia/Kolkata")
    clock.at = utc("2026-11-30T18:29:59")  # 23:59:59 IST
    ledger.record_usage(T, actual("2"))
    clock.advance(seconds=2)  # 1 December, 00:00:01 IST
    ledger.record_usage(T, actual("3"))

    assert (day_rollup(ledger, "2026-11-30"), day_rollup(ledger, "2026-12-01")) == (
        usd("2"),
        usd("3"),
    )
    assert quota_state(ledger, T, "tenant:llm:month").spent_usd == usd("3")  # December's
    assert quota_state(ledger, None, "platform:llm:day").spent_usd == usd("5")  # UTC: 30 Nov
    assert ledger.reconcile(T) == []


def test_a_utc_tenants_reservation_ids_are_unchanged() -> None:
    ulid = ULID.from_datetime(utc("2026-11-25T12:00"))
    quotas = [quota("tenant:llm:month", "10")]
    plain = ReservationRef.build(ulid, Resource.LLM, usd("1"), quotas, None)
    zoned = ReservationRef.build(ulid, Resource.LLM, usd("1"), quotas, None, "America/Los_Angeles")

    assert plain.reservation_id.count("~") == 4
    assert zoned.reservation_id == f"{plain.reservation_id}~QW1lcmljYS9Mb3NfQW5nZWxlcw"
    assert ReservationRef.parse(zoned.reservation_id) == zoned
    for forged in (f"{plain.reservation_id}~TWFycy9PbHltcHVz", f"{zoned.reservation_id}~x"):
        with pytest.raises(ReservationNotFound):
            ReservationRef.parse(forged)  # Mars/Olympus; a seventh part


# ------------------------------------------------------------------ changing the zone
def test_a_zone_change_waits_for_the_next_midnight_of_the_zone_in_effect(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a UTC tenant that spent $4 of its $10 day on 30 November (UTC)
    clock.at = utc("2026-11-30T10:00")
    tenant_in(ledger, "UTC")
    ledger.record_usage(T, actual("4"))

    # When an admin moves it to Los Angeles at 20:00 UTC
    clock.at = utc("2026-11-30T20:00")
    changed = ledger.put_tenant_settings(T, TenantSettings(timezone="America/Los_Angeles"))

    # Then UTC stays in effect until its midnight: the day is not cut short or reopened
    assert (changed.timezone, changed.timezone_in_effect, changed.timezone_effective_at) == (
        "America/Los_Angeles",
        "UTC",
        utc("2026-12-01T00:00"),
    )
    clock.at = utc("2026-11-30T23:59")
    held = ledger.reserve(T, estimate("5"), ttl_seconds=600)
    assert ReservationRef.parse(held.reservation_id).tz == "UTC"
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve(T, estimate("2"))
    assert (refused.value.binding.period_key, refused.value.binding.retry_after_seconds) == (
        "DAY#2026-11-30",
        60,
    )

    # And from UTC midnight on the tenant counts in Los Angeles: it is 16:00 on 30 November
    # there, so the same day's counter goes on (its $9 included): no fresh budget
    clock.at = utc("2026-12-01T00:00:01")
    assert ledger.tenant_settings(T).timezone_in_effect == "America/Los_Angeles"
    assert keys(ledger)["tenant:llm:day"] == "DAY#2026-11-30"
    assert keys(ledger)["tenant:llm:month"] == "MONTH#2026-11"
    with pytest.raises(QuotaExceeded) as still:
        ledger.reserve(T, estimate("2"))
    assert (still.value.binding.spent_usd, still.value.binding.held_usd) == (usd("4"), usd("5"))
    assert still.value.binding.retry_after_seconds == 8 * 3600 - 1  # to 00:00 PST

    # And the hold reserved in UTC settles on its UTC counters; the books balance
    ledger.commit(T, held.reservation_id, actual("5"))
    assert quota_state(ledger, T, "tenant:llm:day").spent_usd == usd("9")
    clock.at = utc("2026-12-01T08:00")  # midnight in Los Angeles: a new day, a new month
    assert ledger.reserve(T, estimate("10")).reserved_usd == usd("10")
    assert keys(ledger)["tenant:llm:month"] == "MONTH#2026-12"
    assert ledger.reconcile(T) == []


def test_asking_again_for_the_zone_in_effect_cancels_a_pending_change(
    ledger: Ledger, clock: Clock
) -> None:
    clock.at = utc("2026-11-30T20:00")
    tenant_in(ledger, "Europe/Berlin")  # 21:00 in Berlin
    ledger.put_tenant_settings(T, TenantSettings(timezone="Asia/Kolkata"))
    assert ledger.tenant_settings(T).timezone_effective_at == utc("2026-11-30T23:00")

    back = ledger.put_tenant_settings(T, TenantSettings(timezone="Europe/Berlin"))

    assert (back.timezone, back.timezone_in_effect, back.timezone_effective_at) == (
        "Europe/Berlin",
        "Europe/Berlin",
        None,
    )
    clock.at = utc("2026-12-01T01:00")
    assert keys(ledger)["tenant:llm:day"] == "DAY#2026-12-01"


def test_a_tenant_whose_quotas_were_set_before_it_was_registered_changes_zone_at_midnight(
    ledger: Ledger, clock: Clock
) -> None:
    clock.at = utc("2026-11-30T20:00")
    set_quota(ledger, T, "tenant:llm:day", "10")
    ledger.record_usage(T, actual("6"))

    ledger.create_tenant(T, "Acme", settings=TenantSettings(timezone="Asia/Kolkata"))

    shown = ledger.tenant_settings(T)
    assert (shown.timezone_in_effect, shown.timezone_effective_at) == (
        "UTC",
        utc("2026-12-01T00:00"),
    )
    assert quota_state(ledger, T, "tenant:llm:day").spent_usd == usd("6")


def test_an_unknown_zone_is_refused_naming_the_field(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="IANA time zone"):
        TenantSettings(timezone="Mars/Olympus")
    for name in ("localtime", "../../etc/passwd", "posixrules", "Europe", "posix/Europe/Berlin"):
        with pytest.raises(ValueError):
            TenantSettings(timezone=name)
    bad = TenantSettings.model_construct(overrun="record", on_expiry="charge", timezone="Moon/X")
    with pytest.raises(InvalidRequest) as refused:
        ledger.put_tenant_settings(T, bad)
    assert refused.value.field == "timezone"

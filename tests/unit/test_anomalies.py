"""Anomaly detection on synthetic histories whose answers are known, through the real ledger.

Histories are written with `record_usage` (so the day rollups, user buckets and the `active`
index are the ledger's own), then the hourly schedule runs as it would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from costguard.activity import active_tenants
from costguard.alerts import AlertBook, AlertType
from costguard.anomalies import AnomalyRules, run_anomalies
from costguard.ledger import Ledger
from costguard.models import Usage
from costguard.schedules import RunReport
from costguard.store.items import AlertItem
from costguard.store.keys import USER_BUCKETS, user_bucket

from tests.conftest import Clock

TODAY = date(2026, 11, 25)  # a Wednesday; the clock fixture's noon
RULES = AnomalyRules()


def spend(ledger: Ledger, clock: Clock, tenant: str, day: date, amount: str, **kw: str) -> None:
    clock.at = datetime(day.year, day.month, day.day, 11, 0, tzinfo=UTC)
    usage = Usage(resource=kw.pop("resource", "llm"), cost_usd=amount, **kw)
    ledger.record_usage(tenant, usage, enforce=False)


def history(
    ledger: Ledger, clock: Clock, tenant: str, first: date, last: date, f: Callable[[date], str]
) -> None:
    day = first
    while day <= last:
        amount = f(day)
        if Decimal(amount) > 0:
            spend(ledger, clock, tenant, day, amount)
        day += timedelta(days=1)


def run_at(ledger: Ledger, clock: Clock, at: datetime) -> RunReport:
    clock.at = at
    return run_anomalies(ledger, AlertBook(ledger.table, clock), RULES)


def anomalies(ledger: Ledger, clock: Clock, tenant: str) -> list[AlertItem]:
    items, _ = AlertBook(ledger.table, clock).recent(
        tenant, limit=200, alert_type=AlertType.ANOMALY
    )
    return items


def test_a_flat_tenant_with_one_spike_day_has_exactly_one_anomaly(
    ledger: Ledger, clock: Clock
) -> None:
    # Given $10 every day since Oct 20 and $60 on Nov 18, $5 so far today
    spike = date(2026, 11, 18)
    history(
        ledger, clock, "flat", date(2026, 10, 20), TODAY - timedelta(days=1),
        lambda d: "60" if d == spike else "10",
    )  # fmt: skip
    spend(ledger, clock, "flat", TODAY, "5")
    # When the schedule runs every six hours from the spike day to today
    at = datetime(2026, 11, 18, 0, 30, tzinfo=UTC)
    reports = []
    while at <= datetime(2026, 11, 25, 12, 0, tzinfo=UTC):
        reports.append(run_at(ledger, clock, at))
        at += timedelta(hours=6)
    # Then exactly one anomaly: the spike day, tenant total, with its figures
    [alert] = anomalies(ledger, clock, "flat")
    assert alert.dedup_key == "anomaly#2026-11-18#all"
    assert alert.spent_usd == Decimal("60")
    assert alert.severity == "critical"  # 60 ≥ 2 × the $11 threshold
    details = alert.details
    assert isinstance(details, dict)
    assert details["expected_usd"] == "10.000000"
    assert details["threshold_usd"] == "11.000000"  # 10 + 2 × the 5 % floor of a flat history
    assert details["method"] == "stddev"
    assert details["history_days"] == "29"
    assert details["partial"] == "true"  # first seen while the day was still running
    assert alert.event == "CostAnomalyDetected"
    assert sum(r.recorded for r in reports) == 1
    assert sum(r.findings for r in reports) >= 2  # seen again as "yesterday", recorded once


def test_a_steadily_growing_tenant_is_no_anomaly(ledger: Ledger, clock: Clock) -> None:
    # Given spend growing by $0.50 a day, from $5 on Oct 20
    history(
        ledger, clock, "grows", date(2026, 10, 20), TODAY - timedelta(days=1),
        lambda d: str(Decimal(5) + Decimal("0.5") * (d - date(2026, 10, 20)).days),
    )  # fmt: skip
    # When the schedule runs at the end of each of the last three weeks' days
    for n in range(21, 0, -1):
        report = run_at(
            ledger, clock, datetime.combine(TODAY - timedelta(days=n), datetime.max.time(), UTC)
        )
        assert report.findings == 0, (n, report)
    # Then nothing was alerted
    assert anomalies(ledger, clock, "grows") == []


def weekly(d: date) -> str:
    """$100 on weekdays, $20 on weekends, ±3 % of fixed noise."""
    base = Decimal(100) if d.weekday() < 5 else Decimal(20)
    wiggle = Decimal((d.toordinal() * 7919) % 7 - 3) / 100
    return str((base * (1 + wiggle)).quantize(Decimal("0.01")))


def test_weekly_seasonality_raises_no_false_alarm_on_mondays(ledger: Ledger, clock: Clock) -> None:
    # Given eight weeks of a weekday business (Monday's spend is 5× Sunday's)
    history(ledger, clock, "weekly", date(2026, 9, 28), TODAY, weekly)
    # When the schedule runs late on each of the last four weeks' days (Mondays included)
    mondays = 0
    for n in range(28, -1, -1):
        day = TODAY - timedelta(days=n)
        mondays += day.weekday() == 0
        report = run_at(ledger, clock, datetime.combine(day, datetime.max.time(), UTC))
        assert report.findings == 0, (day, report.notes)
    # Then no alert at all
    assert mondays == 4
    assert anomalies(ledger, clock, "weekly") == []


def test_the_same_week_with_a_real_spike_on_a_monday_is_caught(
    ledger: Ledger, clock: Clock
) -> None:
    monday = date(2026, 11, 23)
    history(
        ledger, clock, "weekly", date(2026, 9, 28), TODAY,
        lambda d: "300" if d == monday else weekly(d),
    )  # fmt: skip
    run_at(ledger, clock, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    [alert] = anomalies(ledger, clock, "weekly")
    assert alert.dedup_key == "anomaly#2026-11-23#all"


def test_a_new_tenant_with_three_days_gets_no_verdict_and_says_so(
    ledger: Ledger, clock: Clock
) -> None:
    history(ledger, clock, "newco", date(2026, 11, 22), TODAY, lambda d: "10")
    spend(ledger, clock, "newco", TODAY, "90")  # a big day: still no verdict
    report = run_at(ledger, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    assert report.findings == 0 and report.insufficient_history == 1
    assert "newco: no verdict for 2026-11-25: 3 days of history, 7 needed" in report.notes
    assert anomalies(ledger, clock, "newco") == []


def test_small_amounts_are_never_an_incident(ledger: Ledger, clock: Clock) -> None:
    history(
        ledger, clock, "tiny", date(2026, 10, 20), TODAY,
        lambda d: "0.09" if d == TODAY else "0.02",
    )  # fmt: skip
    assert run_at(ledger, clock, datetime(2026, 11, 25, 18, 0, tzinfo=UTC)).findings == 0


def test_one_user_taking_over_the_day_is_a_share_jump(ledger: Ledger, clock: Clock) -> None:
    # Given three users (in three buckets) spending $4 each every day for a month
    users = ("u-1", "u-2", "u-4")
    assert len({user_bucket(u) for u in users}) == 3
    day = date(2026, 10, 25)
    while day < TODAY:
        for user in users:
            spend(ledger, clock, "team", day, "4", user_id=user)
        day += timedelta(days=1)
    # When today u-4 spends $30 and the others $4: the total ($38) is far above $12 too
    for user, amount in (("u-1", "4"), ("u-2", "4"), ("u-4", "30")):
        spend(ledger, clock, "team", TODAY, amount, user_id=user)
    report = run_at(ledger, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    # Then two findings: the day's total, and u-4's bucket at 78.95 % against 33.33 %
    found = {a.dedup_key: a for a in anomalies(ledger, clock, "team")}
    share = found[f"anomaly#2026-11-25#user:{user_bucket('u-4')}"]
    assert set(found) == {"anomaly#2026-11-25#all", share.dedup_key}
    details = share.details
    assert isinstance(details, dict)
    assert details["share_pct"] == "78.95" and details["baseline_share_pct"] == "33.33"
    assert details["last_user_id"] == "u-4"
    assert share.spent_usd == Decimal("30")
    assert report.recorded == 2


def test_a_rerun_with_no_new_spend_alerts_nothing_new(ledger: Ledger, clock: Clock) -> None:
    history(
        ledger, clock, "flat", date(2026, 10, 20), TODAY,
        lambda d: "50" if d == TODAY else "10",
    )  # fmt: skip
    first = run_at(ledger, clock, datetime(2026, 11, 25, 13, 0, tzinfo=UTC))
    second = run_at(ledger, clock, datetime(2026, 11, 25, 14, 0, tzinfo=UTC))
    assert (first.recorded, second.recorded) == (1, 0)
    assert second.findings == 1  # still anomalous, already alerted
    assert len(anomalies(ledger, clock, "flat")) == 1


def test_the_active_index_lists_tenants_with_spend_on_a_day(ledger: Ledger, clock: Clock) -> None:
    for n in range(40):
        spend(ledger, clock, f"tenant-{n:02d}", TODAY - timedelta(days=n % 2), "1")
    assert active_tenants(ledger.table, [TODAY]) == [f"tenant-{n:02d}" for n in range(0, 40, 2)]
    two_days = [TODAY, TODAY - timedelta(days=1)]
    assert active_tenants(ledger.table, two_days, page=3) == [f"tenant-{n:02d}" for n in range(40)]
    # the partitions listed 8 at a time (the 90-day overview, D108) or one after another alike
    assert active_tenants(ledger.table, two_days, page=3, workers=1) == active_tenants(
        ledger.table, two_days, page=3, workers=8
    )


def test_the_day_rollup_holds_a_bounded_number_of_user_buckets(
    ledger: Ledger, clock: Clock
) -> None:
    for n in range(100):
        spend(ledger, clock, "crowd", TODAY, "0.01", user_id=f"user-{n}")
    [day] = ledger.daily_rollups("crowd", clock.at, clock.at)
    assert len(day.by_bucket) == USER_BUCKETS
    assert sum(day.by_bucket.values()) == day.spent() == Decimal("1.00")
    assert ledger.reconcile("crowd") == []

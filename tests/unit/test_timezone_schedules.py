"""Forecasts and anomalies judge the tenant's own days (its time zone), found through the
`active` index read one day wider than UTC's date."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from costguard.alerts import AlertBook
from costguard.anomalies import run_anomalies
from costguard.forecasts import ForecastRules, current_forecasts, run_forecasts
from costguard.ledger import Ledger
from costguard.models import TenantSettings, Usage
from costguard.store.items import ForecastItem

from tests.conftest import Clock
from tests.helpers import set_quota
from tests.unit.test_anomalies import RULES, anomalies, history


def cost(amount: str) -> Usage:
    return Usage(resource="llm", cost_usd=amount)


def tenant_in(ledger: Ledger, clock: Clock, tenant: str, tz: str, at: datetime) -> None:
    clock.at = at
    ledger.create_tenant(tenant, tenant.title(), settings=TenantSettings(timezone=tz))


def forecast_at(ledger: Ledger, clock: Clock, tenant: str, at: datetime) -> ForecastItem:
    clock.at = at
    report = run_forecasts(ledger, AlertBook(ledger.table, clock), ForecastRules())
    assert report.tenants == 1
    [f] = current_forecasts(ledger, tenant)
    return f


def test_a_forecast_on_the_25_hour_day_counts_the_rest_of_that_day(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a new Los Angeles tenant with $2 spent at 00:20 PDT on 1 November (25 hours long)
    tenant_in(ledger, clock, "lax", "America/Los_Angeles", datetime(2026, 11, 1, 7, 0, tzinfo=UTC))
    set_quota(ledger, "lax", "tenant:llm:month", "100")
    clock.at = datetime(2026, 11, 1, 7, 20, tzinfo=UTC)
    ledger.record_usage("lax", cost("2"), enforce=False)

    # When the forecast runs at 00:30 PDT
    f = forecast_at(ledger, clock, "lax", datetime(2026, 11, 1, 7, 30, tzinfo=UTC))

    # Then, by hand: a run rate floored at $2 a day; 24.5 of the day's 25 hours are left
    # (2 × 0.98 = 1.96), then 2 to 30 November (29 days × $2): 2 + 1.96 + 58 = 61.96
    assert (f.period_key, f.resets_at) == ("MONTH#2026-11", datetime(2026, 12, 1, 8, tzinfo=UTC))
    assert (f.method, f.projected_usd) == ("run_rate", Decimal("61.96"))


def test_a_forecast_in_kolkata_starts_the_month_at_local_midnight(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a Kolkata tenant whose first spend is at 00:10 IST on 1 December (18:40 UTC on
    # 30 November): its only day rollup is 1 December, listed under that day in the index
    tenant_in(ledger, clock, "bom", "Asia/Kolkata", datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
    set_quota(ledger, "bom", "tenant:llm:month", "100")
    clock.at = datetime(2026, 11, 30, 18, 40, tzinfo=UTC)
    ledger.record_usage("bom", cost("2"), enforce=False)

    # When the forecast runs at 00:30 IST (still 30 November in UTC)
    f = forecast_at(ledger, clock, "bom", datetime(2026, 11, 30, 19, 0, tzinfo=UTC))

    # Then December: 2 + 2 × 23.5/24 (the rest of 1 December) + 30 × 2 = 63.958333
    assert (f.period_key, f.resets_at) == (
        "MONTH#2026-12",
        datetime(2026, 12, 31, 18, 30, tzinfo=UTC),
    )
    assert f.projected_usd == Decimal("63.958333")


def test_an_anomaly_is_judged_on_the_tenants_local_day(ledger: Ledger, clock: Clock) -> None:
    # Given a Kolkata tenant spending $10 every local day (at 16:30 IST) since 20 October,
    # and $60 at 01:30 IST on 25 November (20:00 UTC on the 24th)
    tenant_in(ledger, clock, "flat", "Asia/Kolkata", datetime(2026, 10, 19, tzinfo=UTC))
    history(ledger, clock, "flat", date(2026, 10, 20), date(2026, 11, 24), lambda d: "10")
    clock.at = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    ledger.record_usage("flat", cost("60"), enforce=False)

    # When the schedule runs at 02:00 IST, 24 November in UTC
    clock.at = datetime(2026, 11, 24, 20, 30, tzinfo=UTC)
    report = run_anomalies(ledger, AlertBook(ledger.table, clock), RULES)

    # Then its today is 25 November: the $60 is judged against its own $10 days
    assert (report.tenants, report.recorded) == (1, 1)
    [alert] = anomalies(ledger, clock, "flat")
    assert alert.dedup_key == "anomaly#2026-11-25#all"
    assert alert.spent_usd == Decimal("60")
    details = alert.details
    assert isinstance(details, dict)
    assert (details["expected_usd"], details["partial"]) == ("10.000000", "true")

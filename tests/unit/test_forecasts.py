"""Forecasts on synthetic histories whose answers are computed by hand in each test."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from costguard.alerts import AlertBook, AlertType
from costguard.forecasts import ForecastRules, current_forecasts, run_forecasts
from costguard.ledger import Ledger
from costguard.store.items import AlertItem, ForecastItem

from tests.conftest import Clock
from tests.helpers import set_quota
from tests.unit.test_anomalies import TODAY, history, spend

RULES = ForecastRules()
START = date(2026, 10, 20)


def growth(d: date) -> str:
    """$5 on Oct 20, 50 cents more each day: Nov k costs 10.50 + 0.50·k."""
    return str(Decimal(5) + Decimal("0.5") * (d - START).days)


def run_at(ledger: Ledger, clock: Clock, at: datetime) -> Any:
    clock.at = at
    return run_forecasts(ledger, AlertBook(ledger.table, clock), RULES)


def forecast(ledger: Ledger, tenant: str, quota_id: str) -> ForecastItem:
    return next(f for f in current_forecasts(ledger, tenant) if f.quota_id == quota_id)


def alerts(ledger: Ledger, clock: Clock, tenant: str) -> list[AlertItem]:
    items, _ = AlertBook(ledger.table, clock).recent(tenant, alert_type=AlertType.FORECAST)
    return items


def test_a_steadily_growing_tenant_breaches_on_the_day_computed_by_hand(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a $500 monthly llm quota and spend growing 50 cents a day; today (Nov 25) half of
    # its $23 so far at noon
    clock.at = datetime(2026, 10, 20, tzinfo=UTC)
    set_quota(ledger, "grows", "tenant:llm:month", "500")
    history(ledger, clock, "grows", START, TODAY - timedelta(days=1), growth)
    spend(ledger, clock, "grows", TODAY, "11.50")
    # When the forecast runs at noon
    report = run_at(ledger, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    # Then, by hand: spent = Σ(10.5 + 0.5k, k=1..24) + 11.50 = 402 + 11.50 = 413.50;
    # the rest of today 23 × ½ = 11.50 → 425; Nov 26 +23.50 → 448.50; Nov 27 +24 → 472.50;
    # Nov 28 +24.50 → 497; Nov 29 +25 → 522 ≥ 500: the breach; Nov 30 +25.50 → 547.50
    f = forecast(ledger, "grows", "tenant:llm:month")
    assert f.spent_usd == Decimal("413.5")
    assert f.projected_usd == Decimal("547.5")
    assert f.breach_on == date(2026, 11, 29)
    assert f.risk == "high"  # 4 days away: beyond the 48 h of `critical`
    assert f.method == "profile" and f.history_days == 28
    assert f.daily_usd == Decimal("23.5")  # tomorrow's expected day
    assert f.projected_utilization == Decimal("1.095")
    [alert] = alerts(ledger, clock, "grows")
    assert alert.event == "QuotaBreachForecast" and alert.severity == "warning"
    assert alert.details["breach_on"] == "2026-11-29"
    assert alert.details["previous_risk"] == "low"
    assert (report.tenants, report.findings, report.recorded) == (1, 1, 1)


def test_a_rerun_with_no_new_spend_alerts_nothing_new(ledger: Ledger, clock: Clock) -> None:
    clock.at = datetime(2026, 10, 20, tzinfo=UTC)
    set_quota(ledger, "grows", "tenant:llm:month", "500")
    history(ledger, clock, "grows", START, TODAY, growth)
    first = run_at(ledger, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    again = run_at(ledger, clock, datetime(2026, 11, 25, 18, 0, tzinfo=UTC))
    assert (first.recorded, again.recorded) == (1, 0)
    assert len(alerts(ledger, clock, "grows")) == 1
    assert forecast(ledger, "grows", "tenant:llm:month").computed_at == datetime(
        2026, 11, 25, 18, tzinfo=UTC
    )


def test_a_new_tenant_gets_a_run_rate_forecast(ledger: Ledger, clock: Clock) -> None:
    # Given $10 a day since Nov 22 and $5 this morning against $100 a month
    clock.at = datetime(2026, 11, 22, tzinfo=UTC)
    set_quota(ledger, "newco", "tenant:llm:month", "100")
    history(ledger, clock, "newco", date(2026, 11, 22), TODAY - timedelta(days=1), lambda d: "10")
    spend(ledger, clock, "newco", TODAY, "5")
    run_at(ledger, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    # Then: $35 over the 3.5 days since its first spend (not since Nov 1) = $10 a day;
    # 35 + 5 (rest of today) + 5 × 10 (Nov 26–30) = 90: 90 % of the limit, no breach
    f = forecast(ledger, "newco", "tenant:llm:month")
    assert (f.method, f.history_days, f.daily_usd) == ("run_rate", 3, Decimal(10))
    assert f.projected_usd == Decimal(90) and f.breach_on is None
    assert f.risk == "medium"
    # And a rise in risk is one more alert; staying there is none
    spend(ledger, clock, "newco", TODAY, "40")
    run_at(ledger, clock, datetime(2026, 11, 25, 13, 0, tzinfo=UTC))
    f = forecast(ledger, "newco", "tenant:llm:month")
    # $75 / 3.54 days = $21.18 a day: 75 + 11/24 of it → 84.71; Nov 26 → 105.88 ≥ 100
    assert (f.breach_on, f.risk) == (date(2026, 11, 26), "critical")
    spend(ledger, clock, "newco", TODAY, "1")
    run_at(ledger, clock, datetime(2026, 11, 25, 18, 0, tzinfo=UTC))
    risks = [
        (a.details["previous_risk"], a.details["risk"]) for a in alerts(ledger, clock, "newco")
    ]
    assert risks == [("medium", "critical"), ("low", "medium")]  # newest first


def test_a_sliced_quota_is_forecast_on_the_whole(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itertools import count

    from costguard.ledger import escrow
    from costguard.quotas import QuotaDefinition, QuotaId

    # Given the run-rate tenant above with its $100 quota in 8 slices, its spend taking the
    # slices in turn (slice 0 holds an eighth of it)
    clock.at = datetime(2026, 11, 22, tzinfo=UTC)
    ledger.put_quota(
        "newco", QuotaDefinition(QuotaId.parse("tenant:llm:month"), Decimal(100), slices=8)
    )
    turn = count()
    monkeypatch.setattr(escrow, "pick", lambda n, rng=None: next(turn) % 8)
    history(ledger, clock, "newco", date(2026, 11, 22), TODAY - timedelta(days=1), lambda d: "10")
    spend(ledger, clock, "newco", TODAY, "5")
    run_at(ledger, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    # Then the forecast is the unsliced one's: $35 spent of $100, 90 projected
    f = forecast(ledger, "newco", "tenant:llm:month")
    assert (f.spent_usd, f.limit_usd) == (Decimal(35), Decimal(100))
    assert (f.method, f.daily_usd, f.projected_usd) == ("run_rate", Decimal(10), Decimal(90))
    assert (f.breach_on, f.risk) == (None, "medium")


def test_day_one_of_a_period_uses_the_profile_not_the_first_hour(
    ledger: Ledger, clock: Clock
) -> None:
    clock.at = datetime(2026, 10, 20, tzinfo=UTC)
    set_quota(ledger, "grows", "tenant:llm:month", "2000")
    history(ledger, clock, "grows", START, date(2026, 11, 30), growth)
    clock.at = datetime(2026, 12, 1, 0, 20, tzinfo=UTC)
    ledger.record_usage("grows", _cost("0.25"), enforce=False)
    run_at(ledger, clock, datetime(2026, 12, 1, 0, 30, tzinfo=UTC))
    # Dec k is expected at 25.50 + 0.50·k (Dec 1: $26, of which 23.5/24 is still to come):
    # 0.25 + 26 × 23.5/24 + Σ(25.5 + 0.5k, k=2..31) = 0.25 + 25.458333 + 1012.50
    f = forecast(ledger, "grows", "tenant:llm:month")
    assert f.period_key == "MONTH#2026-12" and f.method == "profile"
    assert f.projected_usd == Decimal("1038.208333")
    assert f.risk == "low"


def test_day_one_without_history_is_floored_at_a_day(ledger: Ledger, clock: Clock) -> None:
    clock.at = datetime(2026, 12, 1, 0, 20, tzinfo=UTC)
    set_quota(ledger, "fresh", "tenant:llm:month", "100")
    ledger.record_usage("fresh", _cost("2"), enforce=False)
    run_at(ledger, clock, datetime(2026, 12, 1, 0, 30, tzinfo=UTC))
    # $2 in its first 10 minutes is taken as $2 a day, not $288 a day:
    # 2 + 2 × 23.5/24 + 30 × 2 = 63.958333
    f = forecast(ledger, "fresh", "tenant:llm:month")
    assert f.projected_usd == Decimal("63.958333") and f.risk == "low"


def test_user_quotas_are_forecast_by_run_rate_and_quotas_without_spend_are_not(
    ledger: Ledger, clock: Clock
) -> None:
    clock.at = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    set_quota(ledger, "team", "user:u-1:llm:day", "10")
    set_quota(ledger, "team", "tenant:sandbox:month", "50")
    clock.at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    ledger.record_usage("team", _cost("4", user_id="u-1"), enforce=False)
    run_at(ledger, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    # $4 in 12 hours of the day = $8 a day: 4 + 8 × ½ = 8 of 10 → medium
    [f] = current_forecasts(ledger, "team")
    assert f.quota_id == "user:u-1:llm:day" and f.user_id == "u-1"
    assert (f.projected_usd, f.risk, f.method) == (Decimal(8), "medium", "run_rate")


def _cost(amount: str, **kw: str) -> Any:
    from costguard.models import Usage

    return Usage(resource="llm", cost_usd=amount, **kw)

"""GET /v1/tenants/{tenant_id}/forecast: the stored forecasts, exact decimals, tenant-scoped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from costguard.alerts import AlertBook
from costguard.forecasts import ForecastRules, run_forecasts

from tests.api.conftest import Api
from tests.conftest import Clock
from tests.helpers import set_quota
from tests.unit.test_anomalies import TODAY, history, spend
from tests.unit.test_forecasts import START, growth


def test_a_tenant_reads_its_forecasts_as_exact_decimal_strings(api: Api, clock: Clock) -> None:
    # Given the growing tenant of tests/unit/test_forecasts.py, forecast at noon
    ledger = api.ledger
    clock.at = datetime(2026, 10, 20, tzinfo=UTC)
    set_quota(ledger, "grows", "tenant:llm:month", "500")
    history(ledger, clock, "grows", START, TODAY - timedelta(days=1), growth)
    spend(ledger, clock, "grows", TODAY, "11.50")
    clock.at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    run_forecasts(ledger, AlertBook(ledger.table, clock), ForecastRules())
    key = api.tenant_key("grows")
    # When its key reads the forecast
    answer = api.call("GET", "/v1/tenants/grows/forecast", key=key)
    # Then the figures computed by hand, money as decimal strings
    assert answer.status == 200, answer.text
    [f] = answer.json["forecasts"]
    assert answer.json["tenant_id"] == "grows"
    assert f == {
        "quota_id": "tenant:llm:month",
        "scope": "tenant",
        "user_id": None,
        "resource": "llm",
        "period": "month",
        "period_key": "MONTH#2026-11",
        "resets_at": "2026-12-01T00:00:00Z",
        "computed_at": "2026-11-25T12:00:00Z",
        "spent_usd": "413.500000",
        "limit_usd": "500.000000",
        "projected_usd": "547.500000",
        "projected_utilization": "1.0950",
        "daily_usd": "23.500000",
        "breach_on": date(2026, 11, 29).isoformat(),
        "risk": "high",
        "method": "profile",
        "history_days": 28,
    }
    # And the breach forecast is among its alerts
    alerts = api.call("GET", "/v1/tenants/grows/alerts", key=key, query="type=forecast").json
    assert [a["event"] for a in alerts["alerts"]] == ["QuotaBreachForecast"]


def test_forecasts_are_the_tenants_own_and_empty_before_any_run(api: Api) -> None:
    key = api.tenant_key("acme")
    assert api.call("GET", "/v1/tenants/acme/forecast", key=key).json == {
        "tenant_id": "acme",
        "forecasts": [],
    }
    assert api.call("GET", "/v1/tenants/globex/forecast", key=key).status == 403
    assert api.call("GET", "/v1/tenants/acme/forecast", key=None).status == 401
    assert api.call("GET", "/v1/tenants/acme/forecast").status == 200  # admin

"""GET /v1/tenants/{tenant_id}/recommendations: tenant-scoped, exact decimals, bad input 4xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from costguard.models import Usage

from tests.api.conftest import Api
from tests.conftest import Clock


def sandboxes(api: Api, clock: Clock, tenant: str) -> None:
    """10 gpu sessions of an hour from Nov 1: 10 × 1,800 s past the timeout × $0.0008 = $14.40."""
    for n in range(10):
        clock.at = datetime(2026, 11, 1 + 3 * n, 10, tzinfo=UTC)
        usage = Usage(resource="sandbox", tier="gpu", seconds="3600")
        api.ledger.record_usage(tenant, usage, enforce=False)
    clock.at = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_tenant_reads_its_recommendations_with_savings_as_decimal_strings(
    api: Api,
    clock: Clock,
) -> None:
    # Given a tenant whose gpu sandboxes run an hour
    sandboxes(api, clock, "sandy")
    key = api.tenant_key("sandy")
    # When its own key reads its recommendations
    answer = api.call("GET", "/v1/tenants/sandy/recommendations", key=key)
    # Then one sandbox recommendation, money as decimal strings, over the last 30 days
    assert answer.status == 200, answer.text
    body = answer.json
    assert body["tenant_id"] == "sandy"
    assert body["monthly_savings_usd"] == "14.400000"
    assert body["period_from"] == "2026-10-31T12:00:00Z"
    assert body["period_to"] == "2026-11-30T12:00:00Z"
    assert (body["days_observed"], body["records_examined"], body["truncated"]) == (30, 10, False)
    [rec] = body["recommendations"]
    assert rec["recommendation_id"] == "sandbox_time:gpu"
    assert rec["kind"] == "sandbox_time"
    assert rec["monthly_savings_usd"] == "14.400000"
    assert rec["confidence"] == "low"  # 10 sessions
    assert rec["evidence"]["long_sessions"] == "10"
    # And the admin key reads the same; a shorter window scales to a month (× 30 / 7)
    assert api.call("GET", "/v1/tenants/sandy/recommendations").json == body
    week = api.call("GET", "/v1/tenants/sandy/recommendations", query="days=7").json
    assert week["days_observed"] == 7
    # Nov 25 and Nov 28 in the window: 2 × 1,800 s × $0.0008 = $2.88, × 30 / 7
    assert week["monthly_savings_usd"] == "12.342857"


def test_another_tenants_key_and_no_key_are_refused_as_problems(api: Api, clock: Clock) -> None:
    sandboxes(api, clock, "sandy")
    other = api.tenant_key("other")
    refused = api.call("GET", "/v1/tenants/sandy/recommendations", key=other)
    assert refused.status == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json["status"] == 403
    anonymous = api.call("GET", "/v1/tenants/sandy/recommendations", key=None)
    assert anonymous.status == 401
    assert anonymous.json["status"] == 401


def test_a_window_outside_7_to_90_days_is_a_422_naming_the_field(api: Api) -> None:
    for days in ("3", "91", "x"):
        answer = api.call("GET", "/v1/tenants/sandy/recommendations", query=f"days={days}")
        assert answer.status == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "days" in answer.text


def test_a_tenant_without_records_gets_an_empty_list(api: Api, clock: Clock) -> None:
    clock.at = datetime(2026, 11, 30, 12, tzinfo=UTC) - timedelta(days=0)
    answer = api.call("GET", "/v1/tenants/quiet/recommendations")
    assert answer.status == 200, answer.text
    assert answer.json["recommendations"] == []
    assert answer.json["monthly_savings_usd"] == "0.000000"

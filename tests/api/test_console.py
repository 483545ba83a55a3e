"""The console's files served by the API, and the admin overview it reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from costguard.models import Usage

from local import vendor_console
from tests.api.conftest import Api
from tests.conftest import Clock
from tests.helpers import set_quota


def test_the_console_page_is_served_with_a_same_origin_policy(api: Api) -> None:
    answer = api.call("GET", "/console", key=None)
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>costguard console</title>" in answer.text
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "https:" not in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    # every script and stylesheet is one of ours: nothing from a CDN
    for src in ("/console/uPlot.iife.min.js", "/console/console.js", "/console/console.css"):
        assert src in answer.text
    assert "http://" not in answer.text and "https://" not in answer.text


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("console.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("uPlot.min.css", "text/css; charset=utf-8"),
        ("uPlot.LICENSE.txt", "text/plain; charset=utf-8"),
    ],
)
def test_each_asset_is_served_with_its_type(api: Api, name: str, kind: str) -> None:
    answer = api.call("GET", f"/console/{name}", key=None)
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"] == kind


@pytest.mark.parametrize("name", ["nope.js", "..%2Fhandler.py", ".hidden.js", "index.py"])
def test_anything_else_is_a_404_problem(api: Api, name: str) -> None:
    answer = api.call("GET", f"/console/{name}", key=None)
    assert answer.status == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["status"] == 404


def test_the_vendored_chart_library_is_the_one_in_package_json() -> None:
    if not vendor_console.SOURCE.is_dir():
        pytest.fail("node_modules/uplot is missing: make install runs npm ci")
    assert vendor_console.differences() == []
    assert vendor_console.version() == "1.6.32"


def test_the_overview_adds_up_the_tenants_days_models_and_quotas(api: Api, clock: Clock) -> None:
    # Given two tenants: acme spent $3 on gpt-4o on Nov 28 and $2 of gpu today, and its $5
    # daily quota is at 100 % today; globex spent $1 on Nov 29
    ledger = api.ledger
    clock.at = datetime(2026, 11, 28, 10, tzinfo=UTC)
    record = ledger.record_usage
    record(
        "acme",
        Usage(resource="llm", provider="openai", model="gpt-4o", cost_usd="3"),
        enforce=False,
    )
    clock.at = datetime(2026, 11, 29, 10, tzinfo=UTC)
    record("globex", Usage(resource="llm", cost_usd="1"), enforce=False)
    clock.at = datetime(2026, 11, 30, 9, tzinfo=UTC)
    set_quota(ledger, "acme", "tenant:all:day", "2")
    record("acme", Usage(resource="sandbox", tier="gpu", cost_usd="2"), enforce=False)
    clock.at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    # When the admin reads the 7-day overview
    answer = api.call("GET", "/v1/platform/overview", query="days=7")
    # Then the sums, per day, per model and tier, and the full quota
    assert answer.status == 200, answer.text
    body = answer.json
    assert (body["from_date"], body["to_date"]) == ("2026-11-24", "2026-11-30")
    assert body["total_usd"] == "6.000000"
    assert [(t["tenant_id"], t["spent_usd"], t["today_usd"]) for t in body["tenants"]] == [
        ("acme", "5.000000", "2.000000"),
        ("globex", "1.000000", "0.000000"),
    ]
    assert [d["cost_usd"] for d in body["daily"]][-3:] == ["3.000000", "1.000000", "2.000000"]
    assert len(body["daily"]) == 7
    assert body["by_model"] == [
        {"key": "openai/gpt-4o", "cost_usd": "3.000000"},
        {"key": "sandbox:gpu", "cost_usd": "2.000000"},
        {"key": "-/-", "cost_usd": "1.000000"},
    ]
    [near] = body["quotas_near_limit"]
    assert (near["tenant_id"], near["quota_id"], near["utilization"]) == (
        "acme",
        "tenant:all:day",
        "1.000000",
    )
    assert body["truncated"] is False
    # And a tenant key may not read it
    key = api.tenant_key("acme")
    refused = api.call("GET", "/v1/platform/overview", key=key)
    assert refused.status == 403 and refused.json["status"] == 403

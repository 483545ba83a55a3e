"""GET /v1/tenants/{tenant_id}/alerts and /v1/platform/alerts: newest first, paginated, scoped."""

from __future__ import annotations

from costguard.alerts import AlertBook, AlertDraft, AlertType, Severity

from tests.api.conftest import Api
from tests.conftest import Clock


def draft(tenant: str | None, n: int, kind: AlertType = AlertType.THRESHOLD) -> AlertDraft:
    return AlertDraft(
        alert_type=kind,
        severity=Severity.INFO,
        dedup_key=f"test#{n}",
        tenant_id=tenant,
        title=f"alert {n}",
        message=f"message {n}",
        quota_id="tenant:llm:month" if tenant else "platform:llm:month",
        threshold_pct=n,
    )


def test_a_tenant_reads_its_alerts_newest_first_in_pages(api: Api, clock: Clock) -> None:
    book = AlertBook(api.ledger.table, clock)
    for n in range(5):
        book.record([draft("acme", n)])
        clock.advance(seconds=1)
    book.record([draft("globex", 99)])
    key = api.tenant_key("acme")

    first = api.call("GET", "/v1/tenants/acme/alerts", key=key, query="limit=3")
    assert first.status == 200, first.text
    page = first.json
    assert [a["title"] for a in page["alerts"]] == ["alert 4", "alert 3", "alert 2"]
    assert page["alerts"][0]["event"] == "QuotaThresholdCrossed"
    assert page["alerts"][0]["delivery"] == "pending"
    second = api.call(
        "GET", "/v1/tenants/acme/alerts", key=key, query=f"limit=3&cursor={page['next_cursor']}"
    )
    assert [a["title"] for a in second.json["alerts"]] == ["alert 1", "alert 0"]
    assert second.json["next_cursor"] is None


def test_alerts_filter_by_type_and_platform_alerts_need_admin(api: Api, clock: Clock) -> None:
    book = AlertBook(api.ledger.table, clock)
    book.record([draft("acme", 1)])
    book.record([draft("acme", 2, AlertType.ANOMALY)])
    book.record([draft(None, 3)])
    key = api.tenant_key("acme")

    anomalies = api.call("GET", "/v1/tenants/acme/alerts", key=key, query="type=anomaly")
    assert [a["title"] for a in anomalies.json["alerts"]] == ["alert 2"]
    assert anomalies.json["alerts"][0]["event"] == "CostAnomalyDetected"

    platform = api.call("GET", "/v1/platform/alerts")
    assert [a["title"] for a in platform.json["alerts"]] == ["alert 3"]
    assert platform.json["alerts"][0]["tenant_id"] is None

    refused = api.call("GET", "/v1/platform/alerts", key=key)
    assert refused.status == 403
    assert refused.headers["content-type"] == "application/problem+json"


def test_another_tenants_alerts_and_bad_queries_are_refused(api: Api) -> None:
    key = api.tenant_key("acme")

    other = api.call("GET", "/v1/tenants/globex/alerts", key=key)
    assert other.status == 403
    assert other.json["status"] == 403

    for query in ("limit=0", "limit=201", "cursor=../../x", "type=nope"):
        bad = api.call("GET", "/v1/tenants/acme/alerts", key=key, query=query)
        assert bad.status == 422, query
        assert bad.headers["content-type"] == "application/problem+json"

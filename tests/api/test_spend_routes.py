"""Spending over the API: reserve, commit, release, record, check, and their refusals."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.api.conftest import Api

T = "acme"
LLM = {"resource": "llm", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 500}


@pytest.fixture
def key(api: Api) -> str:
    assert (
        api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme", "plan": "pro"}).status
        == 201
    )
    assert (
        api.call(
            "PUT",
            f"/v1/tenants/{T}/quotas/tenant:llm:month",
            {"limit_usd": "10.00", "mode": "hard"},
        ).status
        == 200
    )
    return api.tenant_key(T)


def test_reserve_commit_flow(api: Api, key: str) -> None:
    r = api.call("POST", f"/v1/tenants/{T}/reservations", {**LLM, "user_id": "u-1"}, key=key)
    assert r.status == 201, r.text
    body = r.json
    assert body["reserved_usd"] == "0.007500"
    assert body["quotas"][0]["remaining_usd"] == "9.992500"

    c = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/{body['reservation_id']}/commit",
        {"resource": "llm", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100},
        key=key,
    )
    assert c.status == 200, c.text
    assert (c.json["cost_usd"], c.json["status"], c.json["user_id"]) == (
        "0.003500",
        "committed",
        "u-1",
    )

    again = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/{body['reservation_id']}/commit",
        {"resource": "llm", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100},
        key=key,
    )
    assert (again.status, again.json["record_id"]) == (200, c.json["record_id"])
    quotas = api.call("GET", f"/v1/tenants/{T}/quotas", key=key).json["quotas"]
    assert (quotas[0]["spent_usd"], quotas[0]["reserved_usd"]) == ("0.003500", "0.000000")


def test_over_quota_is_429_with_the_binding_quota_and_retry_after(api: Api, key: str) -> None:
    api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "9.50"},
        key=key,
    )

    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "0.60"},
        key=key,
    )

    assert r.status == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == str(r.json["retry_after_seconds"]) == "475200"
    p = r.json
    assert (
        p["quota_id"],
        p["limit_usd"],
        p["spent_usd"],
        p["reserved_usd"],
        p["remaining_usd"],
        p["requested_usd"],
        p["status"],
    ) == ("tenant:llm:month", "10.000000", "0.000000", "9.500000", "0.500000", "0.600000", 429)
    assert p["type"].endswith("/quota-exceeded")


def test_over_quota_as_server_sent_events(api: Api, key: str) -> None:
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "11"},
        key=key,
        headers={"Accept": "text/event-stream"},
    )
    assert (r.status, r.headers["content-type"]) == (429, "text/event-stream")
    lines = r.text.split("\n")
    assert lines[0] == "event: error" and lines[1].startswith("data: {")
    assert lines[3:5] == ["event: done", 'data: {"status": "quota_exceeded"}']


def test_release_then_commit_is_409(api: Api, key: str) -> None:
    rid = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
    ).json["reservation_id"]
    d = api.call("DELETE", f"/v1/tenants/{T}/reservations/{rid}", key=key)
    assert (d.status, d.json["status"], d.json["released_usd"]) == (200, "released", "1.000000")
    c = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/{rid}/commit",
        {"resource": "llm", "cost_usd": "1"},
        key=key,
    )
    assert (c.status, c.json["reservation_status"]) == (409, "released")


def test_unknown_reservation_is_404(api: Api, key: str) -> None:
    c = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/nope/commit",
        {"resource": "llm", "cost_usd": "1"},
        key=key,
    )
    assert (c.status, c.headers["content-type"]) == (404, "application/problem+json")


def test_paused_tenant_is_423(api: Api, key: str) -> None:
    assert api.call("POST", f"/v1/tenants/{T}/pause").status == 200
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
    )
    assert (r.status, r.json["type"].rsplit("/", 1)[1]) == (423, "paused")


def test_record_and_check(api: Api, key: str) -> None:
    rec = api.call(
        "POST",
        f"/v1/tenants/{T}/usage",
        {"resource": "sandbox", "tier": "standard", "seconds": "100"},
        key=key,
    )
    assert (rec.status, rec.json["cost_usd"], rec.json["status"]) == (201, "0.003700", "recorded")
    no = api.call(
        "POST",
        f"/v1/tenants/{T}/quota-checks",
        {"resource": "llm", "estimated_cost_usd": "10.01"},
        key=key,
    )
    assert (no.status, no.json["allowed"], no.json["binding_quota_id"]) == (
        200,
        False,
        "tenant:llm:month",
    )


def test_idempotency_key_on_reserve_and_record(api: Api, key: str) -> None:
    body = {"resource": "llm", "estimated_cost_usd": "2"}
    first = api.call(
        "POST", f"/v1/tenants/{T}/reservations", body, key=key, headers={"Idempotency-Key": "a1"}
    )
    again = api.call(
        "POST", f"/v1/tenants/{T}/reservations", body, key=key, headers={"Idempotency-Key": "a1"}
    )
    other = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {**body, "estimated_cost_usd": "3"},
        key=key,
        headers={"Idempotency-Key": "a1"},
    )
    assert first.json["reservation_id"] == again.json["reservation_id"]
    assert other.status == 422
    quotas = api.call("GET", f"/v1/tenants/{T}/quotas", key=key).json["quotas"]
    assert quotas[0]["reserved_usd"] == "2.000000"


def test_admin_routes_and_their_refusals(api: Api, key: str) -> None:
    again = api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme", "plan": "pro"})
    assert (again.status, again.json["type"].rsplit("/", 1)[1]) == (409, "tenant-exists")
    retried = api.call(
        "POST",
        "/v1/tenants",
        {"tenant_id": T, "name": "Acme", "plan": "pro"},
        headers={"Idempotency-Key": "t-1"},
    )
    assert (retried.status, retried.json["tenant_id"]) == (201, T)
    generated = api.call("POST", "/v1/tenants", {"name": "No Id"})
    assert generated.status == 201 and generated.json["tenant_id"].startswith("t-")
    assert api.call("DELETE", f"/v1/tenants/{T}/quotas/tenant:llm:month").status == 204
    gone = api.call("DELETE", f"/v1/tenants/{T}/quotas/tenant:llm:month")
    assert (gone.status, gone.headers["content-type"]) == (404, "application/problem+json")
    put = api.call("PUT", "/v1/platform/quotas/platform:all:month", {"limit_usd": "1"})
    # announced: every process's reserves apply it within 5 s (D71); a tenant quota at once
    written = datetime.fromisoformat(put.json["effective_at"])
    assert (put.status, written) == (200, api.ledger.now() + timedelta(seconds=5))
    tenant_put = api.call("PUT", f"/v1/tenants/{T}/quotas/tenant:sandbox:month", {"limit_usd": "1"})
    assert tenant_put.json["effective_at"] is None
    platform = api.call("GET", "/v1/platform/quotas").json["quotas"]
    assert [q["quota_id"] for q in platform] == ["platform:all:month"]
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "2"},
        key=key,
    )
    assert (r.status, r.json["quota_id"]) == (429, "platform:all:month")
    assert api.call("DELETE", "/v1/platform/quotas/platform:all:month").status == 204


def test_pricing_routes(api: Api, key: str) -> None:
    prices = api.call("GET", "/v1/pricing", key=key).json
    # the catalog is generated now (thousands of models): a first page of 200 and a cursor;
    # the sandbox tiers are the original three plus the CPU and GPU tiers added with it
    assert len(prices["models"]) == 200 and prices["next_cursor"]
    assert {"standard", "gpu", "high-memory", "cpu-8", "gpu-h100"} <= {
        t["tier"] for t in prices["sandbox_tiers"]
    }
    assert api.call("GET", "/v1/pricing", key=None).status == 401
    new = api.call(
        "PUT",
        "/v1/pricing/openai/gpt-4o",
        {
            "input_per_million_usd": "5",
            "output_per_million_usd": "15",
            "effective_from": "2026-11-25T00:00:00Z",
        },
    )
    assert (new.status, new.json["cached_input_per_million_usd"]) == (200, "5.000000")
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/quota-checks",
        {"resource": "llm", "model": "gpt-4o", "input_tokens": 1_000_000, "output_tokens": 0},
        key=key,
    )
    assert r.json["requested_usd"] == "5.000000"
    assert (
        api.call(
            "PUT",
            "/v1/pricing/openai/gpt-4o",
            {
                "input_per_million_usd": "5",
                "output_per_million_usd": "15",
                "effective_from": "2026-11-25T00:00:00Z",
            },
            key=key,
        ).status
        == 403
    )


def test_user_pause_and_unpause(api: Api, key: str) -> None:
    assert api.call("POST", f"/v1/tenants/{T}/pause", {"user_id": "u-9"}).json == {
        "tenant_id": T,
        "user_id": "u-9",
        "paused": True,
    }
    body = {"resource": "llm", "estimated_cost_usd": "1", "user_id": "u-9"}
    refused = api.call("POST", f"/v1/tenants/{T}/reservations", body, key=key)
    assert (refused.status, refused.json["user_id"]) == (423, "u-9")
    assert api.call("POST", f"/v1/tenants/{T}/unpause", {"user_id": "u-9"}).status == 200
    assert api.call("POST", f"/v1/tenants/{T}/reservations", body, key=key).status == 201


def test_prefer_return_minimal_skips_the_figures(api: Api, key: str) -> None:
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
        headers={"Prefer": "return=minimal"},
    )
    assert r.status == 201 and r.json.get("quotas") is None


def test_oversized_body_is_413(api: Api, key: str) -> None:
    r = api.call("POST", f"/v1/tenants/{T}/usage", key=key, raw_body="{" + " " * 20_000 + "}")
    assert (r.status, r.headers["content-type"]) == (413, "application/problem+json")


def test_unreachable_ledger_is_503_with_retry_after(api: Api, key: str) -> None:
    from costguard.errors import LedgerUnavailable

    def down(*_: object, **__: object) -> None:
        raise LedgerUnavailable("ledger unavailable: EndpointConnectionError", 2)

    api.ledger.table.transact = down  # type: ignore[method-assign]
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
    )
    assert (r.status, r.headers["retry-after"], r.json["retry_after_seconds"]) == (503, "2", 2)


def test_a_json_body_without_its_content_type_is_read_as_json(api: Api, key: str) -> None:
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/quota-checks",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status, r.json["allowed"]) == (200, True)


def test_the_remembered_scalar_check_answers_as_powertools_does(api: Api, key: str) -> None:
    # Given the handler's remembered check (D111) and Powertools' own
    from aws_lambda_powertools.event_handler.middlewares import openapi_validation
    from aws_lambda_powertools.event_handler.openapi.compat import is_scalar_field

    from functions.api import handler

    assert getattr(openapi_validation, "is_scalar_field") is handler._remembered_is_scalar_field  # noqa: B009
    # When a request with every kind of parameter has been served (path, query, headers)
    status = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        LLM,
        key=key,
        headers={"Idempotency-Key": "s-1", "Prefer": "return=minimal"},
    ).status
    assert status == 201
    assert api.call("GET", f"/v1/tenants/{T}/usage/records", key=key, query="limit=5").status == 200
    # Then every parameter of every route is answered as Powertools answers, twice
    fields = [
        field
        for route in handler.app._static_routes + handler.app._dynamic_routes
        for field in (
            route.dependant.path_params
            + route.dependant.query_params
            + route.dependant.header_params
        )
    ]
    assert len(fields) > 10
    for field in fields * 2:
        assert handler._remembered_is_scalar_field(field) is is_scalar_field(field)

"""The contract fixes the fuzzing and the hand probes of issue 18 asked for, each pinned: who is
calling is settled before what they sent, path parameters outside their pattern are refused
(not a 405), pause and unpause take an object or nothing, a forged cursor is not a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import Answer, Api
from tests.helpers import set_quota

T = "acme"
PROBLEM = "application/problem+json"


def _problem(answer: Answer, status: int, kind: str) -> dict[str, Any]:
    assert answer.status == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json
    assert body["status"] == status
    assert str(body["type"]).endswith("/" + kind), body
    return body


@pytest.fixture
def tenant(api: Api) -> str:
    assert api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"}).status == 201
    return api.tenant_key(T)


# ------------------------------------------------------------- authentication before the body
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/v1/tenants/{T}/reservations", {"resource": 5}),
        ("POST", "/v1/tenants", {"tenant_id": 5}),
        ("PUT", f"/v1/tenants/{T}/quotas/tenant:llm:month", [1]),
        ("POST", f"/v1/tenants/{T}/pause", "x"),
    ],
)
def test_no_key_and_an_invalid_body_is_a_401_not_a_422(
    api: Api, method: str, path: str, body: object
) -> None:
    answer = api.call(method, path, body, key=None)

    _problem(answer, 401, "unauthenticated")
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/tenants", {"tenant_id": 5}),
        ("PUT", f"/v1/tenants/{T}/quotas/tenant:llm:month", {"limit_usd": "lots"}),
        ("POST", f"/v1/tenants/{T}/pause", [1]),
        ("PUT", "/v1/pricing/openai/gpt-4o", {}),
    ],
)
def test_a_tenant_key_with_an_invalid_body_on_an_admin_route_is_a_403_not_a_422(
    api: Api, tenant: str, method: str, path: str, body: object
) -> None:
    _problem(api.call(method, path, body, key=tenant), 403, "forbidden")


def test_another_tenants_key_with_an_invalid_body_is_a_403(api: Api, tenant: str) -> None:
    api.call("POST", "/v1/tenants", {"tenant_id": "globex", "name": "Globex"})

    answer = api.call("POST", "/v1/tenants/globex/reservations", {"resource": 5}, key=tenant)

    _problem(answer, 403, "forbidden")


def test_an_admin_with_an_invalid_body_still_gets_the_422(api: Api, tenant: str) -> None:
    body = _problem(api.call("POST", "/v1/tenants", {"tenant_id": 5}), 422, "validation")
    assert body["invalid_params"][0]["name"] == "tenant_id"


# ------------------------------------------------------------------ path parameters
@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", "/v1/tenants/AB/quotas", "tenant_id"),
        ("POST", "/v1/tenants/-acme-/pause", "tenant_id"),
        ("DELETE", f"/v1/tenants/{T}/quotas/bogus", "quota_id"),
        ("DELETE", f"/v1/tenants/{T}/quotas/platform:llm:day", "quota_id"),
        ("DELETE", "/v1/platform/quotas/tenant:llm:day", "quota_id"),
        ("DELETE", f"/v1/tenants/{T}/api-keys/XYZ", "key_id"),
    ],
)
def test_a_path_parameter_outside_its_pattern_is_a_422_naming_it(
    api: Api, tenant: str, method: str, path: str, name: str
) -> None:
    body = _problem(api.call(method, path), 422, "validation")
    assert body["invalid_params"][0]["name"] == name


@pytest.mark.parametrize(
    "path",
    [
        '/v1/tenants/a"b/quotas/tenant:llm:day',
        f"/v1/tenants/{T}/quotas/tenant#llm",
        '/v1/pricing/open"ai/gpt-4o',
        "/v1/tenants/ac\\me/pause",
    ],
)
def test_a_path_parameter_the_router_cannot_match_is_a_404_not_a_405(
    api: Api, tenant: str, path: str
) -> None:
    # These characters are outside what Powertools matches in a path parameter: no route is
    # this path, whatever the method (the 405 came from a looser match of our own)
    for method in ("GET", "PUT", "DELETE", "POST"):
        _problem(api.call(method, path, {"limit_usd": "1"}), 404, "not-found")


def test_a_wrong_method_on_a_well_formed_path_is_still_a_405_with_allow(
    api: Api, tenant: str
) -> None:
    answer = api.call("GET", f"/v1/tenants/{T}/quotas/tenant:llm:month")

    _problem(answer, 405, "method-not-allowed")
    assert answer.headers["allow"] == "DELETE, PUT"


# ---------------------------------------------------------------- pause and unpause bodies
@pytest.mark.parametrize("route", ["pause", "unpause"])
@pytest.mark.parametrize("raw", ["[]", '[{"user_id": "u-1"}]', "0", "1", '"u-1"', "true", "false"])
def test_an_array_or_a_scalar_as_the_pause_body_is_a_422_that_changes_nothing(
    api: Api, tenant: str, route: str, raw: str
) -> None:
    answer = api.call("POST", f"/v1/tenants/{T}/{route}", raw_body=raw)

    _problem(answer, 422, "validation")
    reserve = {"resource": "llm", "estimated_cost_usd": "0.01"}
    assert api.call("POST", f"/v1/tenants/{T}/reservations", reserve).status == 201


@pytest.mark.parametrize("raw", [None, "", "{}", "null", '{"user_id": "u-1"}'])
def test_pause_takes_an_object_or_nothing(api: Api, tenant: str, raw: str | None) -> None:
    answer = api.call("POST", f"/v1/tenants/{T}/pause", raw_body=raw)

    assert answer.status == 200, answer.text
    assert answer.json["paused"] is True


# ------------------------------------------------------------------------------ cursors
def _records(api: Api, n: int) -> list[str]:
    set_quota(api.ledger, T, "tenant:all:month", "100")
    for _ in range(n):
        answer = api.call(
            "POST", f"/v1/tenants/{T}/usage", {"resource": "llm", "estimated_cost_usd": "0.01"}
        )
        assert answer.status == 201, answer.text
    page = api.call("GET", f"/v1/tenants/{T}/usage/records", query="limit=500")
    return [r["record_id"] for r in page.json["records"]]


@pytest.mark.parametrize(
    "cursor",
    [
        "00000000000000000000000000",  # before every record there can be
        "0000000000ZZZZZZZZZZZZZZZZ",
        "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",  # after every record there can be
        "01KB00000000000000000000000"[:26],  # inside this month, between two records
    ],
)
def test_a_forged_but_well_formed_records_cursor_pages_from_where_it_points(
    api: Api, tenant: str, cursor: str
) -> None:
    ids = _records(api, 3)

    answer = api.call("GET", f"/v1/tenants/{T}/usage/records", query=f"cursor={cursor}")

    assert answer.status == 200, answer.text
    assert [r["record_id"] for r in answer.json["records"]] == [i for i in ids if i > cursor]


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        (f"/v1/tenants/{T}/usage/records", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"),  # past the ULID range
        (f"/v1/tenants/{T}/usage/records", "0000000000000000000000000U"),  # U is not Crockford
        (f"/v1/tenants/{T}/usage/records", "abc"),
        (f"/v1/tenants/{T}/alerts", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
        ("/v1/platform/alerts", "not-a-cursor"),
    ],
)
def test_a_malformed_cursor_is_a_422_naming_it(
    api: Api, tenant: str, path: str, cursor: str
) -> None:
    body = _problem(api.call("GET", path, query=f"cursor={cursor}"), 422, "validation")
    assert body["invalid_params"][0]["name"] == "cursor"


@pytest.mark.parametrize("path", [f"/v1/tenants/{T}/alerts", "/v1/platform/alerts"])
@pytest.mark.parametrize("cursor", ["00000000000000000000000000", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"])
def test_a_forged_alerts_cursor_is_an_answer(api: Api, tenant: str, path: str, cursor: str) -> None:
    answer = api.call("GET", path, query=f"cursor={cursor}")

    assert answer.status == 200, answer.text
    assert isinstance(answer.json["alerts"], list)


def test_the_document_declares_the_path_patterns_the_guard_enforces(api: Api) -> None:
    document = json.loads(api.call("GET", "/v1/openapi.json", key=None).text)

    def pattern(path: str, method: str, name: str) -> str:
        operation = document["paths"][path][method]
        (parameter,) = [p for p in operation["parameters"] if p["name"] == name]
        return str(parameter["schema"]["pattern"])

    assert pattern("/v1/tenants/{tenant_id}/quotas", "get", "tenant_id").startswith("^[a-z0-9]")
    tenant_quota = pattern("/v1/tenants/{tenant_id}/quotas/{quota_id}", "put", "quota_id")
    platform_quota = pattern("/v1/platform/quotas/{quota_id}", "put", "quota_id")
    assert "user:" in tenant_quota and "platform" not in tenant_quota
    assert "platform" in platform_quota and "user" not in platform_quota
    records = document["paths"]["/v1/tenants/{tenant_id}/usage/records"]["get"]
    (cursor,) = [p for p in records["parameters"] if p["name"] == "cursor"]
    assert cursor["schema"]["anyOf"][0]["pattern"].startswith("^[0-7]")

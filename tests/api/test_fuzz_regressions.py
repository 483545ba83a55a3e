"""Bugs the schemathesis run (test_fuzz_openapi.py) found, each pinned by its smallest case."""

from __future__ import annotations

import base64
import json

from functions.api import handler
from tests.api.conftest import ADMIN_KEY, CONTEXT, Answer, Api, http_event

T = "acme"


def _raw(event: dict[str, object]) -> Answer:
    raw = handler.lambda_handler(event, CONTEXT)
    headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
    return Answer(raw["statusCode"], headers, raw.get("body") or "")


def test_a_body_that_is_not_utf8_is_a_400_not_a_500(api: Api) -> None:
    # Given a body API Gateway had to base64-encode because it is not text
    event = http_event("POST", "/v1/tenants", key=ADMIN_KEY)
    event["body"] = base64.b64encode(b"\x87\xfb&\x00\x1b4").decode()
    event["isBase64Encoded"] = True

    answer = _raw(event)

    assert answer.status == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["type"].endswith("/malformed-json")


def test_a_base64_body_that_is_utf8_json_is_read(api: Api) -> None:
    event = http_event("POST", "/v1/tenants", key=ADMIN_KEY)
    event["body"] = base64.b64encode(json.dumps({"tenant_id": T, "name": "Acme"}).encode()).decode()
    event["isBase64Encoded"] = True

    answer = _raw(event)

    assert answer.status == 201, answer.text
    assert answer.json["tenant_id"] == T


def test_a_day_query_must_be_a_calendar_day_not_a_unix_time(api: Api) -> None:
    # pydantic alone reads "0" as Unix time 0 and answered for 1970-01-01
    api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"})

    for query in ("to=0", "from=1700000000", "to=2026-1-5"):
        answer = api.call("GET", f"/v1/tenants/{T}/usage", query=query)
        assert answer.status == 422, (query, answer.text)
        assert answer.json["invalid_params"][0]["name"] in ("from", "to")


def test_a_day_before_1970_is_read_not_a_500(api: Api) -> None:
    # Record ids are ULIDs (milliseconds since 1970): a range starting earlier overflowed them
    api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"})

    for path in (f"/v1/tenants/{T}/usage", f"/v1/tenants/{T}/usage/records"):
        answer = api.call("GET", path, query="from=1917-02-21&to=1917-03-01&group_by=user")
        assert answer.status == 200, (path, answer.text)


def test_the_document_says_every_refusal_is_problem_json(api: Api) -> None:
    document = json.loads(api.call("GET", "/v1/openapi.json", key=None).text)

    reserve = document["paths"]["/v1/tenants/{tenant_id}/reservations"]["post"]["responses"]
    assert set(reserve) >= {"201", "401", "403", "422", "423", "429", "503"}
    assert "application/problem+json" in reserve["422"]["content"]
    assert "Retry-After" in reserve["429"]["headers"]
    assert document["paths"]["/v1/health"]["get"]["security"] == []
    revoke = document["paths"]["/v1/tenants/{tenant_id}/api-keys/{key_id}"]["delete"]
    assert "content" not in revoke["responses"]["204"]


def test_a_price_from_before_the_year_1000_does_not_break_pricing_for_everyone(api: Api) -> None:
    # strftime("%Y") wrote year 211 as "211-04-16…", which fromisoformat could not read back:
    # every later price lookup (every reserve of every tenant, GET /v1/pricing) was a 500
    price = {
        "input_per_million_usd": "1",
        "output_per_million_usd": "2",
        "effective_from": "0211-04-16T00:00:00Z",
    }
    assert api.call("PUT", "/v1/pricing/openai/gpt-4o", price).status == 200
    api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"})

    listed = api.call("GET", "/v1/pricing", query="provider=openai&limit=1000")
    reserved = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "model": "gpt-4o", "input_tokens": 10},
    )

    assert listed.status == 200, listed.text
    assert any(m["effective_from"].startswith("0211-04-16") for m in listed.json["models"])
    assert reserved.status == 201, reserved.text


def test_an_unknown_route_is_404_and_a_wrong_method_405_with_allow(api: Api) -> None:
    # The access guard refused Powertools' catch-all not-found route as "a route without an
    # access rule": every unknown path and every wrong method was a 403
    nowhere = api.call("GET", "/v1/nowhere")
    traversal = api.call("GET", f"/v1/tenants/{T}/..%2Fglobex/quotas", key=None)
    wrong_method = api.call("PATCH", f"/v1/tenants/{T}/reservations")

    assert (nowhere.status, traversal.status) == (404, 404)
    assert nowhere.json["type"].endswith("/not-found")
    assert wrong_method.status == 405
    assert wrong_method.headers["allow"] == "POST"

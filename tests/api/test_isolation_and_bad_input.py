"""Tenant isolation and hostile input: refused with problem+json, and nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.api.access import RULES, Access
from tests.api.conftest import ADMIN_KEY, Api

A, B = "acme", "globex"
EST = {"resource": "llm", "estimated_cost_usd": "1"}
QUOTA = {"limit_usd": "5", "mode": "hard"}
PRICE = {
    "input_per_million_usd": "1",
    "output_per_million_usd": "2",
    "effective_from": "2026-12-01T00:00:00Z",
}


def snapshot(api: Api) -> str:
    client = api.ledger.table.client
    items = client.scan(TableName=api.ledger.table.name)["Items"]
    return json.dumps(sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"])), sort_keys=True)


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    for t in (A, B):
        api.call("POST", "/v1/tenants", {"tenant_id": t, "name": t})
        api.call("PUT", f"/v1/tenants/{t}/quotas/tenant:llm:month", QUOTA)
    keys = {t: api.tenant_key(t) for t in (A, B)}
    rid = api.call("POST", f"/v1/tenants/{B}/reservations", EST, key=keys[B]).json["reservation_id"]
    return {"keys": keys, "rid": rid}


def b_routes(rid: str) -> list[tuple[str, str, Any]]:
    t = f"/v1/tenants/{B}"
    return [
        ("POST", f"{t}/reservations", EST),
        ("POST", f"{t}/reservations/{rid}/commit", {"resource": "llm", "cost_usd": "1"}),
        ("DELETE", f"{t}/reservations/{rid}", None),
        ("POST", f"{t}/usage", {"resource": "llm", "cost_usd": "1"}),
        ("POST", f"{t}/quota-checks", EST),
        ("GET", f"{t}/quotas", None),
        ("GET", f"{t}/settings", None),
        ("PUT", f"{t}/settings", {"overrun": "reject"}),
        ("GET", f"{t}/usage", None),
        ("GET", f"{t}/usage/records", None),
        ("GET", f"{t}/summary", None),
        ("GET", f"{t}/alerts", None),
        ("GET", f"{t}/forecast", None),
        ("GET", f"{t}/recommendations", None),
        ("GET", "/v1/platform/overview", None),
        ("GET", "/v1/platform/alerts", None),
        ("PUT", f"{t}/quotas/tenant:llm:day", QUOTA),
        ("DELETE", f"{t}/quotas/tenant:llm:month", None),
        ("POST", f"{t}/pause", None),
        ("POST", f"{t}/unpause", None),
        ("POST", f"{t}/api-keys", None),
        ("DELETE", f"{t}/api-keys/0123456789abcdef", None),
        ("POST", "/v1/tenants", {"tenant_id": "initech", "name": "Initech"}),
        ("GET", "/v1/platform/quotas", None),
        ("PUT", "/v1/platform/quotas/platform:all:month", QUOTA),
        ("DELETE", "/v1/platform/quotas/platform:all:month", None),
        ("PUT", "/v1/pricing/openai/gpt-4o", PRICE),
        # tenant A's own routes with an admin-only verb
        ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:month", QUOTA),
        ("POST", f"/v1/tenants/{A}/pause", None),
        ("PUT", f"/v1/tenants/{A}/settings", {"on_expiry": "release"}),
        ("POST", f"/v1/tenants/{A}/api-keys", None),
    ]


def test_every_route_has_an_access_rule_and_the_matrix_covers_every_guarded_one(
    world: dict[str, Any],
) -> None:
    covered = {(m, p) for m, p, _ in b_routes("x")}
    guarded = {(m, p) for (m, p), rule in RULES.items() if rule not in (Access.PUBLIC, Access.ANY)}
    normalized = set()
    for m, p in covered:
        for rule_method, rule_path in guarded:
            import re

            if m == rule_method and re.fullmatch(re.sub(r"<\w+>", r"[^/]+", rule_path), p):
                normalized.add((rule_method, rule_path))
    assert normalized == guarded


def test_a_tenant_key_reaches_nothing_of_another_tenant_or_of_the_admin(
    api: Api, world: dict[str, Any]
) -> None:
    before = snapshot(api)

    answers = [
        (m, p, api.call(m, p, body, key=world["keys"][A])) for m, p, body in b_routes(world["rid"])
    ]

    for method, path, answer in answers:
        assert answer.status == 403, (method, path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json["type"].endswith("/forbidden")
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "key", [None, "", "cg.0123456789abcdef.wrong", "Bearer", ADMIN_KEY + "x", "cg..", "not-a-key"]
)
def test_missing_or_invalid_keys_are_401(api: Api, world: dict[str, Any], key: str | None) -> None:
    before = snapshot(api)
    for method, path, body in b_routes(world["rid"]):
        answer = api.call(method, path, body, key=key)
        assert answer.status == 401, (method, path, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert snapshot(api) == before


def test_a_revoked_key_is_401(api: Api, world: dict[str, Any]) -> None:
    key_id = world["keys"][A].split(".")[1]
    assert api.call("DELETE", f"/v1/tenants/{A}/api-keys/{key_id}").status == 204
    assert api.call("GET", f"/v1/tenants/{A}/quotas", key=world["keys"][A]).status == 401
    assert api.call("DELETE", f"/v1/tenants/{A}/api-keys/{key_id}x").status == 422
    assert api.call("DELETE", f"/v1/tenants/{B}/api-keys/{key_id}").status == 404


R = f"/v1/tenants/{A}/reservations"
U = f"/v1/tenants/{A}/usage"
BAD: list[tuple[str, str, dict[str, Any]]] = [
    # (method, path, kwargs for api.call) — every one a client mistake
    ("POST", R, {"raw_body": "{not json"}),
    ("POST", R, {"raw_body": ""}),
    ("POST", R, {"raw_body": "[]"}),
    ("POST", R, {"raw_body": "null"}),
    ("POST", R, {"body": {}}),
    ("POST", R, {"body": {"resource": "gpu"}}),
    ("POST", R, {"body": {"resource": "llm"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": 0.05}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "-1"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "NaN"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "Infinity"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "1e30"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "0.0000001"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "abc"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": True}}),
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-4o", "input_tokens": -5}}),
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-4o", "input_tokens": "5"}}),
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-4o", "input_tokens": 1.5}}),
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-4o", "input_tokens": 10**12}}),
    (
        "POST",
        R,
        {
            "body": {
                "resource": "llm",
                "model": "gpt-4o",
                "input_tokens": 1,
                "cached_input_tokens": 2,
            }
        },
    ),
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-99", "input_tokens": 1}}),
    ("POST", R, {"body": {"resource": "llm", "model": "../../etc/passwd", "input_tokens": 1}}),
    ("POST", R, {"body": {"resource": "sandbox", "tier": "quantum", "seconds": "1"}}),
    ("POST", R, {"body": {"resource": "sandbox", "tier": "standard"}}),
    ("POST", R, {"body": {"resource": "sandbox", "tier": "standard", "seconds": "-1"}}),
    ("POST", R, {"body": {"resource": "sandbox", "model": "gpt-4o", "seconds": "1"}}),
    ("POST", R, {"body": {**EST, "user_id": "a/b"}}),
    ("POST", R, {"body": {**EST, "user_id": "x" * 200}}),
    ("POST", R, {"body": {**EST, "metadata": {f"k{i}": "v" for i in range(40)}}}),
    ("POST", R, {"body": {**EST, "metadata": {"k": "v" * 1000}}}),
    ("POST", R, {"body": {**EST, "metadata": {"k": 1}}}),
    ("POST", R, {"body": {**EST, "surprise": 1}}),
    ("POST", R, {"body": {**EST, "ttl_seconds": 0}}),
    ("POST", R, {"body": {**EST, "ttl_seconds": 10**9}}),
    ("POST", R, {"body": {**EST, "conversation_id": "é" * 10}}),
    ("POST", R, {"raw_body": json.dumps({**EST, "metadata": {"k": "x" * 20000}})}),
    ("POST", f"{R}/x/commit", {"body": {"resource": "llm"}}),
    ("POST", U, {"body": {"resource": "llm", "cost_usd": "1", "enforce": "maybe"}}),
    (
        "POST",
        f"/v1/tenants/{A}/quota-checks",
        {"body": {"resource": "llm", "estimated_cost_usd": 1.0}},
    ),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:year", {"body": QUOTA}),
    ("PUT", f"/v1/tenants/{A}/quotas/platform:llm:month", {"body": QUOTA}),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:month", {"body": {"limit_usd": "-1"}}),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:month", {"body": {"limit_usd": "5", "mode": "x"}}),
    (
        "PUT",
        f"/v1/tenants/{A}/quotas/tenant:llm:month",
        {"body": {"limit_usd": "5", "thresholds": [0]}},
    ),
    ("PUT", "/v1/platform/quotas/tenant:llm:month", {"body": QUOTA}),
    ("POST", "/v1/tenants", {"body": {"tenant_id": "Bad_Id", "name": "x"}}),
    ("POST", "/v1/tenants", {"body": {"tenant_id": "ab", "name": "x"}}),
    ("POST", "/v1/tenants", {"body": {"name": ""}}),
    ("PUT", "/v1/pricing/openai/gpt-4o", {"body": {**PRICE, "effective_from": "tomorrow"}}),
    ("PUT", "/v1/pricing/openai/gpt-4o", {"body": {**PRICE, "input_per_million_usd": 1.5}}),
    ("PUT", "/v1/pricing/OpenAI!/gpt-4o", {"body": PRICE}),
    ("GET", "/v1/nowhere", {}),
    ("PATCH", R, {"body": EST}),
    ("GET", R, {}),
    ("DELETE", "/v1/tenants", {}),
    # ---- limits (issue 11): string lengths, one past each bound
    ("POST", R, {"body": {**EST, "task_id": "t" * 129}}),
    ("POST", R, {"body": {**EST, "operation": "o" * 65}}),
    ("POST", R, {"body": {"resource": "llm", "provider": "p" * 65, "model": "gpt-4o"}}),
    ("POST", R, {"body": {"resource": "llm", "model": "m" * 129, "input_tokens": 1}}),
    ("POST", R, {"body": {"resource": "sandbox", "tier": "t" * 33, "seconds": "1"}}),
    ("POST", "/v1/tenants", {"body": {"tenant_id": "initech", "name": "n" * 201}}),
    ("POST", "/v1/tenants", {"body": {"tenant_id": "i" * 65, "name": "Initech"}}),
    ("POST", R, {"body": EST, "headers": {"Idempotency-Key": "k" * 256}}),
    # metadata: one entry too many, a key too long, an empty key, nested or null values
    ("POST", R, {"body": {**EST, "metadata": {f"k{i}": "v" for i in range(17)}}}),
    ("POST", R, {"body": {**EST, "metadata": {"k" * 65: "v"}}}),
    ("POST", R, {"body": {**EST, "metadata": {"": "v"}}}),
    ("POST", R, {"body": {**EST, "metadata": {"k": {"nested": "v"}}}}),
    ("POST", R, {"body": {**EST, "metadata": {"k": None}}}),
    ("POST", R, {"body": {**EST, "metadata": ["k", "v"]}}),
    # token counts: one past the maximum, booleans, floats, negatives
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-4o", "input_tokens": 100_000_001}}),
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-4o", "output_tokens": True}}),
    ("POST", R, {"body": {"resource": "llm", "model": "gpt-4o", "output_tokens": 1e-3}}),
    (
        "POST",
        R,
        {
            "body": {
                "resource": "llm",
                "model": "gpt-4o",
                "input_tokens": 1,
                "cached_input_tokens": -1,
            }
        },
    ),
    # absurd amounts, on every money field
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "-0.000001"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "-Infinity"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "sNaN"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "1E+30"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "1000000.000001"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "0x10"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "1_000"}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": "\u0661"}}),  # Arabic-Indic 1
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": 1e30}}),
    ("POST", R, {"body": {"resource": "llm", "estimated_cost_usd": 10**30}}),
    ("POST", R, {"body": {"resource": "sandbox", "tier": "standard", "seconds": "0.0001"}}),
    ("POST", R, {"body": {"resource": "sandbox", "tier": "standard", "seconds": "1e30"}}),
    ("POST", R, {"body": {"resource": "sandbox", "tier": "standard", "seconds": "2678401"}}),
    ("POST", f"{R}/x/commit", {"body": {"resource": "llm", "cost_usd": "NaN"}}),
    ("POST", U, {"body": {"resource": "llm", "cost_usd": "Infinity"}}),
    ("POST", U, {"body": {"resource": "llm", "cost_usd": "1.0000001"}}),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:day", {"body": {"limit_usd": "Infinity"}}),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:day", {"body": {"limit_usd": "1e30"}}),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:day", {"body": {"limit_usd": "NaN"}}),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:day", {"body": {"limit_usd": 10.5}}),
    ("PUT", f"/v1/tenants/{A}/quotas/tenant:llm:day", {"body": {"limit_usd": "1000000001"}}),
    (
        "PUT",
        f"/v1/tenants/{A}/quotas/tenant:llm:day",
        {"body": {"limit_usd": "5", "mode": "soft", "grace_pct": "100.01"}},
    ),
    (
        "PUT",
        f"/v1/tenants/{A}/quotas/tenant:llm:day",
        {"body": {"limit_usd": "5", "thresholds": list(range(1, 12))}},
    ),
    ("PUT", "/v1/pricing/openai/gpt-4o", {"body": {**PRICE, "output_per_million_usd": "NaN"}}),
    ("PUT", "/v1/pricing/openai/gpt-4o", {"body": {**PRICE, "input_per_million_usd": "-1"}}),
    ("PUT", "/v1/pricing/openai/gpt-4o", {"body": {**PRICE, "input_per_million_usd": "100001"}}),
    ("POST", R, {"body": {**EST, "ttl_seconds": True}}),
    ("POST", R, {"body": {**EST, "ttl_seconds": "60"}}),
    # unicode in ids (path, body, quota ids)
    ("GET", "/v1/tenants/acmé/quotas", {}),
    ("POST", "/v1/tenants/\uff41\uff43\uff4d\uff45/reservations", {"body": EST}),  # fullwidth
    ("POST", "/v1/tenants", {"body": {"tenant_id": "acmé", "name": "x"}}),
    ("POST", R, {"body": {**EST, "user_id": "u\u202e1"}}),  # right-to-left override
    ("POST", R, {"body": {**EST, "user_id": "u\u200d1"}}),  # zero-width joiner
    ("POST", R, {"body": {**EST, "conversation_id": "c\x00"}}),
    ("POST", R, {"body": {**EST, "task_id": "\U0001f4a5"}}),
    ("PUT", f"/v1/tenants/{A}/quotas/user:ü:llm:day", {"body": QUOTA}),
    ("DELETE", f"{R}/\u00fc~l~1~tm-l~", {}),
    # path traversal: encoded slashes and dot segments in every kind of id
    ("GET", f"/v1/tenants/{A}/..%2F{B}/quotas", {}),
    ("GET", f"/v1/tenants/..%2F{B}/quotas", {}),
    ("GET", f"/v1/tenants/{A}%2F..%2F{B}/quotas", {}),
    ("GET", f"/v1/tenants/{A}/../{B}/quotas", {}),
    ("POST", f"{R}/..%2F..%2F{B}%2Freservations%2Fx/commit", {"body": EST}),
    ("DELETE", f"{R}/..%2F..%2F{B}", {}),
    ("PUT", f"/v1/tenants/{A}/quotas/user:..%2F..:llm:day", {"body": QUOTA}),
    ("PUT", "/v1/pricing/openai/..%2F..%2Fetc", {"body": PRICE}),
    ("DELETE", f"/v1/tenants/{A}/api-keys/..%2F0123456789abcdef", {}),
    ("GET", f"/v1/tenants/{A}/usage/records", {"query": "cursor=..%2F..%2Fx"}),
    ("GET", f"/v1/tenants/{A}/usage/records", {"query": "user_id=" + "u" * 129}),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), BAD, ids=[f"{i:02d}" for i in range(len(BAD))]
)
def test_bad_input_is_a_4xx_problem_and_changes_nothing(
    api: Api, world: dict[str, Any], method: str, path: str, kwargs: dict[str, Any]
) -> None:
    before = snapshot(api)
    key = (
        world["keys"][A] if path.startswith(f"/v1/tenants/{A}/") and method != "PUT" else ADMIN_KEY
    )

    answer = api.call(method, path, key=key, **kwargs)

    assert 400 <= answer.status < 500, (answer.status, answer.text)
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json
    assert {"type", "title", "status", "detail"} <= set(problem) and problem[
        "status"
    ] == answer.status
    assert "Traceback" not in answer.text
    assert snapshot(api) == before

"""A leased platform quota over the API: `leased` on the platform quota PUT (hard and unsliced
only), reserves from two tenants on their leases, the 429 body and the platform figures of
the whole (D78)."""

from __future__ import annotations

from tests.api.conftest import Api

Q = "/v1/platform/quotas/platform:llm:month"


def _reserve(api: Api, tenant: str, key: str, amount: str) -> tuple[int, dict[str, str]]:
    r = api.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations",
        {"resource": "llm", "estimated_cost_usd": amount},
        key=key,
    )
    return r.status, r.json


def test_a_soft_or_sliced_quota_cannot_be_leased(api: Api) -> None:
    for body in (
        {"limit_usd": "10", "leased": True, "mode": "soft"},
        {"limit_usd": "10", "leased": True, "slices": 4},
    ):
        r = api.call("PUT", Q, body)
        assert (r.status, r.headers["content-type"]) == (422, "application/problem+json"), r.text


def test_two_tenants_spend_a_leased_quota_and_the_429_shows_the_whole(api: Api) -> None:
    keys = {}
    for t in ("acme", "bolt"):
        assert api.call("POST", "/v1/tenants", {"tenant_id": t, "name": t}).status == 201
        keys[t] = api.tenant_key(t)
    put = api.call("PUT", Q, {"limit_usd": "10", "leased": True})
    assert (put.status, put.json["limit_usd"], put.json["remaining_usd"]) == (
        200,
        "10.000000",
        "10.000000",
    )
    assert _reserve(api, "acme", keys["acme"], "6")[0] == 201
    assert _reserve(api, "bolt", keys["bolt"], "3")[0] == 201

    status, problem = _reserve(api, "bolt", keys["bolt"], "1.01")

    assert status == 429
    assert (problem["quota_id"], problem["limit_usd"], problem["reserved_usd"]) == (
        "platform:llm:month",
        "10.000000",
        "9.000000",
    )
    assert problem["remaining_usd"] == "1.000000"
    assert _reserve(api, "bolt", keys["bolt"], "1")[0] == 201
    q = next(
        q for q in api.call("GET", "/v1/platform/quotas").json["quotas"] if q["quota_id"] == Q[20:]
    )
    assert (q["limit_usd"], q["reserved_usd"], q["remaining_usd"]) == (
        "10.000000",
        "10.000000",
        "0.000000",
    )

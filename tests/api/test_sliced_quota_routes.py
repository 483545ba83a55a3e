"""A sliced quota over the API: `slices` on the quota PUT (1–64), the 429 body of the whole."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

T = "acme"


@pytest.fixture
def key(api: Api) -> str:
    assert api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"}).status == 201
    return api.tenant_key(T)


@pytest.mark.parametrize("slices", [0, 65, "8", 2.5, True])
def test_slices_outside_1_to_64_is_422(api: Api, key: str, slices: object) -> None:
    r = api.call(
        "PUT", f"/v1/tenants/{T}/quotas/tenant:llm:month", {"limit_usd": "10", "slices": slices}
    )
    assert (r.status, r.headers["content-type"]) == (422, "application/problem+json"), r.text


def test_a_quota_in_8_slices_spends_to_its_limit_and_refuses_as_one(api: Api, key: str) -> None:
    put = api.call(
        "PUT", f"/v1/tenants/{T}/quotas/tenant:llm:month", {"limit_usd": "8", "slices": 8}
    )
    assert (put.status, put.json["limit_usd"], put.json["remaining_usd"]) == (
        200,
        "8.000000",
        "8.000000",
    )
    for _ in range(4):  # 1.5 each: more than any one slice's 1.00, so most of them borrow
        r = api.call(
            "POST",
            f"/v1/tenants/{T}/reservations",
            {"resource": "llm", "estimated_cost_usd": "1.50"},
            key=key,
        )
        assert r.status == 201, r.text

    refused = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "2.01"},
        key=key,
    )

    assert refused.status == 429
    p = refused.json
    assert (p["limit_usd"], p["reserved_usd"], p["remaining_usd"]) == (
        "8.000000",
        "6.000000",
        "2.000000",
    )
    fits = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "2.00"},
        key=key,
    )
    assert fits.status == 201, fits.text
    q = api.call("GET", f"/v1/tenants/{T}/quotas", key=key).json["quotas"][0]
    assert (q["limit_usd"], q["reserved_usd"], q["remaining_usd"]) == (
        "8.000000",
        "8.000000",
        "0.000000",
    )

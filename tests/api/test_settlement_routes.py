"""Settlement over the API: worst-case holds, usage_unknown, overruns and tenant settings."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.conftest import Clock

T = "acme"
Q = "tenant:llm:month"


@pytest.fixture
def key(api: Api) -> str:
    assert api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"}).status == 201
    assert api.call("PUT", f"/v1/tenants/{T}/quotas/{Q}", {"limit_usd": "10.00"}).status == 200
    return api.tenant_key(T)


def spent_and_held(api: Api, key: str) -> tuple[str, str]:
    quotas = api.call("GET", f"/v1/tenants/{T}/quotas", key=key).json["quotas"]
    (q,) = (q for q in quotas if q["quota_id"] == Q)
    return q["spent_usd"], q["reserved_usd"]


def test_a_reserve_without_an_output_cap_says_how_its_worst_case_was_derived(
    api: Api, key: str
) -> None:
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "model": "gpt-4o", "input_tokens": 2000},
        key=key,
    )

    assert r.status == 201, r.text
    assert r.json["reserved_usd"] == "0.168840"
    assert r.json["hold"] == {
        "basis": "tokens",
        "input_tokens": 2000,
        "output_tokens": 16384,
        "output_cap_from": "catalog",
        "seconds": None,
        "priced_as": "openai/gpt-4o",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resource": "llm", "estimated_cost_usd": "0"}, "estimated_cost_usd"),
        (
            {"resource": "llm", "model": "gpt-4o", "input_tokens": 0, "output_tokens": 0},
            "output_tokens",
        ),
        ({"resource": "sandbox", "tier": "standard", "seconds": "0"}, "seconds"),
    ],
)
def test_a_zero_hold_is_422_naming_the_field_and_changes_nothing(
    api: Api, key: str, body: dict[str, object], field: str
) -> None:
    r = api.call("POST", f"/v1/tenants/{T}/reservations", body, key=key)

    assert r.status == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [p["name"] for p in r.json["invalid_params"]] == [field]
    assert spent_and_held(api, key) == ("0.000000", "0.000000")


def test_usage_unknown_charges_the_hold_and_its_retry_answers_the_same(api: Api, key: str) -> None:
    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "model": "gpt-4o", "input_tokens": 2000, "output_tokens": 800},
        key=key,
    ).json
    path = f"/v1/tenants/{T}/reservations/{r['reservation_id']}/commit"

    first = api.call("POST", path, {"usage_unknown": True}, key=key)
    again = api.call("POST", path, {"usage_unknown": True}, key=key)

    assert first.status == again.status == 200, first.text
    assert first.json == again.json
    assert (first.json["cost_usd"], first.json["usage_unknown"], first.json["settled_by"]) == (
        "0.013000",
        True,
        "usage_unknown",
    )
    assert spent_and_held(api, key) == ("0.013000", "0.000000")


def test_usage_unknown_with_usage_fields_is_422(api: Api, key: str) -> None:
    rid = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
    ).json["reservation_id"]

    r = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/{rid}/commit",
        {"usage_unknown": True, "resource": "llm", "cost_usd": "0.5"},
        key=key,
    )

    assert r.status == 422, r.text
    assert r.json["type"].endswith("/validation")
    assert spent_and_held(api, key) == ("0.000000", "1.000000")


def test_an_overrun_is_recorded_with_its_amount(api: Api, key: str) -> None:
    rid = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
    ).json["reservation_id"]

    c = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/{rid}/commit",
        {"resource": "llm", "cost_usd": "1.5"},
        key=key,
    )

    assert c.status == 200, c.text
    assert (c.json["overrun"], c.json["overrun_usd"]) == (True, "0.500000")


def test_overrun_reject_is_409_with_what_was_charged(api: Api, key: str) -> None:
    s = api.call("PUT", f"/v1/tenants/{T}/settings", {"overrun": "reject", "on_expiry": "charge"})
    assert s.status == 200, s.text
    rid = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
    ).json["reservation_id"]
    path = f"/v1/tenants/{T}/reservations/{rid}/commit"

    answers = [
        api.call("POST", path, {"resource": "llm", "cost_usd": "1.5"}, key=key) for _ in range(2)
    ]

    for c in answers:
        assert c.status == 409, c.text
        assert c.headers["content-type"] == "application/problem+json"
        assert c.json["type"].endswith("/overrun-rejected")
        assert (c.json["reservation_id"], c.json["charged_usd"], c.json["actual_usd"]) == (
            rid,
            "1.000000",
            "1.500000",
        )
    assert spent_and_held(api, key) == ("1.000000", "0.000000")


UTC_ZONE = {"timezone": "UTC", "timezone_in_effect": "UTC", "timezone_effective_at": None}


def test_settings_are_read_by_the_tenant_and_set_by_the_admin_only(api: Api, key: str) -> None:
    mine = api.call("GET", f"/v1/tenants/{T}/settings", key=key)
    assert mine.status == 200
    assert mine.json == {"overrun": "record", "on_expiry": "charge", **UTC_ZONE}

    refused = api.call("PUT", f"/v1/tenants/{T}/settings", {"on_expiry": "release"}, key=key)
    assert refused.status == 403
    assert refused.headers["content-type"] == "application/problem+json"
    bad = api.call("PUT", f"/v1/tenants/{T}/settings", {"on_expiry": "never"})
    assert bad.status == 422
    assert [p["name"] for p in bad.json["invalid_params"]] == ["on_expiry"]

    assert api.call("PUT", f"/v1/tenants/{T}/settings", {"on_expiry": "release"}).status == 200
    quotas = api.call("GET", f"/v1/tenants/{T}/quotas", key=key).json
    assert quotas["settings"] == {"overrun": "record", "on_expiry": "release", **UTC_ZONE}


def test_a_tenant_created_with_settings_has_them(api: Api) -> None:
    r = api.call(
        "POST",
        "/v1/tenants",
        {"tenant_id": "beta", "name": "Beta", "settings": {"overrun": "reject"}},
    )

    assert r.status == 201, r.text
    assert r.json["settings"] == {"overrun": "reject", "on_expiry": "charge", **UTC_ZONE}


def test_a_commit_after_expiry_is_409_with_what_the_expiry_charged(
    api: Api, key: str, clock: Clock
) -> None:
    rid = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1", "ttl_seconds": 60},
        key=key,
    ).json["reservation_id"]
    clock.advance(seconds=61)

    late = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/{rid}/commit",
        {"resource": "llm", "cost_usd": "0.5"},
        key=key,
    )
    release = api.call("DELETE", f"/v1/tenants/{T}/reservations/{rid}", key=key)

    assert late.status == 409, late.text
    assert late.headers["content-type"] == "application/problem+json"
    assert late.json["type"].endswith("/reservation-not-held")
    assert (late.json["reservation_status"], late.json["charged_usd"]) == ("expired", "1.000000")
    assert (release.status, release.json["status"], release.json["released_usd"]) == (
        200,
        "expired",
        "0.000000",
    )
    assert spent_and_held(api, key) == ("1.000000", "0.000000")


def test_usage_unknown_on_a_released_reservation_is_409_and_charges_nothing(
    api: Api, key: str
) -> None:
    rid = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {"resource": "llm", "estimated_cost_usd": "1"},
        key=key,
    ).json["reservation_id"]
    assert api.call("DELETE", f"/v1/tenants/{T}/reservations/{rid}", key=key).status == 200

    r = api.call(
        "POST", f"/v1/tenants/{T}/reservations/{rid}/commit", {"usage_unknown": True}, key=key
    )

    assert r.status == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert (r.json["reservation_status"], r.json["charged_usd"]) == ("released", None)
    assert spent_and_held(api, key) == ("0.000000", "0.000000")

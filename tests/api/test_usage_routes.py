"""Usage reads over the API: totals and breakdowns from rollups, records, summary."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

T = "acme"


@pytest.fixture
def key(api: Api) -> str:
    api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"})
    key = api.tenant_key(T)
    for user, model, tokens in (
        ("u-1", "gpt-4o", 1_000_000),
        ("u-2", "gpt-4o-mini", 1_000_000),
        ("u-1", "gpt-4o", 200_000),
    ):
        r = api.call(
            "POST",
            f"/v1/tenants/{T}/usage",
            {
                "resource": "llm",
                "model": model,
                "input_tokens": tokens,
                "output_tokens": 0,
                "user_id": user,
                "conversation_id": "c-1",
            },
            key=key,
        )
        assert r.status == 201, r.text
    api.call(
        "POST",
        f"/v1/tenants/{T}/usage",
        {"resource": "sandbox", "tier": "gpu", "seconds": "10", "user_id": "u-2"},
        key=key,
    )
    return key


def test_usage_totals_and_breakdowns(api: Api, key: str) -> None:
    by_model = api.call("GET", f"/v1/tenants/{T}/usage", key=key, query="group_by=model").json
    assert (by_model["total_usd"], by_model["calls"]) == ("3.158000", 4)
    assert [(g["key"], g["cost_usd"]) for g in by_model["groups"]] == [
        ("openai/gpt-4o", "3.000000"),
        ("openai/gpt-4o-mini", "0.150000"),
        ("sandbox:gpu", "0.008000"),
    ]
    by_user = api.call("GET", f"/v1/tenants/{T}/usage", key=key, query="group_by=user").json
    assert [(g["key"], g["cost_usd"]) for g in by_user["groups"]] == [
        ("u-1", "3.000000"),
        ("u-2", "0.158000"),
    ]
    by_resource = api.call("GET", f"/v1/tenants/{T}/usage", key=key, query="group_by=resource").json
    assert [(g["key"], g["cost_usd"]) for g in by_resource["groups"]] == [
        ("llm", "3.150000"),
        ("sandbox", "0.008000"),
    ]
    by_day = api.call(
        "GET", f"/v1/tenants/{T}/usage", key=key, query="from=2026-11-24&to=2026-11-25&group_by=day"
    ).json
    assert [(g["key"], g["cost_usd"]) for g in by_day["groups"]] == [("2026-11-25", "3.158000")]


def test_records_are_paginated(api: Api, key: str) -> None:
    first = api.call("GET", f"/v1/tenants/{T}/usage/records", key=key, query="limit=3").json
    assert len(first["records"]) == 3 and first["next_cursor"]
    rest = api.call(
        "GET",
        f"/v1/tenants/{T}/usage/records",
        key=key,
        query=f"limit=3&cursor={first['next_cursor']}",
    ).json
    assert len(rest["records"]) == 1 and rest["next_cursor"] is None
    only_u2 = api.call("GET", f"/v1/tenants/{T}/usage/records", key=key, query="user_id=u-2").json
    assert [r["cost_usd"] for r in only_u2["records"]] == ["0.150000", "0.008000"]


def test_summary(api: Api, key: str) -> None:
    s = api.call("GET", f"/v1/tenants/{T}/summary", key=key).json
    assert (s["month_to_date_usd"], s["today_usd"]) == ("3.158000", "3.158000")
    assert s["top_models"][0] == {"key": "openai/gpt-4o", "cost_usd": "3.000000"}
    assert s["top_users"][0] == {"key": "u-1", "cost_usd": "3.000000"}
    assert len(s["daily_trend"]) == 30 and s["daily_trend"][-1]["cost_usd"] == "3.158000"


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-11-26&to=2026-11-01",
        "from=2020-01-01",
        "group_by=planet",
        "from=yesterday",
        "limit=0&x=1",
        "cursor=../../etc",
    ],
)
def test_bad_usage_queries_are_422(api: Api, key: str, query: str) -> None:
    path = "usage/records" if "limit" in query or "cursor" in query else "usage"
    r = api.call("GET", f"/v1/tenants/{T}/{path}", key=key, query=query)
    assert (r.status, r.headers["content-type"]) == (422, "application/problem+json"), r.text
    assert r.json["invalid_params"]

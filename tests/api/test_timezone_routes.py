"""The tenant's `timezone` over the API: set on create and in settings, refused when unknown,
and honoured by quotas and `Retry-After`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.api.conftest import Api
from tests.conftest import Clock

T = "acme"
DAY = "tenant:llm:day"


def create(api: Api, tz: object) -> tuple[int, dict[str, object]]:
    body = {"tenant_id": T, "name": "Acme", "settings": {"timezone": tz}}
    r = api.call("POST", "/v1/tenants", body)
    return r.status, r.json


@pytest.mark.parametrize(
    "tz",
    ["Mars/Olympus", "localtime", "../../etc/passwd", "America", "right/UTC", "utc", "", 7, None],
)
def test_creating_a_tenant_with_an_unknown_zone_is_422_naming_the_field(
    api: Api, tz: object
) -> None:
    r = api.call(
        "POST", "/v1/tenants", {"tenant_id": T, "name": "Acme", "settings": {"timezone": tz}}
    )

    assert r.status == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [p["name"] for p in r.json["invalid_params"]] == ["settings.timezone"]
    assert api.ledger.tenant(T) is None  # nothing was written


def test_setting_an_unknown_zone_is_422_naming_the_field_and_changes_nothing(api: Api) -> None:
    assert create(api, "Europe/Berlin")[0] == 201

    r = api.call("PUT", f"/v1/tenants/{T}/settings", {"timezone": "Europe/Berlinn"})

    assert r.status == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json["status"] == 422
    [param] = r.json["invalid_params"]
    assert param["name"] == "timezone"
    assert "IANA time zone" in param["reason"]
    assert api.call("GET", f"/v1/tenants/{T}/settings").json["timezone"] == "Europe/Berlin"


def test_a_tenant_created_in_a_zone_shows_it_in_its_settings_and_quotas(
    api: Api, clock: Clock
) -> None:
    status, tenant = create(api, "Asia/Kolkata")

    assert status == 201
    zone = {"timezone": "Asia/Kolkata", "timezone_in_effect": "Asia/Kolkata"}
    assert tenant["settings"] == {
        "overrun": "record",
        "on_expiry": "charge",
        **zone,
        "timezone_effective_at": None,
    }
    key = api.tenant_key(T)
    assert api.call("GET", f"/v1/tenants/{T}/settings", key=key).json == tenant["settings"]
    api.call("PUT", f"/v1/tenants/{T}/quotas/{DAY}", {"limit_usd": "1"})
    clock.at = datetime(2026, 11, 30, 18, 30, 1, tzinfo=UTC)  # 1 December, 00:00:01 IST
    listed = api.call("GET", f"/v1/tenants/{T}/quotas", key=key).json
    assert listed["settings"] == tenant["settings"]
    assert [(q["period_key"], q["resets_at"]) for q in listed["quotas"]] == [
        ("DAY#2026-12-01", "2026-12-01T18:30:00Z")
    ]


def test_a_zone_change_answers_when_it_takes_effect(api: Api, clock: Clock) -> None:
    create(api, "UTC")
    clock.at = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)

    r = api.call("PUT", f"/v1/tenants/{T}/settings", {"timezone": "America/Los_Angeles"})

    assert r.status == 200
    assert r.json == {
        "overrun": "record",
        "on_expiry": "charge",
        "timezone": "America/Los_Angeles",
        "timezone_in_effect": "UTC",
        "timezone_effective_at": "2026-12-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("tz", "at", "retry_after"),
    [
        # 23:00 local: one hour to local midnight (not to UTC midnight)
        ("America/Los_Angeles", datetime(2026, 11, 30, 7, 0, tzinfo=UTC), 3600),
        # 1 November in LA is 25 hours long: at 00:30 PDT there are 24.5 hours left
        ("America/Los_Angeles", datetime(2026, 11, 1, 7, 30, tzinfo=UTC), 24 * 3600 + 1800),
        # 29 March in Berlin is 23 hours long: at 00:00:10 CET there are 23 h − 10 s left
        ("Europe/Berlin", datetime(2026, 3, 28, 23, 0, 10, tzinfo=UTC), 23 * 3600 - 10),
        ("Asia/Kolkata", datetime(2026, 11, 30, 18, 29, 0, tzinfo=UTC), 60),
    ],
)
def test_a_429_says_retry_after_the_tenants_local_midnight(
    api: Api, clock: Clock, tz: str, at: datetime, retry_after: int
) -> None:
    clock.at = at
    create(api, tz)
    key = api.tenant_key(T)
    api.call("PUT", f"/v1/tenants/{T}/quotas/{DAY}", {"limit_usd": "1"})
    body = {"resource": "llm", "estimated_cost_usd": "0.60"}
    assert api.call("POST", f"/v1/tenants/{T}/reservations", body, key=key).status == 201

    r = api.call("POST", f"/v1/tenants/{T}/reservations", body, key=key)

    assert r.status == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == str(r.json["retry_after_seconds"]) == str(retry_after)
    assert r.json["quota_id"] == DAY


def test_usage_days_are_the_tenants_local_days(api: Api, clock: Clock) -> None:
    # Given a Kolkata tenant: $1 at 23:30 IST on 30 November, $2 at 00:30 IST on 1 December
    clock.at = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    create(api, "Asia/Kolkata")
    key = api.tenant_key(T)
    spend = f"/v1/tenants/{T}/usage"
    for at, amount, user in (("18:00", "1", "early"), ("19:00", "2", "late")):
        clock.at = datetime.fromisoformat(f"2026-11-30T{at}:00+00:00")
        body = {"resource": "llm", "cost_usd": amount, "user_id": user}
        assert api.call("POST", spend, body, key=key).status == 201

    # When it asks for 1 December (still 30 November in UTC)
    day = "from=2026-12-01&to=2026-12-01"
    report = api.call("GET", spend, key=key, query=day).json
    users = api.call("GET", spend, key=key, query=f"{day}&group_by=user").json
    records = api.call("GET", f"{spend}/records", key=key, query=day).json
    today = api.call("GET", f"/v1/tenants/{T}/summary", key=key).json

    # Then it gets its own 1 December: the $2, not the $1 of the evening before
    assert (report["total_usd"], report["calls"]) == ("2.000000", 1)
    assert users["groups"] == [{"key": "late", "cost_usd": "2.000000"}]
    assert [r["cost_usd"] for r in records["records"]] == ["2.000000"]
    assert (today["today_usd"], today["month_to_date_usd"]) == ("2.000000", "2.000000")

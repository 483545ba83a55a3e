"""`POST /v1/tenants` emits TenantCreated; a refused event never leaves a tenant without quotas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from costguard.notify import PublishFailed

from functions.api import handler
from functions.api.deps import get_events
from tests.api.conftest import Api

SEEDS = {
    "tenant:all:month": "150.000000",
    "tenant:llm:month": "100.000000",
    "tenant:sandbox:month": "50.000000",
}


class Bus:
    def __init__(self) -> None:
        self.fail = False
        self.events: list[tuple[str, dict[str, Any]]] = []

    def put(self, detail_type: str, detail: Any) -> None:
        self.events.append((detail_type, dict(detail)))
        if self.fail:
            raise PublishFailed("EventBridge refused the event: InternalFailure")


@pytest.fixture
def bus(api: Api) -> Iterator[Bus]:
    recorded = Bus()
    handler.app.dependency_overrides[get_events] = lambda: recorded
    yield recorded  # the api fixture clears the overrides


def limits(api: Api, tenant: str) -> dict[str, str]:
    answer = api.call("GET", f"/v1/tenants/{tenant}/quotas")
    assert answer.status == 200, answer.text
    return {q["quota_id"]: q["limit_usd"] for q in answer.json["quotas"]}


def test_a_created_tenant_is_announced_with_the_same_detail_shape(api: Api, bus: Bus) -> None:
    answer = api.call(
        "POST", "/v1/tenants", {"tenant_id": "acme", "name": "Acme Inc", "plan": "pro"}
    )

    assert answer.status == 201
    assert bus.events == [
        (
            "TenantCreated",
            {
                "tenant_id": "acme",
                "name": "Acme Inc",
                "plan": "pro",
                "created_at": "2026-11-25T12:00:00.000000Z",
            },
        )
    ]
    assert limits(api, "acme") == {}  # the onboarding function seeds, not the API


def test_a_generated_id_and_no_plan_are_announced_as_created(api: Api, bus: Bus) -> None:
    answer = api.call("POST", "/v1/tenants", {"name": "Nameless"})

    assert answer.status == 201
    [(_, detail)] = bus.events
    assert detail == {
        "tenant_id": answer.json["tenant_id"],
        "name": "Nameless",
        "created_at": "2026-11-25T12:00:00.000000Z",
    }


def test_a_refused_create_announces_nothing(api: Api, bus: Bus) -> None:
    api.call("POST", "/v1/tenants", {"tenant_id": "acme", "name": "Acme Inc"})

    assert api.call("POST", "/v1/tenants", {"tenant_id": "acme", "name": "Acme Inc"}).status == 409
    assert api.call("POST", "/v1/tenants", {"tenant_id": "x", "name": "X"}).status == 422
    assert len(bus.events) == 1


def test_when_the_bus_refuses_the_event_the_api_seeds_the_defaults_and_says_so(
    api: Api, bus: Bus, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """201 with the tenant; its default quotas exist at once; an error log and an EMF metric
    (TenantCreatedUnpublished, alarmed by the stack) report the event nobody else received."""
    bus.fail = True

    answer = api.call(
        "POST", "/v1/tenants", {"tenant_id": "acme", "name": "Acme Inc", "plan": "pro"}
    )

    assert answer.status == 201 and answer.json["tenant_id"] == "acme"
    assert limits(api, "acme") == SEEDS
    [logged] = [
        r for r in caplog.records if r.getMessage().startswith("TenantCreated not published")
    ]
    assert logged.levelname == "ERROR" and "InternalFailure" in vars(logged)["reason"]
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    [metric] = [m for m in metrics if "TenantCreatedUnpublished" in m]
    assert (metric["TenantCreatedUnpublished"], metric["service"]) == ([1.0], "costguard-api")
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "costguard"
    assert api.ledger.reconcile("acme") == []


def test_a_replayed_create_announces_again_and_seeding_stays_once(api: Api, bus: Bus) -> None:
    """The first create wrote the tenant but its event was lost and the direct seeding failed
    too (ledger down: 503). The client's retry with the same Idempotency-Key heals it."""
    body = {"tenant_id": "acme", "name": "Acme Inc"}
    headers = {"Idempotency-Key": "create-acme"}
    bus.fail = True
    real_seed = api.ledger.seed_quotas

    def down(*_: Any, **__: Any) -> Any:
        from costguard.errors import LedgerUnavailable

        raise LedgerUnavailable("ledger unavailable: ReadTimeoutError", retry_after_seconds=2)

    api.ledger.seed_quotas = down  # type: ignore[method-assign]
    assert api.call("POST", "/v1/tenants", body, headers=headers).status == 503
    assert limits(api, "acme") == {}

    api.ledger.seed_quotas = real_seed  # type: ignore[method-assign]
    bus.fail = False
    again = api.call("POST", "/v1/tenants", body, headers=headers)

    assert again.status == 201
    assert [t for t, _ in bus.events] == ["TenantCreated", "TenantCreated"]
    assert limits(api, "acme") == {}  # published this time: the onboarding function seeds


def test_the_seeded_limits_come_from_the_deployment(
    api: Api, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.onboarding import plans_from_settings

    monkeypatch.setenv(
        "COSTGUARD_DEFAULT_QUOTAS",
        json.dumps({"pro": {"tenant:llm:month": "500"}, "free": {"tenant:all:month": "5"}}),
    )
    monkeypatch.setenv("COSTGUARD_FALLBACK_PLAN", "free")
    plans_from_settings.cache_clear()
    try:
        bus.fail = True
        api.call("POST", "/v1/tenants", {"tenant_id": "acme", "name": "Acme", "plan": "pro"})
        api.call("POST", "/v1/tenants", {"tenant_id": "globex", "name": "Globex"})
    finally:
        plans_from_settings.cache_clear()

    assert limits(api, "acme") == {"tenant:llm:month": "500.000000"}
    assert limits(api, "globex") == {"tenant:all:month": "5.000000"}
    assert Decimal(limits(api, "globex")["tenant:all:month"]) == 5

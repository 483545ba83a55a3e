"""`POST /v1/tenants` → TenantCreated on the local bus → the onboarding handler → quotas, over
HTTP against `make run` (its default store, DynamoDB Local), with plan tiers from the
environment as a deployment sets them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Server, start_runner, stop_runner

TIERS = {
    "free": {"tenant:all:month": "5"},
    "pro": {"tenant:llm:month": "500", "tenant:sandbox:month": "100", "tenant:all:month": "550"},
}


@pytest.fixture(scope="module")
def runner() -> Iterator[Server]:
    env = {"COSTGUARD_DEFAULT_QUOTAS": json.dumps(TIERS), "COSTGUARD_FALLBACK_PLAN": "free"}
    server = start_runner(env)
    try:
        yield server
    finally:
        stop_runner(server)


def eventually(check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def limits(runner: Server, tenant: str) -> dict[str, str]:
    status, _, body = runner.call("GET", f"/v1/tenants/{tenant}/quotas")
    assert status == 200, body
    return {q["quota_id"]: q["limit_usd"] for q in body["quotas"]}


def events(runner: Server) -> dict[str, Any]:
    status, _, body = runner.call("GET", "/local/events", key=None)
    assert status == 200
    return dict(body)


def test_a_created_tenant_gets_its_plan_quotas_through_the_event(runner: Server) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"

    status, _, created = runner.call(
        "POST", "/v1/tenants", {"tenant_id": tenant, "name": "Acme", "plan": "pro"}
    )

    assert status == 201
    expected = {
        "tenant:all:month": "550.000000",
        "tenant:llm:month": "500.000000",
        "tenant:sandbox:month": "100.000000",
    }
    assert eventually(lambda: limits(runner, tenant) == expected), limits(runner, tenant)
    [event] = [e for e in events(runner)["events"] if e["detail"].get("tenant_id") == tenant]
    assert (event["detail-type"], event["source"], event["version"]) == (
        "TenantCreated",
        "costguard",
        "0",
    )
    assert event["detail"] == {
        "tenant_id": tenant,
        "name": "Acme",
        "plan": "pro",
        "created_at": created["created_at"],
    }
    assert event["deliveries"] == {"onboarding": "ok"}


def test_an_operator_quota_set_right_after_the_create_survives_the_seeding(runner: Server) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (
        runner.call(
            "POST", "/v1/tenants", {"tenant_id": tenant, "name": "Globex", "plan": "unknown"}
        )[0]
        == 201
    )
    assert (
        runner.call("PUT", f"/v1/tenants/{tenant}/quotas/tenant:all:month", {"limit_usd": "2"})[0]
        == 200
    )

    assert eventually(
        lambda: [
            e
            for e in events(runner)["events"]
            if e["detail"].get("tenant_id") == tenant and e["deliveries"] == {"onboarding": "ok"}
        ]
    )
    assert limits(runner, tenant) == {
        "tenant:all:month": "2.000000"
    }  # free plan (fallback): only all


def test_an_event_from_the_platform_seeds_and_a_malformed_one_is_dead_lettered(
    runner: Server,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    put = {
        "detail-type": "TenantCreated",
        "source": "example.platform",
        "detail": {"tenant_id": tenant},
    }
    assert runner.call("POST", "/local/events", put, key=None)[0] == 202
    bad = {
        "detail-type": "TenantCreated",
        "source": "example.platform",
        "detail": {"name": "no id"},
    }
    status, _, sent = runner.call("POST", "/local/events", bad, key=None)
    assert status == 202

    assert eventually(lambda: limits(runner, tenant) == {"tenant:all:month": "5.000000"})
    dead = eventually(
        lambda: [d for d in events(runner)["dead_letters"] if d["event"]["id"] == sent["id"]]
    )
    assert dead and dead[0]["reason"] == "detail.tenant_id: Field required"
    [listed] = [e for e in events(runner)["events"] if e["id"] == sent["id"]]
    assert listed["deliveries"] == {"onboarding": "dead-lettered"}
    assert runner.call("POST", "/local/events", {"detail": {}}, key=None)[0] == 400

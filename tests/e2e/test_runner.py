"""End to end over real HTTP against `make run` (embedded store, then DynamoDB Local)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import Server, start_runner, stop_runner


def _tenant(runner: Server, limit: str) -> tuple[str, str]:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert runner.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": tenant})[0] == 201
    assert (
        runner.call("PUT", f"/v1/tenants/{tenant}/quotas/tenant:llm:month", {"limit_usd": limit})[0]
        == 200
    )
    status, _, issued = runner.call("POST", f"/v1/tenants/{tenant}/api-keys")
    assert status == 201
    return tenant, issued["api_key"]


def test_the_full_spend_flow_a_429_and_an_isolation_refusal(runner: Server) -> None:
    tenant, key = _tenant(runner, "1.00")
    other, _ = _tenant(runner, "1.00")

    status, _, r = runner.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations",
        {
            "resource": "llm",
            "model": "gpt-4o",
            "input_tokens": 10_000,
            "output_tokens": 2_000,
            "user_id": "u-1",
        },
        key=key,
    )
    assert status == 201 and r["reserved_usd"] == "0.045000"
    status, _, c = runner.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations/{r['reservation_id']}/commit",
        {"resource": "llm", "model": "gpt-4o", "input_tokens": 10_000, "output_tokens": 1_000},
        key=key,
    )
    assert (status, c["cost_usd"]) == (200, "0.035000")

    status, headers, p = runner.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations",
        {"resource": "llm", "estimated_cost_usd": "0.97"},
        key=key,
    )
    assert (status, p["quota_id"], p["remaining_usd"]) == (429, "tenant:llm:month", "0.965000")
    assert int(headers["retry-after"]) == p["retry_after_seconds"] > 0

    status, _, p = runner.call("GET", f"/v1/tenants/{other}/quotas", key=key)
    assert (status, p["status"]) == (403, 403)


def test_concurrent_reservations_over_http_never_overspend(runner: Server) -> None:
    """Invariant: 16 threads × 400 reservations of $0.10 against $10 → exactly 100 succeed."""
    tenant, key = _tenant(runner, "10")
    body = {"resource": "llm", "estimated_cost_usd": "0.10"}

    with ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(
                lambda _: runner.call(
                    "POST",
                    f"/v1/tenants/{tenant}/reservations",
                    body,
                    key=key,
                    headers={"Prefer": "return=minimal"},
                )[0],
                range(400),
            )
        )

    assert statuses.count(201) == 100 and statuses.count(429) == 300
    quotas = runner.call("GET", f"/v1/tenants/{tenant}/quotas", key=key)[2]["quotas"]
    # (the tenant also has the default quotas TenantCreated seeded: all $150, sandbox $50)
    [llm] = [q for q in quotas if q["quota_id"] == "tenant:llm:month"]
    assert (llm["reserved_usd"], llm["remaining_usd"]) == ("10.000000", "0.000000")


def test_schedules_can_be_triggered(runner: Server) -> None:
    status, _, body = runner.call("POST", "/local/schedules/sweeper", key=None)
    assert status == 200 and body["schedule"] == "sweeper"
    assert runner.call("POST", "/local/schedules/nope", key=None)[0] == 404


def test_a_taken_port_is_a_clear_error_and_a_non_zero_exit(runner: Server) -> None:
    import os
    import subprocess
    import sys

    port = runner.url.rsplit(":", 1)[1]
    env = {
        **os.environ,
        "COSTGUARD_PORT": port,
        "PYTHONPATH": runner.process.args and ".",
        "COSTGUARD_ADMIN_KEY": "x",
    }
    from tests.e2e.conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_sigterm_stops_cleanly() -> None:
    server = start_runner({})
    out = stop_runner(server)
    assert server.process.returncode == 0 and "costguard stopped." in out

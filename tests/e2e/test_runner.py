"""End to end over real HTTP against `make run` on its default store (DynamoDB Local, persistent):
the spend flow, concurrency, schedules, start-up refusals, a restart, and SIGTERM under load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import urllib3

from tests.e2e.conftest import ROOT, Server, process_tree, start_runner, stop_runner


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


def _run_briefly(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m local` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "COSTGUARD_ADMIN_KEY": "x", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _inherited() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("COSTGUARD_", "AWS_END"))}


def test_a_taken_port_is_one_line_and_exit_2(runner: Server, tmp_path: Path) -> None:
    port = runner.url.rsplit(":", 1)[1]

    done = _run_briefly(
        {**_inherited(), "COSTGUARD_PORT": port, "COSTGUARD_DATA_DIR": str(tmp_path)}
    )

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"costguard: cannot listen on 127.0.0.1:{port}: Address already in use. "
        "Set COSTGUARD_PORT to a free port."
    ]
    assert list(tmp_path.iterdir()) == []  # refused before the store was started


def test_a_data_folder_in_use_is_one_line_and_exit_2(runner: Server) -> None:
    assert runner.data_dir is not None

    done = _run_briefly(
        {**_inherited(), "COSTGUARD_PORT": "0", "COSTGUARD_DATA_DIR": str(runner.data_dir)}
    )

    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"costguard: the data folder {runner.data_dir.resolve()} is in use")
    assert runner.call("GET", "/v1/health", key=None)[0] == 200  # the first run is unharmed


def test_without_java_the_runner_says_so_in_one_line_and_does_not_fall_back(
    tmp_path: Path,
) -> None:
    env = {**_inherited(), "PATH": str(tmp_path), "COSTGUARD_PORT": "0"}

    done = _run_briefly({**env, "COSTGUARD_DATA_DIR": str(tmp_path / "data")})

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("costguard: java is not installed: DynamoDB Local needs Java 17+ (")
    assert "apt-get install openjdk-17-jre-headless" in line
    assert done.stdout == ""  # nothing served, no other store


def test_a_bad_worker_count_or_store_port_is_refused(tmp_path: Path) -> None:
    env = {**_inherited(), "COSTGUARD_PORT": "0", "COSTGUARD_DATA_DIR": str(tmp_path)}

    workers = _run_briefly({**env, "COSTGUARD_WORKERS": "0"})
    port = _run_briefly({**env, "COSTGUARD_DDB_PORT": "eighty"})

    assert (workers.returncode, workers.stderr.strip()) == (
        2,
        "costguard: COSTGUARD_WORKERS='0': a whole number ≥ 1",
    )
    assert (port.returncode, port.stderr.strip()) == (
        2,
        "costguard: COSTGUARD_DDB_PORT='eighty': a port number",
    )


def test_a_restart_keeps_tenants_keys_quotas_holds_and_records(tmp_path: Path) -> None:
    """Given a tenant with a key, a quota, a hold and a committed record, when the runner stops
    and starts again on the same data folder, then all of it is there and still works."""
    env = {"COSTGUARD_DATA_DIR": str(tmp_path)}
    first = start_runner(env)
    try:
        tenant, key = _tenant(first, "1.00")
        reserve = {"resource": "llm", "estimated_cost_usd": "0.10"}
        status, _, held = first.call("POST", f"/v1/tenants/{tenant}/reservations", reserve, key=key)
        assert status == 201
        status, _, done = first.call("POST", f"/v1/tenants/{tenant}/reservations", reserve, key=key)
        assert status == 201
        status, _, record = first.call(
            "POST",
            f"/v1/tenants/{tenant}/reservations/{done['reservation_id']}/commit",
            {"resource": "llm", "model": "gpt-4o", "input_tokens": 10_000, "output_tokens": 1_000},
            key=key,
        )
        assert status == 200
    finally:
        assert "costguard stopped." in stop_runner(first)

    second = start_runner(env)
    try:
        status, _, page = second.call("GET", f"/v1/tenants/{tenant}/quotas", key=key)
        assert status == 200  # the tenant key still authenticates
        [llm] = [q for q in page["quotas"] if q["quota_id"] == "tenant:llm:month"]
        assert (llm["limit_usd"], llm["spent_usd"], llm["reserved_usd"]) == (
            "1.000000",
            "0.035000",
            "0.100000",
        )
        status, _, records = second.call("GET", f"/v1/tenants/{tenant}/usage/records")
        assert status == 200
        assert [r["cost_usd"] for r in records["records"]] == [record["cost_usd"]]
        status, _, _ = second.call(
            "DELETE", f"/v1/tenants/{tenant}/reservations/{held['reservation_id']}", key=key
        )
        assert status in (200, 204)  # the hold survived and can be released
        after = second.call("GET", f"/v1/tenants/{tenant}/quotas", key=key)[2]["quotas"]
        [llm] = [q for q in after if q["quota_id"] == "tenant:llm:month"]
        assert llm["reserved_usd"] == "0.000000"
    finally:
        stop_runner(second)


def test_sigterm_under_load_ends_every_process_within_2_s_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """Given 4 callers reserving as fast as they can, when the runner gets SIGTERM, then it and
    every process it started (workers, DynamoDB Local) are gone within 2 s, and after a restart
    the quota holds every reserve that was answered 201 (and at most the 4 in flight more)."""
    env = {"COSTGUARD_DATA_DIR": str(tmp_path), "COSTGUARD_WORKERS": "2"}
    server = start_runner(env)
    tenant, key = _tenant(server, "1000")
    tree = process_tree(server.process.pid)
    assert len(tree) >= 4  # the runner, DynamoDB Local, two workers (and multiprocessing's helper)
    granted: list[int] = []
    stopping = threading.Event()

    def caller() -> None:
        body = {"resource": "llm", "estimated_cost_usd": "0.01"}
        while not stopping.is_set():
            try:
                status = server.call("POST", f"/v1/tenants/{tenant}/reservations", body, key=key)[0]
            except urllib3.exceptions.HTTPError:
                return
            assert status in (201, 503), status
            if status == 201:
                granted.append(1)

    callers = [threading.Thread(target=caller) for _ in range(4)]
    for thread in callers:
        thread.start()
    while len(granted) < 40:
        time.sleep(0.05)

    started = time.monotonic()
    server.process.terminate()
    server.process.wait(timeout=10)
    elapsed = time.monotonic() - started
    stopping.set()
    for thread in callers:
        thread.join(10)
    out = server.output()

    assert elapsed <= 2.0, f"stopped in {elapsed:.2f} s"
    assert server.process.returncode == 0 and "costguard stopped." in out
    time.sleep(0.3)  # an orphaned helper would still be there now
    assert process_tree(server.process.pid) == set()
    assert not {pid: _cmdline(pid) for pid in tree if _alive(pid)}

    answered = len(granted)
    again = start_runner(env)
    try:
        quotas = again.call("GET", f"/v1/tenants/{tenant}/quotas", key=key)[2]["quotas"]
        [llm] = [q for q in quotas if q["quota_id"] == "tenant:llm:month"]
        reserved = Decimal(llm["reserved_usd"]) / Decimal("0.01")
        assert answered <= reserved <= answered + 4
    finally:
        stop_runner(again)


def test_an_endpoint_given_is_used_and_nothing_is_started(ddb_local: str, tmp_path: Path) -> None:
    server = start_runner(
        {
            "AWS_ENDPOINT_URL_DYNAMODB": ddb_local,
            "COSTGUARD_TABLE_NAME": f"costguard-e2e-{uuid.uuid4().hex[:8]}",
        }
    )
    try:
        tenant, key = _tenant(server, "1.00")
        status = server.call(
            "POST",
            f"/v1/tenants/{tenant}/reservations",
            {"resource": "llm", "estimated_cost_usd": "0.50"},
            key=key,
        )[0]
        assert status == 201
        assert not [p for p in process_tree(server.process.pid) if _is_java(p)]
    finally:
        out = stop_runner(server)
    assert f"store:      {ddb_local} (AWS_ENDPOINT_URL_DYNAMODB)" in out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def _is_java(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "java"
    except OSError:
        return False

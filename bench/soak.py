"""`python -m bench soak` (`make bench-soak`): `make run` on its default store, for a long time.

Each run starts `python -m local` exactly as `make run` does — DynamoDB Local persistent in a
data folder (a temporary one here, never the checkout's `.data/`), `COSTGUARD_WORKERS` API
processes — on a free 127.0.0.1 port, and drives it over HTTP with urllib3. A guarded call is
a reserve (`Prefer: return=minimal`) then its commit, spread over 20 tenants × 5 users, each
with a quota far above what the run spends (no 429 expected).

1. sequential: `--calls` (10,000) guarded calls from one caller;
2. concurrent: the same from `--callers` (4) callers; at the end, SIGTERM while they are still
   calling, on a store that now holds every record: the time until every process is gone;
3. throughput: `--callers` callers for `--seconds` (20) with 1, 2 and 4 workers.

For 1 and 2: p50 of the first and the last 1,000 calls (by completion), 5xx count, and the
resident memory (RSS) of the whole process tree (the runner, its workers, DynamoDB Local,
multiprocessing's helper), sampled every 500 calls. Results: bench/results/soak.json and
soak.md. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ADMIN = "cg-admin-soak-bench"
TENANTS = 20
USERS = 5
WINDOW = 1000
SAMPLE_EVERY = 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> set[int]:
    """`pid` and its running descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            after = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if after[0] != "Z":
            parents[int(stat.parent.name)] = int(after[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return {p for p in tree if p in parents}


def tree_rss_mb(pid: int) -> dict[str, float]:
    """RSS in MB of every process in the tree, by command (java, runner, worker, helper)."""
    out: dict[str, float] = {}
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        kb = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0
        )
        kind = (
            "dynamodb-local"
            if "DynamoDBLocal.jar" in cmd
            else "worker"
            if "spawn_main" in cmd
            else "helper"
            if "resource_tracker" in cmd
            else "runner"
        )
        out[kind] = out.get(kind, 0.0) + kb / 1024
    out["total"] = sum(v for k, v in out.items())
    return {k: round(v, 1) for k, v in out.items()}


@dataclass
class Runner:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    http: urllib3.PoolManager = field(
        default_factory=lambda: urllib3.PoolManager(maxsize=16, timeout=30)
    )

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        answer = self.http.request(
            method,
            self.url + path,
            body=json.dumps(body) if body is not None else None,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {ADMIN}",
                **headers,
            },
            retries=False,
        )
        try:
            return answer.status, json.loads(answer.data or b"null")
        except ValueError:
            return answer.status, answer.data.decode()

    def stop(self) -> float:
        """SIGTERM; seconds until the runner and every process it started are gone."""
        tree = process_tree(self.process.pid)
        started = time.perf_counter()
        self.process.terminate()
        self.process.wait(timeout=30)
        while process_tree(self.process.pid) or any(_alive(p) for p in tree):
            if time.perf_counter() - started > 30:
                break
            time.sleep(0.01)
        return time.perf_counter() - started


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextmanager
def runner(workers: int | None = None) -> Iterator[Runner]:
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="costguard-soak-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_ENDPOINT_URL_DYNAMODB", "COSTGUARD_WORKERS")
    }
    env |= {
        "COSTGUARD_PORT": str(port),
        "COSTGUARD_ADMIN_KEY": ADMIN,
        "COSTGUARD_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    if workers is not None:
        env["COSTGUARD_WORKERS"] = str(workers)
    process = subprocess.Popen(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Runner(f"http://127.0.0.1:{port}", process, data_dir)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError("the runner exited")
            try:
                if server.call("GET", "/v1/health")[0] == 200:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the runner did not start")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def seed(server: Runner) -> list[str]:
    tenants = [f"soak-{i:02d}" for i in range(TENANTS)]
    for tenant in tenants:
        assert server.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": tenant})[0] == 201
        for quota in ("tenant:llm:month", "tenant:all:month"):
            status, body = server.call(
                "PUT", f"/v1/tenants/{tenant}/quotas/{quota}", {"limit_usd": "1000000"}
            )
            assert status == 200, body
    return tenants


@dataclass
class Calls:
    """Guarded calls as they complete: latency (ms) in completion order, statuses seen."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    memory: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ms: float, *statuses: int) -> int:
        with self.lock:
            self.latencies.append(ms)
            for status in statuses:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            return len(self.latencies)


def guarded_call(server: Runner, tenant: str, user: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    status, held = server.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations",
        {"resource": "llm", "estimated_cost_usd": "0.02", "user_id": user},
        Prefer="return=minimal",
    )
    if status != 201:
        return (time.perf_counter() - started) * 1000, status, 0
    committed, _ = server.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations/{held['reservation_id']}/commit",
        {"resource": "llm", "cost_usd": "0.015"},
    )
    return (time.perf_counter() - started) * 1000, status, committed


def soak(server: Runner, tenants: list[str], total: int, callers: int) -> Calls:
    calls = Calls()
    calls.memory.append({"calls": 0, **tree_rss_mb(server.process.pid)})
    counter = iter(range(total))
    take = threading.Lock()

    def caller() -> None:
        while True:
            with take:
                i = next(counter, None)
            if i is None:
                return
            ms, *statuses = guarded_call(
                server, tenants[i % TENANTS], f"u-{(i // TENANTS) % USERS}"
            )
            done = calls.add(ms, *[s for s in statuses if s])
            if done % SAMPLE_EVERY == 0:
                calls.memory.append({"calls": done, **tree_rss_mb(server.process.pid)})

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if calls.memory[-1]["calls"] != len(calls.latencies):
        calls.memory.append({"calls": len(calls.latencies), **tree_rss_mb(server.process.pid)})
    return calls


def summary(calls: Calls, seconds: float) -> dict[str, Any]:
    first = statistics.median(calls.latencies[:WINDOW])
    last = statistics.median(calls.latencies[-WINDOW:])
    windows = [
        round(statistics.median(calls.latencies[i : i + WINDOW]), 2)
        for i in range(0, len(calls.latencies), WINDOW)
    ]
    memory = calls.memory
    after_warmup = next((m for m in memory if m["calls"] >= WINDOW), memory[0])
    return {
        "calls": len(calls.latencies),
        "seconds": round(seconds, 1),
        "calls_per_second": round(len(calls.latencies) / seconds, 1),
        "p50_first_1000_ms": round(first, 2),
        "p50_last_1000_ms": round(last, 2),
        "p50_ratio_last_to_first": round(last / first, 3),
        "p95_last_1000_ms": round(statistics.quantiles(calls.latencies[-WINDOW:], n=20)[-1], 2),
        "p50_per_1000_ms": windows,
        "statuses": {str(k): v for k, v in sorted(calls.statuses.items())},
        "server_errors": sum(v for k, v in calls.statuses.items() if k >= 500),
        "memory_mb": memory,
        "memory_growth_mb": round(memory[-1]["total"] - memory[0]["total"], 1),
        "memory_growth_after_first_1000_mb": round(memory[-1]["total"] - after_warmup["total"], 1),
    }


def run_soak(total: int, callers: int) -> dict[str, Any]:
    with runner() as server:
        tenants = seed(server)
        started = time.perf_counter()
        calls = soak(server, tenants, total, callers)
        result = summary(calls, time.perf_counter() - started)
        if callers > 1:  # SIGTERM while the callers keep calling, on the grown store
            stop = threading.Event()
            seen = Calls()

            def keep_calling(n: int) -> None:
                while not stop.is_set():
                    try:
                        ms, *statuses = guarded_call(server, tenants[n], "u-stop")
                    except urllib3.exceptions.HTTPError:
                        return
                    seen.add(ms, *[s for s in statuses if s])

            threads = [threading.Thread(target=keep_calling, args=(n,)) for n in range(callers)]
            for thread in threads:
                thread.start()
            time.sleep(2)
            result["sigterm_under_load_seconds"] = round(server.stop(), 2)
            stop.set()
            for thread in threads:
                thread.join(10)
            result["statuses_while_stopping"] = {
                str(k): v for k, v in sorted(seen.statuses.items())
            }
        else:
            result["sigterm_idle_seconds"] = round(server.stop(), 2)
    return {"callers": callers, **result}


def run_throughput(workers: int, callers: int, seconds: float) -> dict[str, Any]:
    with runner(workers) as server:
        tenants = seed(server)
        for i in range(20):  # warm every worker's handler (imports, pools) before timing
            guarded_call(server, tenants[i % TENANTS], "warm")
        done = Calls()
        stop = threading.Event()

        def caller(n: int) -> None:
            i = n
            while not stop.is_set():
                ms, *statuses = guarded_call(server, tenants[i % TENANTS], f"u-{n}")
                done.add(ms, *[s for s in statuses if s])
                i += callers

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(callers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    return {
        "workers": workers,
        "callers": callers,
        "seconds": round(elapsed, 1),
        "guarded_calls_per_second": round(len(done.latencies) / elapsed, 1),
        "quota_operations_per_second": round(2 * len(done.latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(done.latencies), 2),
        "server_errors": sum(v for k, v in done.statuses.items() if k >= 500),
    }


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# `make run` soak (bench/soak.py)",
        "",
        f"{meta['finished_at']} · `{meta['command']}` · Python {meta['python']} · "
        f"{meta['cpus']} CPUs, load average at start {meta['load_average_at_start']} "
        "(a machine shared with other work) · store: "
        + (
            "DynamoDB Local, persistent (the default of `make run`), a fresh data folder per run."
            if meta.get("store", "ddblocal") == "ddblocal"
            else "`COSTGUARD_STORE=memory` (DynamoDB Local in memory; the option was removed "
            "after this run, docs/decisions.md D49)."
        ),
        "",
        "A guarded call = reserve (`Prefer: return=minimal`) + commit, over loopback HTTP.",
        "",
        "| run | calls | calls/s | p50 first 1,000 | p50 last 1,000 | ratio (≤ 1.2) | p95 last 1,000 "
        "| process-tree RSS start → end | growth (≤ 100 MB) | after the first 1,000 | 5xx | SIGTERM → all gone |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results["soak"]:
        mem = run["memory_mb"]
        stop = run.get("sigterm_under_load_seconds", run.get("sigterm_idle_seconds"))
        how = "under load" if "sigterm_under_load_seconds" in run else "idle"
        lines.append(
            f"| {run['callers']} caller{'s' if run['callers'] > 1 else ''} | {run['calls']:,} "
            f"| {run['calls_per_second']} | {run['p50_first_1000_ms']} ms "
            f"| {run['p50_last_1000_ms']} ms | {run['p50_ratio_last_to_first']} "
            f"| {run['p95_last_1000_ms']} ms | {mem[0]['total']:.0f} → {mem[-1]['total']:.0f} MB "
            f"| {run['memory_growth_mb']} MB | {run['memory_growth_after_first_1000_mb']} MB "
            f"| {run['server_errors']} | {stop} s ({how}) |"
        )
    lines += [
        "",
        "p50 per 1,000 calls (ms), in order:",
        "",
    ]
    for run in results["soak"]:
        lines.append(f"- {run['callers']} caller(s): {', '.join(map(str, run['p50_per_1000_ms']))}")
    lines += [
        "",
        "Memory by process at the end (MB): "
        + "; ".join(
            f"{run['callers']} caller(s): "
            + ", ".join(f"{k} {v}" for k, v in run["memory_mb"][-1].items() if k != "calls")
            for run in results["soak"]
        ),
    ]
    if not results["throughput"]:
        return "\n".join([*lines, ""])
    lines += [
        "",
        f"## Throughput by worker count ({results['throughput'][0]['callers']} callers, "
        f"{results['throughput'][0]['seconds']} s each)",
        "",
        "| `COSTGUARD_WORKERS` | guarded calls/s | quota operations/s | p50 | 5xx |",
        "|---|---|---|---|---|",
    ]
    for run in results["throughput"]:
        lines.append(
            f"| {run['workers']} | {run['guarded_calls_per_second']} "
            f"| {run['quota_operations_per_second']} | {run['p50_ms']} ms | {run['server_errors']} |"
        )
    lines += [
        "",
        f"The machine has {meta['cpus']} CPUs shared by the runner, its workers, DynamoDB Local "
        "and the callers: beyond that many workers, more processes only share the same cores.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2,4", help="throughput runs; '' for none")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load = os.getloadavg()
    soaks = []
    for callers in (1, args.callers):
        soaks.append(run_soak(args.calls, callers))
        print(json.dumps(soaks[-1] | {"memory_mb": soaks[-1]["memory_mb"][-1]}), flush=True)
    throughput = []
    for workers in (int(w) for w in args.workers.split(",") if w):
        throughput.append(run_throughput(workers, args.callers, args.seconds))
        print(json.dumps(throughput[-1]), flush=True)
    results = {
        "meta": {
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
            "seconds": round(time.perf_counter() - started, 1),
            "command": "python -m bench soak " + " ".join(argv or sys.argv[2:]),
            "load_average_at_start": [round(x, 1) for x in load],
            "store": "ddblocal",
        },
        "soak": soaks,
        "throughput": throughput,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "soak"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)

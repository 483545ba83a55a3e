"""`python -m bench load`: the API under load over loopback HTTP.

For each store (`--stores`: DynamoDB Local started here, or the runner's own on disk; the
embedded moto store of earlier runs is gone from `make run`, issue 19) a runner process
(`python -m local`) is started on a free 127.0.0.1 port and driven by threads with urllib3:

1. latency, one caller: reserve + commit pairs spread over many tenants and users, each pair
   followed by a bare conditional UpdateItem through the same server (`POST /local/floor`:
   HTTP + the store, no costguard code) — the floor, interleaved so that machine noise hits
   both alike;
2. throughput, `--concurrency` callers: the same mix, ops/s;
3. hot tenant: every call on one tenant's one quota;
4. burst: `--burst` reserves released at once (wall time), and the replaced systems' check:
   10 concurrent $2 reserves against a $10 limit → exactly 5 granted;
5. sustained: `--duration` seconds (default 60) of the mix; latency and ops/s per window,
   degradation = last window against the first.

With DynamoDB Local a bare `update_item` from this process straight to the store is measured
too (no HTTP). Reserves send `Prefer: return=minimal` (one DynamoDB call; see D8).
Results: bench/results/load.json, load.md, load.png. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ADMIN = "cg-admin-load-bench"
BIG = "1000000"
OPS = ("reserve", "commit", "floor")


# ---------------------------------------------------------------------------- the runner
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    http: urllib3.PoolManager

    def call(
        self, method: str, path: str, body: Any = None, key: str = ADMIN, **headers: str
    ) -> tuple[int, Any]:
        answer = self.http.request(
            method,
            self.url + path,
            body=json.dumps(body) if body is not None else None,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {key}",
                **headers,
            },
            retries=False,
        )
        try:
            return answer.status, json.loads(answer.data or b"null")
        except ValueError:
            return answer.status, answer.data.decode()


@contextmanager
def runner(endpoint: str | None) -> Iterator[Server]:
    port = _free_port()
    env = {
        **os.environ,
        "COSTGUARD_PORT": str(port),
        "COSTGUARD_ADMIN_KEY": ADMIN,
        "PYTHONPATH": str(ROOT),
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "COSTGUARD_TABLE_NAME": f"costguard-load-{os.getpid()}",
    }
    scratch = None
    if endpoint:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    else:  # the runner's own DynamoDB Local, in a temporary folder: never the developer's
        scratch = tempfile.mkdtemp(prefix="costguard-load-")
        env["COSTGUARD_DATA_DIR"] = scratch
    process = subprocess.Popen(
        [sys.executable, "-m", "local"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(
        f"http://127.0.0.1:{port}", urllib3.PoolManager(maxsize=160, block=False, timeout=30)
    )
    try:
        deadline = time.monotonic() + 120
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
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------- the workload
@dataclass
class World:
    """Tenants with their keys and users; a hot tenant; limits far above the run's spend."""

    tenants: list[tuple[str, str]]  # (tenant_id, api key)
    users: list[str]
    hot: tuple[str, str]


def seed(server: Server, tenants: int, users: int) -> World:
    made = []
    for i in range(tenants + 1):
        tenant = f"load-{i:03d}" if i < tenants else "load-hot"
        status, _ = server.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": tenant})
        assert status in (201, 409), status
        for quota in ("tenant:llm:month", "tenant:all:month"):
            status, body = server.call(
                "PUT", f"/v1/tenants/{tenant}/quotas/{quota}", {"limit_usd": BIG}
            )
            assert status == 200, body
        status, key = server.call("POST", f"/v1/tenants/{tenant}/api-keys")
        assert status == 201, key
        made.append((tenant, key["api_key"]))
    return World(made[:-1], [f"u-{j}" for j in range(users)], made[-1])


@dataclass
class Sample:
    at: float  # seconds since the phase started
    op: str
    ms: float
    status: int


@dataclass
class Recorder:
    started: float = field(default_factory=time.perf_counter)
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, op: str, call: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        t0 = time.perf_counter()
        status, body = call()
        t1 = time.perf_counter()
        with self.lock:
            self.samples.append(Sample(t0 - self.started, op, (t1 - t0) * 1000, status))
        return status, body


def pair(server: Server, rec: Recorder, tenant: tuple[str, str], user: str) -> None:
    """reserve → commit → one bare UpdateItem through the same server (the floor)."""
    tid, key = tenant
    status, body = rec.timed(
        "reserve",
        lambda: server.call(
            "POST",
            f"/v1/tenants/{tid}/reservations",
            {"resource": "llm", "estimated_cost_usd": "0.010000", "user_id": user},
            key=key,
            Prefer="return=minimal",
        ),
    )
    if status == 201:
        rid = body["reservation_id"]
        rec.timed(
            "commit",
            lambda: server.call(
                "POST",
                f"/v1/tenants/{tid}/reservations/{rid}/commit",
                {"resource": "llm", "cost_usd": "0.008000", "user_id": user},
                key=key,
            ),
        )
    rec.timed("floor", lambda: server.call("POST", "/local/floor"))


def drive(
    workers: int, until: Callable[[int], bool], work: Callable[[random.Random], None]
) -> float:
    """Run `work` on `workers` threads while `until(iteration)` holds; wall seconds."""
    counter = iter(range(10**9))
    lock = threading.Lock()

    def loop(seed_: int) -> None:
        rng = random.Random(seed_)
        while True:
            with lock:
                i = next(counter)
            if not until(i):
                return
            work(rng)

    threads = [threading.Thread(target=loop, args=(s,)) for s in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def stats(samples: list[Sample], op: str) -> dict[str, Any]:
    ms = [s.ms for s in samples if s.op == op]
    if len(ms) < 2:
        return {"n": len(ms)}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "n": len(ms),
        "errors": sum(1 for s in samples if s.op == op and s.status >= 500),
        "mean_ms": round(statistics.fmean(ms), 2),
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(max(ms), 2),
    }


def per_op(samples: list[Sample]) -> dict[str, Any]:
    return {op: stats(samples, op) for op in OPS}


def ratios(ops: dict[str, Any]) -> dict[str, Any]:
    floor = ops["floor"]
    return {
        op: {
            p: round(ops[op][f"{p}_ms"] / floor[f"{p}_ms"], 2)
            for p in ("p50", "p95", "p99")
            if floor.get(f"{p}_ms")
        }
        for op in ("reserve", "commit")
        if ops[op].get("p50_ms")
    }


# ---------------------------------------------------------------------------- the phases
def phase_latency(server: Server, world: World, pairs: int) -> dict[str, Any]:
    rec = Recorder()
    drive(
        1,
        lambda i: i < pairs,
        lambda rng: pair(server, rec, rng.choice(world.tenants), rng.choice(world.users)),
    )
    ops = per_op(rec.samples)
    return {"callers": 1, "pairs": pairs, "ops": ops, "ratios_vs_floor": ratios(ops)}


def phase_throughput(
    server: Server, world: World, pairs: int, workers: int, hot: bool
) -> dict[str, Any]:
    rec = Recorder()

    def work(rng: random.Random) -> None:
        tenant = world.hot if hot else rng.choice(world.tenants)
        pair(server, rec, tenant, rng.choice(world.users))

    wall = drive(workers, lambda i: i < pairs, work)
    ops = per_op(rec.samples)
    spend_ops = sum(1 for s in rec.samples if s.op != "floor")
    return {
        "callers": workers,
        "pairs": pairs,
        "wall_s": round(wall, 2),
        "quota_ops_per_s": round(spend_ops / wall, 1),
        "ops": ops,
        "ratios_vs_floor": ratios(ops),
    }


def phase_burst(server: Server, world: World, size: int) -> dict[str, Any]:
    barrier = threading.Barrier(size + 1)
    statuses: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        tid, key = world.tenants[i % len(world.tenants)]
        barrier.wait()
        try:
            status, _ = server.call(
                "POST",
                f"/v1/tenants/{tid}/reservations",
                {"resource": "llm", "estimated_cost_usd": "0.01"},
                key=key,
                Prefer="return=minimal",
            )
        except urllib3.exceptions.HTTPError:
            status = 0  # no answer within the client's 30 s
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(size)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0

    # The replaced systems' check: 10 concurrent $2 operations against a $10 limit.
    tenant = f"load-ten-{int(time.time() * 1000) % 10**8}"
    server.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": tenant})
    server.call("PUT", f"/v1/tenants/{tenant}/quotas/tenant:llm:month", {"limit_usd": "10"})
    server.call("DELETE", f"/v1/tenants/{tenant}/quotas/tenant:all:month")
    server.call("DELETE", f"/v1/tenants/{tenant}/quotas/tenant:sandbox:month")
    ten = threading.Barrier(10)
    granted: list[int] = []

    def two_dollars() -> None:
        ten.wait()
        status, _ = server.call(
            "POST",
            f"/v1/tenants/{tenant}/reservations",
            {"resource": "llm", "estimated_cost_usd": "2"},
            Prefer="return=minimal",
        )
        with lock:
            granted.append(status)

    workers = [threading.Thread(target=two_dollars) for _ in range(10)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    _, quotas = server.call("GET", f"/v1/tenants/{tenant}/quotas")
    llm = next(q for q in quotas["quotas"] if q["quota_id"] == "tenant:llm:month")
    return {
        "size": size,
        "wall_s": round(wall, 3),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "ten_times_2_on_10": {
            "granted": granted.count(201),
            "refused_429": granted.count(429),
            "reserved_usd": llm["reserved_usd"],
        },
    }


def phase_sustained(
    server: Server, world: World, seconds: float, workers: int, window: float
) -> tuple[dict[str, Any], list[Sample]]:
    rec = Recorder()
    end = time.perf_counter() + seconds
    wall = drive(
        workers,
        lambda i: time.perf_counter() < end,
        lambda rng: pair(server, rec, rng.choice(world.tenants), rng.choice(world.users)),
    )
    windows: list[dict[str, Any]] = []
    n = max(1, round(seconds / window))
    for w in range(n):
        inside = [s for s in rec.samples if w * window <= s.at < (w + 1) * window]
        spend = [s for s in inside if s.op != "floor"]
        windows.append(
            {
                "from_s": w * window,
                "quota_ops_per_s": round(len(spend) / window, 1),
                "reserve": stats(inside, "reserve"),
                "floor": stats(inside, "floor"),
            }
        )
    first, last = windows[0], windows[-1]

    def change(key: str) -> float | None:
        a, b = first["reserve"].get(key), last["reserve"].get(key)
        return round(b / a - 1, 3) if a and b else None

    rate_a, rate_b = first["quota_ops_per_s"], last["quota_ops_per_s"]
    return {
        "seconds": seconds,
        "callers": workers,
        "wall_s": round(wall, 1),
        "quota_ops": sum(1 for s in rec.samples if s.op != "floor"),
        "quota_ops_per_s": round(sum(1 for s in rec.samples if s.op != "floor") / wall, 1),
        "ops": per_op(rec.samples),
        "windows": windows,
        "degradation": {
            "reserve_p50_change": change("p50_ms"),
            "reserve_p95_change": change("p95_ms"),
            "throughput_change": round(rate_b / rate_a - 1, 3) if rate_a else None,
        },
        "server_errors": sum(1 for s in rec.samples if s.status >= 500),
    }, rec.samples


def direct_floor(endpoint: str, calls: int) -> dict[str, Any]:
    """A bare update_item from this process straight to DynamoDB Local (no HTTP server)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, config=Config(parameter_validation=False)
    )
    table = f"costguard-load-{os.getpid()}"
    params: dict[str, Any] = {
        "TableName": table,
        "Key": {"pk": {"S": "BENCH#DIRECT"}, "sk": {"S": "MONTH#0000-00"}},
        "UpdateExpression": "SET #a = if_not_exists(#a, :l) - :v ADD #h :v",
        "ConditionExpression": "attribute_not_exists(#a) OR #a >= :v",
        "ExpressionAttributeNames": {"#a": "q_llm_avail", "#h": "q_llm_held"},
        "ExpressionAttributeValues": {":l": {"N": "1000000000000"}, ":v": {"N": "0.01"}},
    }
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        client.update_item(**params)
        samples.append(Sample(0, "direct", (time.perf_counter() - t0) * 1000, 200))
    return stats(samples, "direct")


def run_store(name: str, endpoint: str | None, args: argparse.Namespace) -> dict[str, Any]:
    print(f"bench load: {name} store…", file=sys.stderr, flush=True)
    with runner(endpoint) as server:
        world = seed(server, args.tenants, args.users)
        warm = Recorder()
        drive(2, lambda i: i < 40, lambda rng: pair(server, warm, rng.choice(world.tenants), "u-0"))
        out: dict[str, Any] = {"store": name}
        print("  latency, one caller", file=sys.stderr, flush=True)
        out["latency"] = phase_latency(server, world, args.pairs)
        print(f"  throughput, {args.concurrency} callers", file=sys.stderr, flush=True)
        out["throughput"] = phase_throughput(server, world, args.pairs, args.concurrency, hot=False)
        print("  hot tenant", file=sys.stderr, flush=True)
        out["hot_tenant"] = phase_throughput(server, world, args.pairs, args.concurrency, True)
        print(f"  burst of {args.burst}", file=sys.stderr, flush=True)
        out["burst"] = phase_burst(server, world, args.burst)
        print(f"  sustained {args.duration:g} s", file=sys.stderr, flush=True)
        out["sustained"], series = phase_sustained(
            server, world, args.duration, args.concurrency, args.window
        )
        out["_series"] = [(s.at, s.op, s.ms) for s in series]
        if endpoint:
            out["direct_update_item"] = direct_floor(endpoint, args.pairs)
    return out


# ---------------------------------------------------------------------------- reporting
def render(results: dict[str, Any]) -> str:
    m = results["meta"]
    lines = [
        "# Load benchmark (`python -m bench load`)",
        "",
        f"{m['finished_at']} · Python {m['python']} · {m['platform']} · {m['cpus']} CPUs · "
        f"{m['seconds']} s · `{m['command']}`",
        "",
        "Loopback HTTP to `python -m local` (werkzeug → API Gateway v2 event → the Lambda "
        "handler, one invocation at a time like one warm container). **Noisy:** 2 cores "
        "shared with other engineers' test runs; compare the ratios within one run, not "
        "absolute numbers across runs. The floor is a bare conditional UpdateItem through "
        "the same server (`POST /local/floor`), interleaved with the pairs.",
        "",
    ]
    for store in results["stores"]:
        lat, thr, hot = store["latency"], store["throughput"], store["hot_tenant"]
        lines += [f"## {store['store']} store", ""]
        lines += [
            "| phase | op | n | p50 ms | p95 ms | p99 ms | max ms | × floor p50 / p95 / p99 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, phase in (
            ("1 caller", lat),
            (f"{thr['callers']} callers", thr),
            (f"hot tenant, {hot['callers']} callers", hot),
            (f"sustained {store['sustained']['seconds']:g} s", store["sustained"]),
        ):
            rat = phase.get("ratios_vs_floor") or ratios(phase["ops"])
            for op in OPS:
                s = phase["ops"][op]
                r = rat.get(op, {})
                rtext = " / ".join(str(r.get(p, "")) for p in ("p50", "p95", "p99")) if r else ""
                lines.append(
                    f"| {label} | {op} | {s.get('n')} | {s.get('p50_ms')} | {s.get('p95_ms')} "
                    f"| {s.get('p99_ms')} | {s.get('max_ms')} | {rtext} |"
                )
        sus, burst = store["sustained"], store["burst"]
        deg = sus["degradation"]
        ten = burst["ten_times_2_on_10"]
        lines += [
            "",
            f"- quota operations/s (reserve + commit): {thr['quota_ops_per_s']} with "
            f"{thr['callers']} callers; hot tenant {hot['quota_ops_per_s']}; sustained "
            f"{sus['quota_ops_per_s']} over {sus['wall_s']} s ({sus['quota_ops']} operations, "
            f"{sus['server_errors']} 5xx)",
            f"- burst: {burst['size']} concurrent reserves in **{burst['wall_s']} s** "
            f"(statuses {burst['statuses']}; 0 = no answer within 30 s)",
            f"- 10 concurrent $2 reserves on a $10 limit: {ten['granted']} granted, "
            f"{ten['refused_429']} refused, reserved {ten['reserved_usd']}",
            f"- sustained, last window against the first: reserve p50 "
            f"{_pct(deg['reserve_p50_change'])}, p95 {_pct(deg['reserve_p95_change'])}, "
            f"throughput {_pct(deg['throughput_change'])}",
        ]
        if "direct_update_item" in store:
            d = store["direct_update_item"]
            lines.append(
                f"- bare `update_item` from the benchmark process straight to the store (no "
                f"HTTP): p50 {d['p50_ms']} ms, p95 {d['p95_ms']} ms, p99 {d['p99_ms']} ms"
            )
        lines += [
            "",
            "| window from s | quota ops/s | reserve p50 ms | reserve p95 ms | floor p50 ms |",
            "|---|---|---|---|---|",
        ]
        for w in sus["windows"]:
            lines.append(
                f"| {w['from_s']:g} | {w['quota_ops_per_s']} | {w['reserve'].get('p50_ms')} | "
                f"{w['reserve'].get('p95_ms')} | {w['floor'].get('p50_ms')} |"
            )
        lines.append("")
    lines += [
        "Replaced systems, for reference: p50 32 ms, p95 78 ms, p99 145 ms per quota "
        "operation; 28 operations/s; 100 concurrent operations in 3.2 s; under 50 % "
        "degradation over 10 s. Plot: `load.png`.",
    ]
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.0f} %"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stores = results["stores"]
    fig, axes = plt.subplots(2, len(stores), figsize=(7 * len(stores), 9), squeeze=False)
    colors = {"reserve": "tab:blue", "commit": "tab:green", "floor": "tab:gray"}
    for col, store in enumerate(stores):
        top, bottom = axes[0][col], axes[1][col]
        series = store["_series"]
        for op in OPS:
            pts = [(at, ms) for at, o, ms in series if o == op]
            if pts:
                top.scatter(*zip(*pts, strict=True), s=2, alpha=0.35, color=colors[op], label=op)
        # rolling p50 of reserve per second
        reserve = [(at, ms) for at, o, ms in series if o == "reserve"]
        if reserve:
            buckets: dict[int, list[float]] = {}
            for at, ms in reserve:
                buckets.setdefault(int(at), []).append(ms)
            xs = sorted(buckets)
            top.plot(
                xs, [statistics.median(buckets[x]) for x in xs], color="navy", label="reserve p50/s"
            )
        top.set_yscale("log")
        top.set_title(f"{store['store']}: latency over the sustained run")
        top.set_xlabel("seconds")
        top.set_ylabel("ms (log)")
        top.legend(loc="upper right", markerscale=4)
        for op in OPS:
            ms = [m for _, o, m in series if o == op]
            if ms:
                bottom.hist(ms, bins=80, alpha=0.5, color=colors[op], label=op, log=True)
        bottom.set_title(f"{store['store']}: latency histogram (sustained)")
        bottom.set_xlabel("ms")
        bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench load", description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0, help="sustained run, seconds")
    parser.add_argument("--window", type=float, default=10.0, help="sustained window, seconds")
    parser.add_argument(
        "--stores",
        default="ddblocal",
        help="ddblocal (an emulator in memory, started here), runner (the runner's own, on disk)",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--users", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    started = time.perf_counter()
    stores = []
    for name in args.stores.split(","):
        if name == "runner":
            stores.append(run_store("DynamoDB Local (make run's own, on disk)", None, args))
        elif name == "ddblocal":
            from local import ddblocal

            emulator = ddblocal.start()
            try:
                stores.append(run_store("DynamoDB Local", emulator.endpoint, args))
            finally:
                emulator.stop()
        else:
            parser.error(f"unknown store {name!r}")
    results: dict[str, Any] = {
        "meta": {
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
            "seconds": round(time.perf_counter() - started, 1),
            "command": "python -m bench load " + " ".join(argv or sys.argv[2:]),
            "load_average": os.getloadavg(),
        },
        "stores": stores,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS / "load.png")
    markdown = render(results)
    (RESULTS / "load.md").write_text(markdown)
    public = {
        **results,
        "stores": [
            {k: v for k, v in s.items() if not k.startswith("_")} for s in results["stores"]
        ],
    }
    (RESULTS / "load.json").write_text(json.dumps(public, indent=2) + "\n")
    print(markdown)
    print(f"written: {RESULTS / 'load.json'}, load.md, load.png", file=sys.stderr)

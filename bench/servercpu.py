"""`python -m bench servercpu`: the server's CPU per guarded call against one bare
`UpdateItem` through the same server (issue 22's first target, measured as the issue did).

`make run`'s runner (`python -m local`, its own DynamoDB Local in a temporary folder) serves
on loopback; one caller sends, per round, N guarded calls (reserve with
`Prefer: return=minimal`, then commit), N bare conditional `UpdateItem`s through the same
server (`POST /local/floor`: the runner's HTTP front end, a worker, the store; no costguard
code) and N `GET /v1/health`. The CPU of the runner and its worker processes (every Python
process of the tree; DynamoDB Local's JVM is not counted) is read from /proc before and after
each phase, and each phase ends with the same pause, so the stream poller has processed what
the guarded calls wrote. The timers' idle CPU (the stream poller's polls, measured over a pause
before each round) is subtracted at its rate over each phase's whole duration: a phase that runs
longer has more idle polls in it, which are not its operations' cost. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.load import ADMIN, runner, seed

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAUSE_SECONDS = 2.0


def _tree(root: int) -> list[int]:
    """The pids of `root` and its descendants that run Python (not the JVM)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"java" not in command.split(b"\0", 1)[0]:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _cpu_seconds(pids: list[int]) -> float:
    return sum(_cpu_by_pid(pids).values())


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """Each process's CPU seconds (utime + stime)."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, in clock ticks
    return out


def _runner_pid() -> int:
    """The `python -m local` process this benchmark started (its child)."""
    newest = None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if command[1:3] == [b"-m", b"local"] and parent == os.getpid():
            newest = int(entry.name)
    if newest is None:
        raise RuntimeError("the runner process was not found")
    return newest


def measure(rounds: int, calls: int) -> dict[str, Any]:
    per_op: dict[str, list[float]] = {"guarded_call": [], "floor": [], "health": []}
    with runner(None) as server:
        world = seed(server, 1, 1)
        tenant, key = world.tenants[0]
        pids = _tree(_runner_pid())

        def guarded() -> None:
            status, body = server.call(
                "POST",
                f"/v1/tenants/{tenant}/reservations",
                {"resource": "llm", "estimated_cost_usd": "0.010000"},
                key=key,
                Prefer="return=minimal",
            )
            assert status == 201, body
            status, body = server.call(
                "POST",
                f"/v1/tenants/{tenant}/reservations/{body['reservation_id']}/commit",
                {"resource": "llm", "cost_usd": "0.008000"},
                key=key,
            )
            assert status == 200, body

        def floor() -> None:
            assert server.call("POST", "/local/floor")[0] == 200

        def health() -> None:
            assert server.call("GET", "/v1/health", key=ADMIN)[0] == 200

        phases = {"guarded_call": guarded, "floor": floor, "health": health}
        for phase in phases.values():  # warm every worker and path
            for _ in range(20):
                phase()
        time.sleep(PAUSE_SECONDS)
        wall: dict[str, list[float]] = {name: [] for name in phases}
        idle: list[float] = []
        front: dict[str, list[float]] = {name: [] for name in phases}
        for _ in range(rounds):
            before = _cpu_seconds(pids)
            time.sleep(PAUSE_SECONDS)
            idle.append(_cpu_seconds(pids) - before)  # the timers' CPU over one pause
            idle_rate = idle[-1] / PAUSE_SECONDS
            for name, phase in phases.items():
                before_by = _cpu_by_pid(pids)
                before, started = sum(before_by.values()), time.perf_counter()
                for _ in range(calls):
                    phase()
                wall[name].append((time.perf_counter() - started) / calls * 1000)
                time.sleep(PAUSE_SECONDS)
                # the timers' own CPU over the whole phase (calls and pause), at the idle rate
                timers = idle_rate * (time.perf_counter() - started)
                after_by = _cpu_by_pid(pids)
                spent = sum(after_by.values()) - before - timers
                per_op[name].append(spent / calls * 1000)
                runner_spent = after_by[pids[0]] - before_by[pids[0]] - timers
                front[name].append(runner_spent / calls * 1000)
        reconcile = server.call("GET", f"/v1/tenants/{tenant}/quotas", key=ADMIN)[0]
    ratios = [g / f for g, f in zip(per_op["guarded_call"], per_op["floor"], strict=True)]
    return {
        "rounds": rounds,
        "calls_per_round": calls,
        "pause_seconds": PAUSE_SECONDS,
        "processes": len(pids),
        "idle_cpu_seconds_per_pause": [round(x, 3) for x in idle],
        "cpu_ms_per_op": {k: [round(x, 2) for x in v] for k, v in per_op.items()},
        "wall_ms_per_op": {k: [round(x, 2) for x in v] for k, v in wall.items()},
        "runner_cpu_ms_per_op": {k: [round(x, 2) for x in v] for k, v in front.items()},
        "guarded_over_floor": [round(r, 2) for r in ratios],
        "guarded_over_floor_median": round(statistics.median(ratios), 2),
        "quotas_status": reconcile,
    }


def render(r: dict[str, Any]) -> str:
    lines = [
        "# Server CPU per guarded call, against one bare UpdateItem through the same server",
        "",
        f"{r['finished_at']} · `python -m bench servercpu` · {r['rounds']} rounds of "
        f"{r['calls_per_round']} · {r['processes']} Python processes (runner + workers; the "
        f"JVM not counted) · {r['pause_seconds']} s pause after each phase (stream drained); the "
        f"timers' idle CPU ({r['idle_cpu_seconds_per_pause']} s per pause) is subtracted at "
        "that rate over each phase's duration",
        "",
        "| op | server CPU ms per op (each round) | of which the runner's (front end, stream) "
        "| wall ms per op |",
        "|---|---|---|---|",
        *[
            f"| {name} | {', '.join(map(str, cpu))} | "
            f"{', '.join(map(str, r['runner_cpu_ms_per_op'][name]))} | "
            f"{', '.join(map(str, r['wall_ms_per_op'][name]))} |"
            for name, cpu in r["cpu_ms_per_op"].items()
        ],
        "",
        f"Guarded call (reserve + commit + the stream processing they cause) ÷ floor, per "
        f"round: {', '.join(map(str, r['guarded_over_floor']))} — median "
        f"**{r['guarded_over_floor_median']}×** (target ≤ 2.5×).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench servercpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--name", default="servercpu")
    args = parser.parse_args(argv)
    results = {
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **measure(args.rounds, args.calls),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render(results)
    (RESULTS / f"{args.name}.md").write_text(markdown)
    print(markdown)

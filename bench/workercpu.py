"""`python -m bench workercpu`: an API worker's CPU per guarded call against one bare
`UpdateItem`, in one process on DynamoDB Local (issue 22's first target, the worker's half).

`python -m bench servercpu` measures `make run`'s whole process tree, front end and stream
included, between phases of 200 calls: on a shared 2-core machine its rounds spread. This one
runs the runner's wiring in this process (`local.server.build` without a pool: the API handler
as a worker runs it, the production client, DynamoDB Local over loopback HTTP) and reads the
thread's CPU clock around each call: a guarded call (reserve with `Prefer: return=minimal`, then
commit, through `lambda_handler`; events built outside the clock), a bare conditional
`UpdateItem` on the same client (the floor) and `GET /v1/health`, interleaved call by call;
medians. `--ab` also runs every call with botocore's own answer parser in place of D124's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ADMIN = "cg-admin-workercpu-bench"


def measure(rounds: int, ab: bool) -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from costguard.settings import Settings
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from local import ddblocal
    from local.events import to_event
    from local.server import build
    from local.store import floor_update

    clock = time.thread_time
    emulator = ddblocal.start()
    try:
        runner, close = build(Settings(admin_key=ADMIN, table_name="workercpu"), emulator.endpoint)

        def event(
            method: str, path: str, body: Any = None, key: str = ADMIN, **headers: str
        ) -> Any:
            sent: dict[str, str] = {"Authorization": f"Bearer {key}", **headers}
            environ = EnvironBuilder(
                method=method, path=path, json=body, headers=list(sent.items())
            ).get_environ()
            return to_event(Request(environ))

        def call(payload: Any) -> tuple[int, Any]:
            out = runner.invoke("api", payload)
            return int(out["statusCode"]), json.loads(out.get("body") or "null")

        assert call(event("POST", "/v1/tenants", {"tenant_id": "bench-1", "name": "b"}))[0] == 201
        status, made = call(event("POST", "/v1/tenants/bench-1/api-keys"))
        assert status == 201, made
        key = made["api_key"]
        reserve = event(
            "POST",
            "/v1/tenants/bench-1/reservations",
            {"resource": "llm", "estimated_cost_usd": "0.010000"},
            key,
            Prefer="return=minimal",
        )
        health = event("GET", "/v1/health")
        client, table = runner.ledger.table.client, runner.ledger.table.name
        endpoint = client._endpoint
        parsers = {"lean": endpoint._response_parser_factory}
        if ab:
            parsers["botocore_parser"] = parsers["lean"]._inner

        def guarded() -> float:
            started = clock()
            status, body = call(reserve)
            spent = clock() - started
            assert status == 201, body
            commit = event(
                "POST",
                f"/v1/tenants/bench-1/reservations/{body['reservation_id']}/commit",
                {"resource": "llm", "cost_usd": "0.008000"},
                key,
            )
            started = clock()
            status, body = call(commit)
            spent += clock() - started
            assert status == 200, body
            return spent

        def floor() -> float:
            started = clock()
            floor_update(client, table)
            return clock() - started

        def healthy() -> float:
            started = clock()
            assert call(health)[0] == 200
            return clock() - started

        ops: dict[str, Callable[[], float]] = {"guarded_call": guarded, "floor": floor}
        for op in (*ops.values(), healthy):  # warm every path
            for _ in range(30):
                op()
        samples: dict[str, list[float]] = {}
        for i in range(rounds):
            for mode, factory in parsers.items():
                endpoint._response_parser_factory = factory
                for name, op in ops.items():
                    samples.setdefault(f"{name}:{mode}", []).append(op())
            endpoint._response_parser_factory = parsers["lean"]
            samples.setdefault("health:lean", []).append(healthy())
            if i % 50 == 49:
                assert runner.stream is not None
                runner.stream.once()  # what a timer would do: the alerts handler in this process
        close()
    finally:
        emulator.stop()
    medians = {k: round(statistics.median(v) * 1000, 3) for k, v in samples.items()}
    return {
        "rounds": rounds,
        "cpu_ms_median": medians,
        "guarded_over_floor": {
            mode: round(medians[f"guarded_call:{mode}"] / medians[f"floor:{mode}"], 2)
            for mode in parsers
        },
    }


def render(r: dict[str, Any]) -> str:
    lines = [
        "# An API worker's CPU per guarded call, against one bare UpdateItem (in process)",
        "",
        f"{r['finished_at']} · `python -m bench workercpu` · {r['rounds']} interleaved rounds · "
        "thread CPU per call, medians, DynamoDB Local over loopback HTTP",
        "",
        "| op : answer parser | CPU ms (median) |",
        "|---|---|",
        *[f"| {name} | {ms} |" for name, ms in r["cpu_ms_median"].items()],
        "",
        "Guarded call (reserve + commit through the API handler) ÷ floor: "
        + ", ".join(f"{mode} **{ratio}×**" for mode, ratio in r["guarded_over_floor"].items())
        + ". The runner's front end and stream are not in these figures "
        "(`python -m bench servercpu` has them).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench workercpu")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--ab", action="store_true", help="also with botocore's answer parser")
    parser.add_argument("--name", default="workercpu")
    args = parser.parse_args(argv)
    results = {
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **measure(args.rounds, args.ab),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render(results)
    (RESULTS / f"{args.name}.md").write_text(markdown)
    print(markdown)

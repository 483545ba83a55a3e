"""Section 4: cold start of the API handler in a fresh process, against bare boto3.

Bare: `import boto3; boto3.client("dynamodb")`. Ours: import the API handler, answer a first
request (GET /v1/health through the real resolver), and build the ledger's DynamoDB client,
as the first reserve would. Each runs in a new interpreter, bare and ours in alternating order
round by round; medians of the rounds.

Both import compiled bytecode, as a Lambda asset holds it (infra/packaging.py compiles every
module the runtime imports, D120): the caches are written once, into a directory of this run's
own (`PYTHONPYCACHEPREFIX`: the shared virtualenv is not written), by a first untimed run of
each. `PYTHONDONTWRITEBYTECODE` is removed from the children's environment: Python reads any
non-empty value as set, "0" included, so setting it to "0" (as this bench did) kept every run
compiling every module of the virtualenv (which holds no caches) from source. The same rounds
that way (site-packages and the checkout compiled on every start, the standard library from its
own caches: what an asset without bytecode pays on each cold start) are reported beside.
`PYTHONPATH` is the checkout's `shared/` and root, so the code measured is the checkout's
(an editable install may point at another one).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BARE = "import boto3; boto3.client('dynamodb')"
OURS = """
import json
from functions.api.handler import lambda_handler
from functions.api.deps import get_ledger
from types import SimpleNamespace
event = json.load(open('events/api/health.json'))
ctx = SimpleNamespace(function_name='api', memory_limit_in_mb=512, aws_request_id='r',
                      invoked_function_arn='arn:aws:lambda:us-east-1:1:function:api')
assert lambda_handler(event, ctx)['statusCode'] == 200
get_ledger()
"""


def environment(root: Path, cache: Path | None) -> dict[str, str]:
    """The children's environment: bytecode cached under `cache`, or none written (None)."""
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "PYTHONPATH": f"{root / 'shared'}{os.pathsep}{root}",
        "POWERTOOLS_SERVICE_NAME": "costguard-api",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if cache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # the bench as it was: what has no cache compiles
    else:
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def run_once(code: str, env: dict[str, str], root: Path = ROOT) -> tuple[float, float]:
    """Seconds of wall time and of CPU (user + system) of one fresh interpreter running `code`."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], cwd=root, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args)
    return wall, usage.ru_utime + usage.ru_stime


Runs = list[tuple[float, float]]


UNTIL_DONE = "\nimport os, sys\nsys.stdout.flush()\nos._exit(0)\n"
"""Appended to both for the figure without the interpreter's exit (module teardown and the
last collections), which a Lambda never pays on a request: it keeps its process."""


def _rounds(env: dict[str, str], runs: int, after: str = "") -> tuple[Runs, Runs]:
    bare: Runs = []
    ours: Runs = []
    for i in range(runs):
        pair = [(BARE + after, bare), (OURS + after, ours)]
        for code, into in pair if i % 2 == 0 else reversed(pair):
            into.append(run_once(code, env))
    return bare, ours


def _summary(bare: Runs, ours: Runs) -> dict[str, Any]:
    def ms(runs: Runs, i: int) -> float:
        return statistics.median(r[i] for r in runs) * 1000

    return {
        "bare_ms": round(ms(bare, 0), 1),
        "ours_ms": round(ms(ours, 0), 1),
        "ratio": round(ms(ours, 0) / ms(bare, 0), 2),
        "bare_cpu_ms": round(ms(bare, 1), 1),
        "ours_cpu_ms": round(ms(ours, 1), 1),
        "cpu_ratio": round(ms(ours, 1) / ms(bare, 1), 2),
        "bare_runs_ms": [round(r[0] * 1000, 1) for r in bare],
        "ours_runs_ms": [round(r[0] * 1000, 1) for r in ours],
    }


def measure_cold_start(runs: int = 9) -> dict[str, Any]:
    cache = Path(tempfile.mkdtemp(prefix="costguard-pyc-"))
    try:
        cached = environment(ROOT, cache)
        run_once(BARE, cached), run_once(OURS, cached)  # writes the caches, untimed
        if not any(cache.rglob("*.pyc")):
            raise RuntimeError(f"no bytecode was cached under {cache}")
        with_bytecode = _summary(*_rounds(cached, runs))
        until_done = _summary(*_rounds(cached, runs, UNTIL_DONE))
        from_source = _summary(*_rounds(environment(ROOT, None), runs))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {
        "runs": runs,
        **{k: with_bytecode[k] for k in ("bare_ms", "ours_ms", "ratio")},
        "bytecode": with_bytecode,
        "bytecode_until_done": until_done,
        "from_source": from_source,
        "note": (
            "wall time of a whole interpreter (python start-up included in both), both "
            "importing cached bytecode as a Lambda asset ships it; bare and ours alternate"
        ),
    }


def measure_against(other: Path, runs: int = 11) -> dict[str, Any]:
    """Bare, `other`'s handler (another checkout: the code before a change) and this one's, in
    shuffled order each round, with cached bytecode: whole interpreter and until done."""
    cache = Path(tempfile.mkdtemp(prefix="costguard-pyc-"))
    try:
        envs = {"bare": ROOT, "other": other, "this": ROOT}
        found: dict[str, Any] = {}
        for label, after in (("whole", ""), ("until_done", UNTIL_DONE)):
            cases = {
                name: (BARE + after if name == "bare" else OURS + after, environment(root, cache))
                for name, root in envs.items()
            }
            for name, (code, env) in cases.items():
                run_once(code, env, envs[name])  # writes the caches, untimed
            times: dict[str, Runs] = {name: [] for name in cases}
            order = list(cases)
            for i in range(runs):
                random.Random(i).shuffle(order)
                for name in order:
                    code, env = cases[name]
                    times[name].append(run_once(code, env, envs[name]))
            found[label] = {
                name: _summary(times["bare"], runs_)
                for name, runs_ in times.items()
                if name != "bare"
            }
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"other": str(other), "runs": runs, **found}


def render(results: dict[str, Any]) -> str:
    meta, cached, source = results["meta"], results["bytecode"], results["from_source"]
    done = results["bytecode_until_done"]
    lines = [
        f"# API cold start ({meta['finished_at']}, Python {meta['python']}, "
        f"{meta['cpus']} CPUs, load average before {meta['load_average_before']})",
        "",
        "`python -m bench coldstart` (bench/coldstart.py). A fresh interpreter each: bare is "
        "`import boto3; boto3.client('dynamodb')`; ours imports `functions.api.handler`, "
        "answers GET /v1/health through the real resolver and builds the ledger's DynamoDB "
        f"client (`get_ledger()`). {results['runs']} rounds, bare and ours alternating; medians.",
        "",
        "| modules | bare ms | ours ms | ratio (target ≤ 2) | CPU ms bare / ours | CPU ratio |",
        "|---|---|---|---|---|---|",
        f"| cached bytecode (as the Lambda asset ships it) | {cached['bare_ms']} | "
        f"{cached['ours_ms']} | **{cached['ratio']}** | {cached['bare_cpu_ms']} / "
        f"{cached['ours_cpu_ms']} | {cached['cpu_ratio']} |",
        f"| cached bytecode, until the work is done (no interpreter exit) | {done['bare_ms']} | "
        f"{done['ours_ms']} | {done['ratio']} | {done['bare_cpu_ms']} / {done['ours_cpu_ms']} | "
        f"{done['cpu_ratio']} |",
        f"| compiled from source on every start | {source['bare_ms']} | {source['ours_ms']} | "
        f"{source['ratio']} | {source['bare_cpu_ms']} / {source['ours_cpu_ms']} | "
        f"{source['cpu_ratio']} |",
        "",
        "Wall time of the whole interpreter is the target's measure; CPU time (the children's "
        "user + system) is beside it because the machine is shared: another process's work "
        "stretches wall time, much less CPU time. The row without the interpreter's exit "
        "(`os._exit(0)` appended to both) is what a Lambda cold start pays: the process "
        "lives on after its first request.",
        "",
        "Every run (ms), cached bytecode: bare "
        + ", ".join(map(str, cached["bare_runs_ms"]))
        + "; ours "
        + ", ".join(map(str, cached["ours_runs_ms"]))
        + ".",
        "",
    ]
    if "against" in results:
        against = results["against"]
        lines += [
            f"Against {against['other']} ({against['runs']} rounds, bare / that checkout / "
            "this one in shuffled order, cached bytecode):",
            "",
            "| measure | bare ms | that checkout ms (ratio) | this one ms (ratio) |",
            "|---|---|---|---|",
        ]
        for label in ("whole", "until_done"):
            other, this = against[label]["other"], against[label]["this"]
            lines.append(
                f"| {label.replace('_', ' ')} | {this['bare_ms']} | {other['ours_ms']} "
                f"({other['ratio']}) | {this['ours_ms']} ({this['ratio']}) |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 9
    import platform

    started_load = [round(x, 2) for x in os.getloadavg()]
    results = {
        "meta": {
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "load_average_before": started_load,
            "cpus": os.cpu_count(),
        },
        **measure_cold_start(runs),
    }
    if "--against" in argv:
        other = Path(argv[argv.index("--against") + 1]).resolve()
        results["against"] = measure_against(other, max(runs, 11))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coldstart.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (RESULTS / "coldstart.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main(sys.argv[1:])

"""`python -m bench.treeab <tree A> <tree B> [rounds] [iterations]`: issue 22's stubbed CPU of
two source trees (two worktrees, a change and its base), A/B (D114).

Each round runs, per tree, a fresh process importing `costguard` from that tree: section 1 of
`python -m bench` (`bench.cpu.measure_cpu`: reserve and commit against a bare `update_item`),
then a reserve *with figures* whose stubbed `UpdateItem` answers a realistic `ALL_NEW` counter
(section 1 reserves without figures, so it decodes no counter). Rounds alternate A, B, A, B, so
drift on a shared machine hits both trees alike; medians are printed. Seconds per round.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = r"""
import json, math, sys
from bench.common import dummy_aws_environment
dummy_aws_environment()
import costguard
from botocore.stub import Stubber
from costguard.ledger import make_client, policies
from costguard.store.keys import tenant_pk
from bench.common import (TABLE, TENANT, bare_update_params, bench_settings, estimate,
    make_ledger, percentiles_us, time_interleaved)
from bench.cpu import TENANT_LIMIT, _tenant_policy_item, measure_cpu

n = int(sys.argv[1])
cpu = measure_cpu(n)
N = lambda v: {"N": v}
counter = {
    "pk": {"S": tenant_pk(TENANT)}, "sk": {"S": "MONTH#2026-11"},
    "q_llm_limit": N(TENANT_LIMIT), "q_llm_avail": N("999999.5"), "q_llm_held": N("0.3"),
    "q_llm_spent": N("0.2"), "pv": N("1"), "hn": N("2"),
    "h_01KB0000000000000000000001": {"M": {"p": {"S": "l~0.01~@tm-l~"},
        "x": {"S": "2026-11-25T12:05:00.000000Z"}}},
    "h_01KB0000000000000000000002": {"M": {"p": {"S": "l~0.01~@tm-l~"},
        "x": {"S": "2026-11-25T12:06:00.000000Z"},
        "u": {"M": {"provider": {"S": "openai"}, "model": {"S": "gpt-4o"}}}}},
    "gsi1pk": {"S": "HELD#acme"}, "gsi1sk": {"S": "MONTH#2026-11"},
    "usd_llm": N("0.2"), "calls": N("3"),
}
settings = bench_settings()
client = make_client(settings)
ledger = make_ledger(client, settings)
policies.PLATFORM_FRESH_SECONDS = math.inf
bare = bare_update_params(tenant_pk(TENANT), TENANT_LIMIT)
with Stubber(client) as stub:
    stub.add_response("query", {"Items": [], "Count": 0, "ScannedCount": 0}, None)
    stub.add_response("batch_get_item",
        {"Responses": {TABLE: [_tenant_policy_item()]}, "UnprocessedKeys": {}}, None)
    stub.add_response("update_item", {"Attributes": counter}, None)
    ledger.reserve(TENANT, estimate(), with_figures=True)
    for _ in range(200 + n):
        stub.add_response("update_item", {"Attributes": counter}, None)
        stub.add_response("update_item", {}, None)
    for _ in range(200):
        ledger.reserve(TENANT, estimate(), with_figures=True)
        client.update_item(**bare)
    timed = time_interleaved(n, {
        "reserve_figures": lambda _: ledger.reserve(TENANT, estimate(), with_figures=True),
        "bare": lambda _: client.update_item(**bare),
    })
p50 = {k: percentiles_us(v.cpu_ns)["p50_us"] for k, v in timed.items()}
print(json.dumps({
    "file": costguard.__file__,
    "vs_default_client": cpu["ratios_vs_default_client_update_item"],
    "vs_bare": {k: cpu["ratios_vs_bare_update_item"][k]["cpu_p50"] for k in ("reserve", "commit")},
    "reserve_figures_p50_us": p50["reserve_figures"],
    "reserve_figures_vs_bare": round(p50["reserve_figures"] / p50["bare"], 3),
}))
"""


def run(tree: Path, iterations: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{tree}/shared:{tree}")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(iterations)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not str(found["file"]).startswith(str(tree)):
        raise RuntimeError(f"{tree}: imported costguard from {found['file']}")
    return found


def main(argv: list[str]) -> None:
    a, b = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    rounds = int(argv[2]) if len(argv) > 2 else 10
    iterations = int(argv[3]) if len(argv) > 3 else 2000
    out: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for i in range(rounds):
        for name, tree in (("A", a), ("B", b)):
            found = run(tree, iterations)
            out[name].append(found)
            print(i, name, json.dumps({k: v for k, v in found.items() if k != "file"}), flush=True)
    for name, tree in (("A", a), ("B", b)):
        found_all = out[name]

        def median(pick: Any, found_all: list[dict[str, Any]] = found_all) -> float:
            return round(float(statistics.median(pick(r) for r in found_all)), 3)

        print(
            name,
            tree,
            "medians: reserve/commit vs default-client update_item",
            median(lambda r: r["vs_default_client"]["reserve"]),
            median(lambda r: r["vs_default_client"]["commit"]),
            "| vs the ledger client's bare update_item",
            median(lambda r: r["vs_bare"]["reserve"]),
            median(lambda r: r["vs_bare"]["commit"]),
            "| reserve with figures p50 µs",
            median(lambda r: r["reserve_figures_p50_us"]),
            "ratio",
            median(lambda r: r["reserve_figures_vs_bare"]),
        )


if __name__ == "__main__":
    main(sys.argv[1:])

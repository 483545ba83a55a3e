"""`python -m bench`: the ledger benchmark (a few minutes; nothing leaves the machine).

1. warm CPU per reserve/commit with DynamoDB stubbed out (botocore Stubber);
2. DynamoDB calls and request units per operation, priced at on-demand list prices (moto);
3. latency on moto in-process, for context;
4. the API's cold start; 5. `cdk synth`;
6. CPU per request through the API handler on DynamoDB Local and the cost model (the Lambda
   memory curve, cost per million guarded calls all-in, projected reserve p50:
   bench/costmodel.py), then issue 22's targets, each with its figure.

Writes bench/results/ledger.json and bench/results/ledger.md and prints the summary.

`python -m bench load [--duration 60 …]`: the API under load over loopback HTTP instead
(bench/load.py; several minutes). `python -m bench shards`: the hot-quota sharding design
simulated (bench/shards.py; seconds). `python -m bench hotquota`: the capacity model of
escrow slices and leases by slice count (bench/hotquota.py; under a minute). `python -m bench telemetry`: tracing and metrics on vs
off on a warm reserve through the API handler (bench/telemetry.py). `python -m bench coldstart [--against <other checkout>]`: section 4 alone, writing
bench/results/coldstart.{json,md}; with `--against`, that checkout's handler and this one's
side by side (bench/coldstart.py; a minute, two with `--against`). `python -m bench pricing`:
the generated price catalog at cold start against the hand-kept one (bench/pricing.py).
`python -m bench collector-down`: what tracing adds per request with the collector down
(bench/collector_down.py). `python -m bench timezones`: the zone-dependent work of reserve,
commit and a 429 for a UTC and a Los Angeles tenant (bench/timezones.py; seconds).
`python -m bench profile`: cProfile of reserve + commit through the API handler and of the
stream handler per record, with unprofiled ratios (bench/profile.py; about a minute).
`python -m bench costmodel`: CPU per request through the handler on DynamoDB Local, the Lambda
memory curve, cost per million guarded calls all-in and a projected reserve p50
(bench/costmodel.py; minutes). `python -m bench servercpu`: the runner's CPU per guarded call
against one bare UpdateItem through the same server (bench/servercpu.py; minutes).
`python -m bench workercpu [--ab]`: the same, an API worker's half alone, in one process,
per-call CPU medians (bench/workercpu.py; a minute or two).
`python -m bench.treeab <tree A> <tree B>`: section 1 and a reserve with figures for two
source trees (a change and its base), A/B in interleaved rounds (bench/treeab.py; minutes).
`python -m bench soak`:
`make run` on its default store for 10,000 guarded calls, 1 and 4 callers, and throughput at
1/2/4 workers (bench/soak.py; about ten minutes).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from bench.coldstart import measure_cold_start
from bench.common import dummy_aws_environment
from bench.costmodel import run as measure_cost_model
from bench.cpu import measure_cpu
from bench.latency import measure_latency
from bench.report import render_markdown, write_results
from bench.synth import measure_synth
from bench.units import measure_units


def _meta(seconds: float) -> dict[str, Any]:
    return {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
        "moto": version("moto"),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    if sys.argv[1:2] == ["load"]:
        from bench.load import main as load

        load(sys.argv[2:])
        return
    if sys.argv[1:2] == ["soak"]:
        from bench.soak import main as soak

        soak(sys.argv[2:])
        return
    if sys.argv[1:2] == ["memory"]:
        from bench.memory import main as memory

        memory(sys.argv[2:])
        return
    if sys.argv[1:2] == ["collector-down"]:
        from bench.collector_down import main as collector_down

        collector_down(sys.argv[2:])
        return
    if sys.argv[1:2] == ["telemetry"]:
        from bench.telemetry import main as telemetry

        telemetry(sys.argv[2:])
        return
    if sys.argv[1:2] == ["coldstart"]:
        from bench.coldstart import main as coldstart

        coldstart(sys.argv[2:])
        return
    if sys.argv[1:2] == ["pricing"]:
        from bench.pricing import main as pricing

        pricing(sys.argv[2:])
        return
    if sys.argv[1:2] == ["timezones"]:
        from bench.timezones import main as timezones

        timezones(sys.argv[2:])
        return
    if sys.argv[1:2] == ["servercpu"]:
        from bench.servercpu import main as servercpu

        servercpu(sys.argv[2:])
        return
    if sys.argv[1:2] == ["workercpu"]:
        from bench.workercpu import main as workercpu

        dummy_aws_environment()
        workercpu(sys.argv[2:])
        return
    if sys.argv[1:2] == ["costmodel"]:
        from bench.costmodel import main as costmodel

        costmodel(sys.argv[2:])
        return
    if sys.argv[1:2] == ["profile"]:
        from bench.profile import main as profile

        profile(sys.argv[2:])
        return
    if sys.argv[1:2] == ["shards"]:
        from bench.shards import main as shards

        shards(sys.argv[2:])
        return
    if sys.argv[1:2] == ["hotquota"]:
        from bench.hotquota import main as hotquota

        dummy_aws_environment()
        hotquota(sys.argv[2:])
        return
    dummy_aws_environment()
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for key, label, run in (
        ("cpu_stubbed", "1/6 CPU, stubbed", measure_cpu),
        ("units", "2/6 calls and units, moto", measure_units),
        ("latency_moto", "3/6 latency, moto", measure_latency),
        ("cold_start", "4/6 API cold start, fresh processes", measure_cold_start),
        ("synth", "5/6 cdk synth and asset sizes", measure_synth),
        ("cost_model", "6/6 request CPU on DynamoDB Local, cost model", measure_cost_model),
    ):
        print(f"bench: {label}…", file=sys.stderr, flush=True)
        results[key] = run()
    results = {"meta": _meta(time.perf_counter() - started), **results}
    markdown = render_markdown(results)
    json_path, md_path = write_results(results, markdown)
    print(markdown)
    print(f"\nwritten: {json_path}, {md_path}", file=sys.stderr)


if __name__ == "__main__":
    main()

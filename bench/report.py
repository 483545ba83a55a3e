"""The benchmark's outputs: bench/results/ledger.json and a short Markdown summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"

_CPU_ROWS = (
    ("reserve", "reserve (with_figures=False)"),
    ("commit", "commit"),
    ("bare_update_item", "bare UpdateItem"),
    ("bare_update_item_default_client", "bare UpdateItem, default boto3 client"),
    ("bare_reserve_request", "reserve's request sent bare (UpdateItem)"),
    ("bare_commit_request", "commit's request sent bare (TransactWriteItems)"),
    ("reserve_telemetry_on", "reserve, telemetry on (OpenTelemetry SDK spans + EMF)"),
    ("commit_telemetry_on", "commit, telemetry on"),
)
_UNIT_ROWS = (
    ("reserve_cold", "reserve, cold process"),
    ("reserve_first_in_item", "reserve, its counter's first hold in the item (D72 listing)"),
    ("reserve", "reserve (with_figures=False)"),
    ("reserve_with_figures", "reserve (with_figures=True)"),
    ("commit", "commit"),
    ("release", "release"),
    ("record", "direct record"),
)
_FIGURES = {"with_figures_false": "with_figures=False", "with_figures_true": "with_figures=True"}


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _num(x: float) -> str:
    return f"{x:g}"


def _cpu_section(cpu: dict[str, Any]) -> list[str]:
    ops, ratios = cpu["ops"], cpu["ratios_vs_bare_update_item"]
    rows = []
    for key, label in _CPU_ROWS:
        op = ops[key]
        r = ratios.get(key)
        rows.append(
            [
                label,
                op["cpu_mean_us"],
                op["cpu_p50_us"],
                op["wall_p50_us"],
                f"{r['cpu_mean']} / {r['cpu_p50']}" if r else "1",
            ]
        )
    own = cpu["ledger_own_cpu_p50_us"]
    requests = cpu["requests"]
    return [
        f"## 1. Warm CPU per call, DynamoDB stubbed ({cpu['iterations']} calls each, "
        f"{cpu['warmup']} warm-up)",
        "",
        *_table(
            ["call", "CPU mean µs", "CPU p50 µs", "wall p50 µs", "× bare UpdateItem (mean / p50)"],
            rows,
        ),
        "",
        f"Ledger's own CPU (p50 minus the same request sent bare): reserve {own['reserve']} µs "
        f"({requests['reserve']}), commit {own['commit']} µs ({requests['commit']}).",
        "Stubbed calls pay botocore's validation, endpoint resolution and serialization; "
        "no signing, HTTP or response parsing. The ledger's client turns botocore's client-side "
        "parameter validation off; a plain `boto3.client('dynamodb')` keeps it on.",
        "",
        "Against a plain default-config client's UpdateItem (the mission's 'bare update_item'): "
        f"reserve × {cpu['ratios_vs_default_client_update_item']['reserve']}, "
        f"commit × {cpu['ratios_vs_default_client_update_item']['commit']} (CPU p50).",
        "",
        "Tracing and metrics on (SDK spans recorded, EMF collected) cost, at CPU p50: reserve "
        f"+{cpu['telemetry_overhead_cpu_p50_us']['reserve']} µs, commit "
        f"+{cpu['telemetry_overhead_cpu_p50_us']['commit']} µs (the rows above are with the "
        "no-op tracer and EMF off).",
        "",
    ]


def _units_section(units: dict[str, Any]) -> list[str]:
    prices = units["prices_usd_per_million"]
    lines = [
        "## 2. DynamoDB calls and request units (moto, warm; documented on-demand rules)",
        "",
        f"Prices per million: WRU ${prices['wru']}, RRU ${prices['rru']}, API Gateway HTTP API "
        f"request ${prices['api_gateway_http_api_request']} (2 per guarded call). "
        + " ".join(units["notes"]),
        "",
    ]
    for name, scenario in units["scenarios"].items():
        rows = []
        for key, label in _UNIT_ROWS:
            op = scenario["ops"][key]
            rows.append(
                [
                    label,
                    op["calls"],
                    " + ".join(op["operations"]),
                    f"{_num(op['wru'])} ({_num(op['gsi_wru'])} GSI)",
                    _num(op["rru"]),
                    op["max_item_bytes"],
                ]
            )
        lines += [
            f"### {name}: {scenario['description']}",
            "",
            *_table(["call", "calls", "operations", "WRU", "RRU", "largest item B"], rows),
            "",
        ]
        for figures, g in scenario["guarded_call"].items():
            c = g["cost_per_million_usd"]
            lines.append(
                f"- guarded call (reserve {_FIGURES[figures]} + commit): {g['calls']} calls, "
                f"{_num(g['wru'])} WRU + {_num(g['rru'])} RRU → per million: "
                f"${c['dynamodb_wru_usd']:g} + ${c['dynamodb_rru_usd']:g} DynamoDB "
                f"+ ${c['api_gateway_usd']:g} API Gateway = **${c['total_usd']:g}**"
            )
        lines.append("")
    return lines


def _latency_section(latency: dict[str, Any]) -> list[str]:
    ops, ratios = latency["ops"], latency["ratios_vs_bare_update_item"]
    rows = []
    for key, label in (
        ("reserve", "reserve (with_figures=False)"),
        ("commit", "commit"),
        ("bare_update_item", "bare UpdateItem"),
    ):
        op, r = ops[key], ratios.get(key)
        rows.append(
            [
                label,
                round(op["p50_us"] / 1000, 2),
                round(op["p95_us"] / 1000, 2),
                round(op["p99_us"] / 1000, 2),
                f"{r['p50']} / {r['p95']} / {r['p99']}" if r else "1",
            ]
        )
    probe = latency["moto_growth_probe"]
    return [
        f"## 3. Latency on moto in-process, context only ({latency['operations']} of each)",
        "",
        *_table(["call", "p50 ms", "p95 ms", "p99 ms", "× bare (p50 / p95 / p99)"], rows),
        "",
        f"Table kept at {latency['table_items_during_run']} items (no stream; each record "
        "deleted, untimed): moto's TransactWriteItems deep-copies the whole table once per "
        "action (and keeps every copy alive), so its latency grows with the table. "
        f"With {probe['extra_items']} more items, reserve p50 = "
        f"{round(probe['reserve_p50_us'] / 1000, 2)} ms.",
        "",
    ]


def _cold_start_section(cold: dict[str, Any]) -> list[str]:
    return [
        "",
        f"## 4. API cold start, fresh interpreter (median of {cold['runs']})",
        "",
        *_table(
            ["process", "ms", "ratio"],
            [
                ["import boto3; boto3.client('dynamodb')", cold["bare_ms"], 1],
                [
                    "import API handler + GET /v1/health + ledger client",
                    cold["ours_ms"],
                    cold["ratio"],
                ],
            ],
        ),
        "",
        f"{cold['note']}.",
    ]


def _synth_section(synth: dict[str, Any]) -> list[str]:
    if "skipped" in synth:
        return ["", "## 5. cdk synth", "", f"skipped: {synth['skipped']}"]
    rows = [
        [name, a["files"], a["unzipped_mib"], a["zipped_mib"]]
        for name, a in synth["assets"].items()
    ]
    return [
        "",
        "## 5. `cdk synth` (arm64 assets built without Docker) and asset sizes",
        "",
        f"Synth from an empty output directory: {synth['synth_cold_s']} s; again: "
        f"{synth['synth_warm_s']} s.",
        "",
        *_table(["function", "files", "unzipped MiB", "zipped MiB"], rows),
    ]


def _cost_model_section(cost: dict[str, Any]) -> list[str]:
    from bench.costmodel import render

    body = render(cost).splitlines()[2:]  # its own title and date line are this file's
    return ["", "## 6. Request CPU on DynamoDB Local and the cost model", *body]


def _targets_section(results: dict[str, Any]) -> list[str]:
    """Issue 22's targets, each with the figure this run measured."""
    cpu, units, cold = results["cpu_stubbed"], results["units"], results["cold_start"]
    cost = results["cost_model"]
    default = units["scenarios"]["default"]
    ops, guarded = default["ops"], default["guarded_call"]["with_figures_false"]
    stubbed = cpu["ratios_vs_default_client_update_item"]
    chosen = cost["projection"]["chosen"]
    rows = [
        [
            "server CPU per guarded call ÷ one bare UpdateItem (in-process, handler on "
            "DynamoDB Local; the runner's form: `python -m bench servercpu`)",
            "≤ 2.5",
            cost["server_cpu_over_floor"],
        ],
        [
            "stubbed reserve / commit CPU ÷ a default-client update_item",
            "≤ 2 / ≤ 2",
            f"{stubbed['reserve']} / {stubbed['commit']}",
        ],
        [
            "DynamoDB calls: reserve with figures / commit",
            "1 / 1",
            f"{ops['reserve_with_figures']['calls']} / {ops['commit']['calls']}",
        ],
        ["WRU per guarded call, default quotas", "≤ 10", guarded["wru"]],
        [
            f"USD per million guarded calls all-in, API at {chosen['memory_mb']} MB",
            "≤ 8",
            chosen["cost_per_million_usd"]["total_usd"],
        ],
        ["cold start ÷ a bare boto3.client('dynamodb')", "≤ 2", cold["ratio"]],
        [
            f"projected AWS p50 of reserve, {chosen['memory_mb']} MB (parts in section 6)",
            "≤ 20 ms",
            chosen["reserve_p50_ms"]["total_ms"],
        ],
    ]
    return [
        "",
        "## Targets (issue 22), this run",
        "",
        *_table(["target", "goal", "measured"], rows),
    ]


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Ledger benchmark",
        "",
        f"{meta['finished_at']} · Python {meta['python']} · boto3 {meta['boto3']} · "
        f"botocore {meta['botocore']} · moto {meta['moto']} · {meta['platform']} · "
        f"{meta['cpus']} CPUs · {meta['seconds']} s",
        "",
        *_cpu_section(results["cpu_stubbed"]),
        *_units_section(results["units"]),
        *_latency_section(results["latency_moto"]),
        *_cold_start_section(results["cold_start"]),
        *_synth_section(results["synth"]),
        *(_cost_model_section(results["cost_model"]) if "cost_model" in results else []),
        *(_targets_section(results) if "cost_model" in results else []),
    ]
    return "\n".join(lines)


def write_results(results: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS_DIR / "ledger.json", RESULTS_DIR / "ledger.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path.write_text(markdown + "\n")
    return json_path, md_path

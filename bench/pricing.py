"""`python -m bench pricing`: what the large generated catalog costs a cold start, against the
52-entry hand-kept catalog it replaced (kept as bench/fixtures/catalog-2026-11-25.json).

Each figure comes from a fresh interpreter (nothing cached): the time from `import
costguard.pricing` done to the first priced usage (catalog read + index + one schedule built +
one cost), the same with the whole catalog parsed and every schedule built (what loading it
eagerly would cost), the import itself, and the memory the catalog holds (tracemalloc) and the
process's peak RSS. Medians of several runs. Writes bench/results/pricing.{json,md}.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OLD = ROOT / "bench" / "fixtures" / "catalog-2026-11-25.json"
NEW = ROOT / "shared" / "costguard" / "pricing" / "catalog.json"

PROBE = """
import json, resource, sys, time, tracemalloc
from datetime import datetime, UTC
started = time.perf_counter()
import costguard.pricing as pricing
from costguard.models import Usage
imported = time.perf_counter()
path, mode, traced = sys.argv[1], sys.argv[2], sys.argv[3] == "memory"
# the usage (and pydantic's validator for it) before the clock: every catalog pays that alike
usage = Usage(resource="llm", model="gpt-4o", input_tokens=1000, output_tokens=500)
at = datetime(2026, 11, 25, tzinfo=UTC)
if traced:  # tracing slows every allocation: memory and time come from separate runs
    tracemalloc.start()
t0 = time.perf_counter()
text = open(path, encoding="utf-8").read()
catalog = pricing.Catalog.from_text(text) if mode == "lazy" else pricing.Catalog(json.loads(text))
book = pricing.PriceBook(catalog=catalog)
if mode == "eager":
    book.models()
cost, _ = book.cost(usage, at)
first = time.perf_counter()
current, peak = tracemalloc.get_traced_memory()
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "first_price_ms": (first - t0) * 1000,
    "catalog_kib": current / 1024,
    "catalog_peak_kib": peak / 1024,
    "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "models": len(catalog.raw),
    "cost": str(cost),
}))
"""


def _probe(path: Path, mode: str, what: str = "time") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), mode, what],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(out))


def measure(runs: int = 9) -> dict[str, Any]:
    cases = {
        "old_52": (OLD, "eager"),
        "new_lazy": (NEW, "lazy"),
        "new_eager": (NEW, "eager"),
    }
    for path, mode in cases.values():
        _probe(path, mode)  # bytecode caches first, as a deployed package has them
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for _ in range(runs):  # interleaved, so a busy machine hurts every case alike
        for name, (path, mode) in cases.items():
            samples[name].append(_probe(path, mode))
    out: dict[str, Any] = {}
    for name, rows in samples.items():
        memory = _probe(*cases[name], "memory")
        out[name] = {
            key: round(statistics.median(r[key] for r in rows), 2)
            for key in ("import_ms", "first_price_ms", "max_rss_mib")
        } | {
            "catalog_kib": round(memory["catalog_kib"]),
            "catalog_peak_kib": round(memory["catalog_peak_kib"]),
            "models": rows[0]["models"],
            "cost": rows[0]["cost"],
        }
    out["file_bytes"] = {"old_52": OLD.stat().st_size, "new": NEW.stat().st_size}
    out["runs"] = runs
    return out


def render(results: dict[str, Any]) -> str:
    lines = [
        "# The price catalog at cold start (`python -m bench pricing`)",
        "",
        f"{results['meta']['finished_at']}, Python {results['meta']['python']}, "
        f"{results['runs']} fresh interpreters per case (medians), interleaved; "
        f"{results['meta']['cpus']} CPUs at load average {results['meta']['load_average_before'][0]} "
        "(a shared machine: absolute times are inflated, the ratios hold).",
        "",
        "| catalog | models | file (KiB) | first priced usage (ms) | catalog memory (KiB) | peak during load (KiB) | process max RSS (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label, size in (
        ("old_52", "hand-kept (before), parsed whole", results["file_bytes"]["old_52"]),
        ("new_lazy", "generated, lazy index (shipped)", results["file_bytes"]["new"]),
        (
            "new_eager",
            "generated, parsed whole + every schedule built",
            results["file_bytes"]["new"],
        ),
    ):
        r = results[name]
        lines.append(
            f"| {label} | {r['models']} | {size / 1024:.0f} | {r['first_price_ms']} | "
            f"{r['catalog_kib']:.0f} | {r['catalog_peak_kib']:.0f} | {r['max_rss_mib']:.1f} |"
        )
    lines += [
        "",
        "First priced usage: reading the file, indexing it, building the schedule of the one "
        "model asked for and pricing one usage, after `import costguard.pricing` "
        f"(itself {results['new_lazy']['import_ms']} ms). The catalog is read once per process "
        "(`shipped_catalog()` is cached) and each model's schedule is built when first priced.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    import os
    import platform

    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 9
    results = {
        "meta": {
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
        },
        **measure(runs),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pricing.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (RESULTS / "pricing.md").write_text(markdown)
    print(markdown)

"""`python -m bench timezones`: what a tenant's zone costs the request path (seconds).

The Python work that depends on the zone, timed in interleaved rounds for a UTC tenant and a
Los Angeles one, with the default seeds (llm, sandbox and all a month) plus a day quota:
- reserve's keys: `slot_for` for each quota and the reservation id (`ReservationRef.build`);
- commit's keys: `ReservationRef.parse` of the id and its `slots` (the settle path reads
  nothing else);
- figures: `period_end` and `seconds_until_reset` (a 429's `resets_at` and `Retry-After`).
And the first use of a zone in a fresh process (loading its file; the tzdata package).
Writes bench/results/timezones.json and .md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costguard.ledger.terms import ReservationRef, slot_for
from costguard.periods import Period, period_end, seconds_until_reset, zone
from costguard.quotas import QuotaDefinition, QuotaId, Resource
from ulid import ULID

from bench.common import percentiles_us, time_interleaved
from bench.report import RESULTS_DIR

QUOTAS = [
    QuotaDefinition(QuotaId.parse(q), Decimal(100))
    for q in ("tenant:llm:month", "tenant:sandbox:month", "tenant:all:month", "tenant:llm:day")
]
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ROUNDS = 20_000


def _ops(tz: str) -> dict[str, Any]:
    ulid = ULID.from_datetime(AT)
    rid = ReservationRef.build(ulid, Resource.LLM, Decimal("0.5"), QUOTAS, "u-1", tz).reservation_id
    info = zone(tz)

    def reserve_keys(_: int) -> object:
        slots = [slot_for(q.quota_id, "acme", AT, tz) for q in QUOTAS]
        return slots, ReservationRef.build(ulid, Resource.LLM, Decimal("0.5"), QUOTAS, "u-1", tz)

    def commit_keys(_: int) -> object:
        return ReservationRef.parse(rid).slots("acme")

    def figures(_: int) -> object:
        return period_end(Period.DAY, AT, info), seconds_until_reset(Period.DAY, AT, info)

    return {f"reserve_keys_{tz}": reserve_keys, f"commit_keys_{tz}": commit_keys,
            f"figures_{tz}": figures}  # fmt: skip


def _first_use_ms() -> float:
    code = (
        "import time; from costguard.periods import zone; t = time.perf_counter(); "
        "zone('America/Los_Angeles'); print((time.perf_counter() - t) * 1000)"
    )
    runs = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(5)]
    return round(sorted(runs)[2], 3)


def main(argv: list[str]) -> None:
    rounds = int(argv[0]) if argv else ROUNDS
    ops = {**_ops("UTC"), **_ops("America/Los_Angeles")}
    samples = time_interleaved(rounds, ops)
    cpu = {name: percentiles_us(s.cpu_ns) for name, s in samples.items()}
    results = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": rounds,
        "cpu_us": cpu,
        "first_zone_use_ms_median_of_5": _first_use_ms(),
    }
    lines = [
        "# What a tenant's time zone costs the request path",
        "",
        f"{results['finished_at']}, {rounds} interleaved rounds, CPU µs per call "
        "(`python -m bench timezones`).",
        "",
        "| work | UTC p50 | Los Angeles p50 | UTC p95 | Los Angeles p95 |",
        "|---|---|---|---|---|",
    ]
    for work in ("reserve_keys", "commit_keys", "figures"):
        utc, la = cpu[f"{work}_UTC"], cpu[f"{work}_America/Los_Angeles"]
        lines.append(
            f"| {work} | {utc['p50_us']} | {la['p50_us']} | {utc['p95_us']} | {la['p95_us']} |"
        )
    lines += [
        "",
        "First use of a zone in a fresh process (loading its file): "
        f"{results['first_zone_use_ms_median_of_5']} ms (median of 5).",
    ]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "timezones.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS_DIR / "timezones.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

"""`python -m bench.recommendations`: CPU of the recommendation analysis per tenant.

The analysis reads at most `max_records` (20,000) settled records of a tenant's window; this
measures the pure computation (the five kinds) on synthetic records of 1,000 to 20,000, with
the catalog's prices and no DynamoDB (its reads are priced separately below). Writes
bench/results/recommendations.{json,md}.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from costguard.pricing import PriceBook, load_catalog
from costguard.recommendations import (
    RecommendationRules,
    Window,
    output_caps,
    prompt_caching,
    right_sizing,
    sandbox_time,
)
from costguard.store.items import CostRecordItem

RESULTS = Path(__file__).parent / "results"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
GPT4O = {
    "input_per_million_usd": "2.50",
    "output_per_million_usd": "10.00",
    "cached_input_per_million_usd": "1.25",
}


class StubLedger:
    """What the analysis asks of the ledger besides records: prices and the quota list."""

    def __init__(self) -> None:
        self.book = PriceBook(load_catalog())

    def price_book(self) -> PriceBook:
        return self.book

    def quotas(self, tenant_id: str) -> list[Any]:
        return []


def records(n: int) -> list[CostRecordItem]:
    """A tenant's month: 60 % chat turns (conversations of 6), 30 % reserved-and-committed
    calls, 10 % sandbox sessions."""
    out: list[CostRecordItem] = []
    for i in range(n):
        at = NOW - timedelta(seconds=(n - i) * (30 * 86400 // n))
        base: dict[str, Any] = {
            "sk": f"{i:026d}",
            "tenant_id": "t",
            "plan": "-",
            "created_at": at.isoformat().replace("+00:00", "Z"),
            "recorded_at": (at + timedelta(seconds=3)).isoformat().replace("+00:00", "Z"),
        }
        kind = i % 10
        if kind < 6:
            turn = i % 6
            cost = (Decimal(2000 * (turn + 1)) * Decimal("2.5") + 120 * 10) / 1_000_000
            base |= {
                "status": "recorded", "resource": "llm", "provider": "openai", "model": "gpt-4o",
                "input_tokens": 2000 * (turn + 1), "output_tokens": 120, "cached_input_tokens": 0,
                "conversation_id": f"c-{i // 6}", "cost_usd": cost, "price": GPT4O,
            }  # fmt: skip
        elif kind < 9:
            base |= {
                "status": "committed", "resource": "llm", "provider": "anthropic",
                "model": "claude-sonnet-4-5", "input_tokens": 3000, "output_tokens": 400,
                "estimate_usd": Decimal("0.25"), "cost_usd": Decimal("0.015"),
                "price": {"input_per_million_usd": "3", "output_per_million_usd": "15",
                          "cached_input_per_million_usd": "0.30"},
            }  # fmt: skip
        else:
            base |= {
                "status": "recorded", "resource": "sandbox", "tier": "standard",
                "seconds": Decimal(600 + (i % 7) * 900), "cost_usd": Decimal("0.1"),
                "price": {"per_second_usd": "0.000037"},
            }  # fmt: skip
        out.append(CostRecordItem.from_item(base))
    return out


def measure(n: int, repeats: int = 5) -> dict[str, Any]:
    rules = RecommendationRules()
    ledger = StubLedger()
    window = Window(NOW - timedelta(days=30), NOW, 30, records(n))
    times = []
    found = 0
    for _ in range(repeats):
        started = time.process_time()
        recs = [
            *right_sizing(ledger, window, rules),  # type: ignore[arg-type]
            *prompt_caching(window, rules),
            *output_caps(ledger, "t", window, rules),  # type: ignore[arg-type]
            *sandbox_time(ledger, window, rules),  # type: ignore[arg-type]
        ]
        times.append(time.process_time() - started)
        found = len(recs)
    # Reading them: ~0.6 KB a record, eventually consistent Query = 0.5 RRU per 4 KB
    rru = n * 0.6 / 4 * 0.5
    return {
        "records": n,
        "cpu_ms_median": round(statistics.median(times) * 1000, 1),
        "recommendations": found,
        "read_request_units": round(rru),
        "read_usd": round(rru * 0.125 / 1_000_000, 7),
    }


def main() -> None:
    rows = [measure(n) for n in (1_000, 5_000, 20_000)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recommendations.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# Recommendations: CPU per tenant (python -m bench.recommendations)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on this machine (shared, 2 cores), "
        "process CPU time, median of 5; the four record-based kinds (quota_limits reads "
        "counters, not records). Read cost at on-demand list price ($0.125 per million RRU), "
        "records of ~0.6 KB. Not included: DynamoDB paging and deserializing the items.",
        "",
        "| records | CPU ms | recommendations | RRU to read | USD to read |",
        "|---|---|---|---|---|",
        *(
            f"| {r['records']:,} | {r['cpu_ms_median']} | {r['recommendations']} | "
            f"{r['read_request_units']:,} | {r['read_usd']:.7f} |"
            for r in rows
        ),
        "",
    ]
    (RESULTS / "recommendations.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

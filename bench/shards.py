"""`python -m bench shards`: the hot-quota sharding design of docs/data-model.md, simulated.

One DynamoDB item takes ~1,000 WRU/s, so a quota item written in every 2-item transaction caps
near 500 transactions/s (FACTS). The design: split the quota into N shard items of limit/N
each; a reserve picks a shard at random and tries one more on refusal; a rebalancer moves
unused allowance between shards with the same kind of conditional transaction. The shards'
limits sum to the limit, so no combination of grants can overspend; what sharding costs is
*false refusals* (one shard is empty while the quota as a whole is not), which the second try
and the rebalancer reduce. This simulates both effects, without AWS:

1. capacity: reserves per second spread over N shards, each item serving at most 500
   transactions/s; the busiest shard decides what is throttled;
2. exhaustion: random-sized reserves until the quota is spent; granted total (never above
   the limit), and the share of the limit in use at the first false refusal.
Writes bench/results/shards.json and shards.md.
"""

from __future__ import annotations

import json
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

PER_ITEM_TPS = 500
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def capacity(shards: int, rate: int, seconds: int, rng: random.Random) -> dict[str, Any]:
    """Reserves arriving at `rate`/s, each on a random shard: the fraction served."""
    served = offered = 0
    for _ in range(seconds):
        load = [0] * shards
        for _ in range(rate):
            load[rng.randrange(shards)] += 1
        offered += rate
        served += sum(min(n, PER_ITEM_TPS) for n in load)
    return {"shards": shards, "rate": rate, "served_share": round(served / offered, 4)}


def exhaust(shards: int, rebalance: bool, rng: random.Random) -> dict[str, Any]:
    """Spend a $10,000 quota with $0.01-$5 reserves; every grant is a conditional decrement
    of one shard's `avail`, as in DynamoDB."""
    limit = Decimal(10_000)
    avail = [limit / shards] * shards
    granted = Decimal(0)
    first_false: Decimal | None = None
    false_refusals = requests = 0
    while True:
        amount = Decimal(rng.randint(1, 500)) / 100
        requests += 1
        tries = rng.sample(range(shards), k=min(2, shards))
        for s in tries:
            if avail[s] >= amount:
                avail[s] -= amount
                granted += amount
                break
        else:
            remaining = limit - granted
            if remaining < amount:
                break  # a true refusal: the quota as a whole is spent
            if rebalance:
                # The refused reserve moves half of the richest shard's allowance to the shard
                # it tried, and takes its amount there, in one conditional transaction on the
                # two shard items: the sum of the shards' limits is unchanged.
                rich = max(range(shards), key=lambda i: avail[i])
                moved = avail[rich] / 2
                if avail[tries[0]] + moved >= amount:
                    avail[rich] -= moved
                    avail[tries[0]] += moved - amount
                    granted += amount
                    continue
            false_refusals += 1
            if first_false is None:
                first_false = granted / limit
            if false_refusals > 10_000:
                break
    assert granted <= limit
    return {
        "shards": shards,
        "rebalance": rebalance,
        "requests": requests,
        "granted_share": round(float(granted / limit), 4),
        "never_over_limit": granted <= limit,
        "first_false_refusal_at": round(float(first_false), 4) if first_false else None,
        "false_refusals": false_refusals,
    }


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def main(argv: list[str] | None = None) -> None:
    _ = argv
    rng = random.Random(2026)
    caps = [
        capacity(n, rate, 20, rng)
        for n in (1, 4, 16)
        for rate in (400, 1_000, 2_000, 4_000, 8_000)
        if rate <= n * PER_ITEM_TPS or n == 1
    ]
    runs = [exhaust(n, rb, rng) for n in (1, 4, 16) for rb in (False, True)]
    results = {"per_item_tps": PER_ITEM_TPS, "capacity": caps, "exhaustion": runs}
    lines = [
        "# Hot quota sharding, simulated (`python -m bench shards`)",
        "",
        f"Each shard item serves at most {PER_ITEM_TPS} transactions/s (FACTS).",
        "",
        "| shards | offered reserves/s | served share |",
        "|---|---|---|",
        *[f"| {c['shards']} | {c['rate']} | {c['served_share']:.1%} |" for c in caps],
        "",
        "Spending a $10,000 quota with random $0.01–$5 reserves, a second shard tried on refusal:",
        "",
        "| shards | rebalancer | granted share of the limit | never over | first false refusal at | false refusals |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['shards']} | {'yes' if r['rebalance'] else 'no'} | {r['granted_share']:.2%} | "
            f"{r['never_over_limit']} | "
            f"{_share(r['first_false_refusal_at'])} "
            f"| {r['false_refusals']} |"
            for r in runs
        ],
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shards.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "shards.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"written: {RESULTS / 'shards.json'}, shards.md", file=sys.stderr)


if __name__ == "__main__":
    main()

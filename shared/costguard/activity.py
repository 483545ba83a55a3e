"""Which tenants spent on a day, and a tenant's day rollups as a gap-free series.

The first spend of a tenant's day writes `gsi2pk = ACTIVE#<day>#<shard>`, `gsi2sk = <tenant>`
on its day rollup (`costguard.ledger.spend_writes.roll_up`), so the sparse, keys-only `active`
index lists exactly the tenants with spend that day, in `ACTIVE_SHARDS` partitions. The schedules read it page
by page; nothing scans the table or reads a cost record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from costguard.money import ZERO
from costguard.store.dynamo import LedgerTable
from costguard.store.keys import ACTIVE_SHARDS, active_pk, day_of
from costguard.store.schema import ACTIVE_INDEX, ACTIVE_PK, ACTIVE_SK

PAGE = 1000


def active_tenants(table: LedgerTable, days: Iterable[date], page: int = PAGE) -> list[str]:
    """Every tenant with spend on one of `days`, sorted, each once."""
    found: set[str] = set()
    for day in days:
        for shard in range(ACTIVE_SHARDS):
            start: dict[str, Any] | None = None
            while True:
                items, start = table.query(
                    f"{ACTIVE_PK} = :p",
                    {":p": active_pk(day.isoformat(), shard)},
                    index=ACTIVE_INDEX,
                    limit=page,
                    start_key=start,
                )
                found.update(str(i[ACTIVE_SK]) for i in items)
                if start is None:
                    break
    return sorted(found)


def by_day(items: Iterable[dict[str, Any]]) -> dict[date, dict[str, Any]]:
    """Day rollup items keyed by their day."""
    return {date.fromisoformat(day_of(i["sk"])): i for i in items}


def series(
    days: dict[date, dict[str, Any]], attribute: str, first: date, last: date
) -> list[tuple[date, Decimal]]:
    """(day, amount) for every day from `first` to `last`: a day without spend is zero."""
    out = []
    day = first
    while day <= last:
        out.append((day, Decimal(days.get(day, {}).get(attribute, ZERO))))
        day += timedelta(days=1)
    return out


def first_spend(days: dict[date, dict[str, Any]]) -> date | None:
    spent = [d for d, item in days.items() if item.get("usd_all", ZERO) > 0]
    return min(spent) if spent else None

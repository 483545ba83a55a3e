"""The read side: cost records (held, settled, recorded) and a tenant's day rollups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ulid import ULID

from costguard.errors import LedgerCorrupted
from costguard.models import CostRecord
from costguard.money import ZERO
from costguard.store.codec import opt_int, parse_iso
from costguard.store.dynamo import LedgerTable
from costguard.store.keys import day_sk, records_pk, tenant_pk


def record_id_bounds(first: datetime, last: datetime) -> tuple[str, str]:
    """The least and greatest record id (a ULID) created between `first` and `last`.

    ULIDs count milliseconds from 1970: an earlier day is clamped to the epoch, not overflowed.
    """
    low = str(ULID.from_timestamp(max(first.timestamp(), 0)))[:10] + "0" * 16
    high = str(ULID.from_timestamp(max(last.timestamp(), 0)))[:10] + "Z" * 16
    return low, high


def cost_record(item: dict[str, Any]) -> CostRecord:
    """A record item as the API shows it; a malformed item is a corrupted ledger."""
    try:
        status = item["status"]
        reservation_id = None
        if status == "committed":
            reservation_id = f"{item['sk']}~{item['plan']}"
        return CostRecord(
            record_id=item["sk"],
            tenant_id=item["tenant_id"],
            reservation_id=reservation_id,
            status=status,
            resource=item["resource"],
            cost_usd=item["cost_usd"],
            estimated_usd=item.get("estimate_usd"),
            overrun=bool(item.get("overrun", False)),
            overrun_usd=item.get("overrun_usd", ZERO),
            usage_unknown=bool(item.get("usage_unknown", False)),
            settled_by=item.get("settled_by"),
            actual_usd=item.get("actual_usd"),
            provider=item.get("provider"),
            model=item.get("model"),
            tier=item.get("tier"),
            input_tokens=opt_int(item.get("input_tokens")),
            output_tokens=opt_int(item.get("output_tokens")),
            cached_input_tokens=opt_int(item.get("cached_input_tokens")),
            cache_write_input_tokens=opt_int(item.get("cache_write_input_tokens")),
            cache_write_1h_input_tokens=opt_int(item.get("cache_write_1h_input_tokens")),
            reasoning_tokens=opt_int(item.get("reasoning_tokens")),
            service_tier=item.get("service_tier"),
            seconds=item.get("seconds"),
            price=item.get("price"),
            user_id=item.get("user_id"),
            conversation_id=item.get("conversation_id"),
            task_id=item.get("task_id"),
            operation=item.get("operation"),
            metadata=item.get("metadata"),
            occurred_at=parse_iso(item["created_at"]),
            recorded_at=parse_iso(item["recorded_at"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise LedgerCorrupted(f"cost record {item.get('sk')} is malformed") from exc


def daily_rollups(
    table: LedgerTable, tenant_id: str, first: datetime, last: datetime
) -> list[dict[str, Any]]:
    """The tenant's day items from `first` to `last` (inclusive days)."""
    return table.query_all(
        "pk = :p AND sk BETWEEN :a AND :b",
        {
            ":p": tenant_pk(tenant_id),
            ":a": day_sk(first),
            ":b": day_sk(last),
        },
    )


def records(
    table: LedgerTable, tenant_id: str, first: datetime, last: datetime
) -> list[dict[str, Any]]:
    """Every record (held, settled or recorded) created between `first` and `last`."""
    low, high = record_id_bounds(first, last)
    return table.query_all(
        "pk = :p AND sk BETWEEN :a AND :b",
        {":p": records_pk(tenant_id), ":a": low, ":b": high},
        consistent=True,
    )


def settled_records(
    table: LedgerTable,
    tenant_id: str,
    first: datetime,
    last: datetime,
    *,
    limit: int,
    after: str | None = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
    max_pages: int = 8,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` committed or recorded cost records, oldest first, after record `after`.

    Returns the records and the record id to continue after (None at the end). Reads at
    most `max_pages` pages so that a sparse filter cannot make one request unbounded.
    """
    low, high = record_id_bounds(first, last)
    filters = ["#st IN (:c, :r)"]
    values: dict[str, Any] = {
        ":p": records_pk(tenant_id),
        ":a": low,
        ":b": high,
        ":c": "committed",
        ":r": "recorded",
    }
    if user_id is not None:
        filters.append("user_id = :u")
        values[":u"] = user_id
    if conversation_id is not None:
        filters.append("conversation_id = :cv")
        values[":cv"] = conversation_id
    if after is not None and after >= high:
        return [], None  # nothing in the range comes after it
    # DynamoDB refuses a start key outside the key condition's range (a ValidationException,
    # which was a 500): a cursor before the range starts the range.
    start = (
        {"pk": {"S": records_pk(tenant_id)}, "sk": {"S": after}}
        if after is not None and after >= low
        else None
    )
    found: list[dict[str, Any]] = []
    for _ in range(max_pages):
        page, last_key = table.query(
            "pk = :p AND sk BETWEEN :a AND :b",
            values,
            limit=limit - len(found),
            start_key=start,
            filter_expression=" AND ".join(filters),
            names={"#st": "status"},
        )
        found.extend(page)
        if last_key is None:
            return found, None
        start = last_key
        if len(found) >= limit:
            break
    return found, str(start["sk"]["S"]) if start else None

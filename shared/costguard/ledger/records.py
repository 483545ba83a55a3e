"""The read side: cost records (held, settled, recorded) and a tenant's day rollups."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ulid import ULID

from costguard.errors import LedgerCorrupted
from costguard.models import CostRecord
from costguard.money import ZERO
from costguard.store.dynamo import LedgerTable
from costguard.store.items import CostRecordItem, DayRollup
from costguard.store.keys import day_sk, records_pk, tenant_pk


def record_id_bounds(first: datetime, last: datetime) -> tuple[str, str]:
    """The least and greatest record id (a ULID) created between `first` and `last`.

    ULIDs count milliseconds from 1970: an earlier day is clamped to the epoch, not overflowed.
    """
    low = str(ULID.from_timestamp(max(first.timestamp(), 0)))[:10] + "0" * 16
    high = str(ULID.from_timestamp(max(last.timestamp(), 0)))[:10] + "Z" * 16
    return low, high


def api_record(record: CostRecordItem) -> CostRecord:
    """A record as the API shows it; a record that cannot be shown is a corrupted ledger."""
    if record.cost_usd is None or record.recorded_at is None:
        raise LedgerCorrupted(f"cost record {record.record_id} is not settled")
    try:
        return CostRecord(
            record_id=record.record_id,
            tenant_id=record.tenant_id,
            reservation_id=record.reservation_id if record.status == "committed" else None,
            status=record.status,
            resource=record.resource,
            cost_usd=record.cost_usd,
            estimated_usd=record.estimate_usd,
            overrun=bool(record.overrun),
            overrun_usd=record.overrun_usd or ZERO,
            usage_unknown=bool(record.usage_unknown),
            settled_by=record.settled_by,
            actual_usd=record.actual_usd,
            provider=record.provider,
            model=record.model,
            tier=record.tier,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cached_input_tokens=record.cached_input_tokens,
            cache_write_input_tokens=record.cache_write_input_tokens,
            cache_write_1h_input_tokens=record.cache_write_1h_input_tokens,
            reasoning_tokens=record.reasoning_tokens,
            service_tier=record.service_tier,
            seconds=record.seconds,
            price=record.price,
            user_id=record.user_id,
            conversation_id=record.conversation_id,
            task_id=record.task_id,
            operation=record.operation,
            metadata=record.metadata,
            occurred_at=record.created_at,
            recorded_at=record.recorded_at,
        )
    except ValueError as exc:  # pydantic's: a status or value the API cannot show
        raise LedgerCorrupted(f"cost record {record.record_id} is malformed") from exc


def cost_record(item: Mapping[str, Any]) -> CostRecord:
    """A record item as the API shows it (what the spend engine answers with)."""
    return api_record(CostRecordItem.from_item(item))


def daily_rollups(
    table: LedgerTable, tenant_id: str, first: datetime, last: datetime
) -> list[DayRollup]:
    """The tenant's day rollups from `first` to `last` (inclusive days)."""
    items = table.query_all(
        "pk = :p AND sk BETWEEN :a AND :b",
        {
            ":p": tenant_pk(tenant_id),
            ":a": day_sk(first),
            ":b": day_sk(last),
        },
    )
    return [DayRollup.from_item(i) for i in items]


def records(
    table: LedgerTable, tenant_id: str, first: datetime, last: datetime
) -> list[CostRecordItem]:
    """Every record (held, settled or recorded) created between `first` and `last`."""
    low, high = record_id_bounds(first, last)
    items = table.query_all(
        "pk = :p AND sk BETWEEN :a AND :b",
        {":p": records_pk(tenant_id), ":a": low, ":b": high},
        consistent=True,
    )
    return [CostRecordItem.from_item(i) for i in items]


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
) -> tuple[list[CostRecordItem], str | None]:
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
    found: list[CostRecordItem] = []
    for _ in range(max_pages):
        page, last_key = table.query(
            "pk = :p AND sk BETWEEN :a AND :b",
            values,
            limit=limit - len(found),
            start_key=start,
            filter_expression=" AND ".join(filters),
            names={"#st": "status"},
        )
        found.extend(CostRecordItem.from_item(i) for i in page)
        if last_key is None:
            return found, None
        start = last_key
        if len(found) >= limit:
            break
    return found, str(start["sk"]["S"]) if start else None

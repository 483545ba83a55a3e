"""The read side: cost records (held, settled, recorded) and a tenant's day rollups, over
every lane of a hot tenant (D98)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ulid import ULID

from costguard.errors import LedgerCorrupted
from costguard.models import CostRecord
from costguard.money import ZERO
from costguard.store.dynamo import LedgerTable
from costguard.store.items import CostRecordItem, DayRollup, policy_of
from costguard.store.keys import POLICY_SK, day_sk, records_pk, rollup_pk, tenant_pk


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


def lanes_of(table: LedgerTable, tenant_id: str) -> int:
    """The tenant's record lanes now (D98), from its policy read consistently (1 RRU): a
    lane is named in the policy before anything is written in it, and never un-named.
    BatchGetItem, not GetItem: the scheduled functions' grant (infra/ledger.py)."""
    key = (tenant_pk(tenant_id), POLICY_SK)
    return policy_of(table.batch_get([key], consistent=True).get(key)).lanes


def daily_rollups(
    table: LedgerTable, tenant_id: str, first: datetime, last: datetime, lanes: int = 1
) -> list[DayRollup]:
    """The tenant's day rollups from `first` to `last` (inclusive days), each day summed over
    the tenant's `lanes` (D98: one query per lane)."""
    by_day: dict[date, list[DayRollup]] = {}
    for lane in range(lanes):
        items = table.query_all(
            "pk = :p AND sk BETWEEN :a AND :b",
            {
                ":p": rollup_pk(tenant_id, lane),
                ":a": day_sk(first),
                ":b": day_sk(last),
            },
        )
        for item in items:
            rollup = DayRollup.from_item(item)
            by_day.setdefault(rollup.day, []).append(rollup)
    return [DayRollup.summed(parts) for _, parts in sorted(by_day.items())]


def any_day_between(
    table: LedgerTable, tenant_id: str, first: datetime, last: datetime, lanes: int = 1
) -> bool:
    """Whether the tenant has any day item (spend or a day counter) from `first` to `last`,
    in any lane: one key-only page of one item per lane, until one is found."""
    for lane in range(lanes):
        found, _ = table.query(
            "pk = :p AND sk BETWEEN :a AND :b",
            {":p": rollup_pk(tenant_id, lane), ":a": day_sk(first), ":b": day_sk(last)},
            limit=1,
        )
        if found:
            return True
    return False


def records(
    table: LedgerTable, tenant_id: str, first: datetime, last: datetime, lanes: int = 1
) -> list[CostRecordItem]:
    """Every record (held, settled or recorded) created between `first` and `last`, oldest
    first, from every lane (D98)."""
    low, high = record_id_bounds(first, last)
    items = [
        item
        for lane in range(lanes)
        for item in table.query_all(
            "pk = :p AND sk BETWEEN :a AND :b",
            {":p": records_pk(tenant_id, lane), ":a": low, ":b": high},
            consistent=True,
        )
    ]
    items.sort(key=lambda i: str(i["sk"]))
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
    lanes: int = 1,
) -> tuple[list[CostRecordItem], str | None]:
    """Up to `limit` committed or recorded cost records, oldest first, after record `after`.

    Returns the records and the record id to continue after (None at the end). Reads at
    most `max_pages` pages (per lane) so that a sparse filter cannot make one request
    unbounded. A tenant with several lanes (D98) is read lane by lane and merged by record
    id: the cursor is still one record id, since ids are unique and every lane is in id order.
    """
    low, high = record_id_bounds(first, last)
    filters = ["#st IN (:c, :r)"]
    values: dict[str, Any] = {
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
    page = _Page(table, " AND ".join(filters), values, low, after)
    if lanes == 1:
        return page.one_lane(tenant_id, limit, max_pages)
    return page.merged(tenant_id, lanes, limit, max_pages)


@dataclass
class _Page:
    """One page of settled records: the query's filter and values, and where it starts."""

    table: LedgerTable
    filters: str
    values: dict[str, Any]
    low: str
    after: str | None

    def start(self, pk: str) -> dict[str, Any] | None:
        # DynamoDB refuses a start key outside the key condition's range (a ValidationException,
        # which was a 500): a cursor before the range starts the range.
        if self.after is not None and self.after >= self.low:
            return {"pk": {"S": pk}, "sk": {"S": self.after}}
        return None

    def query(
        self, pk: str, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        return self.table.query(
            "pk = :p AND sk BETWEEN :a AND :b",
            {**self.values, ":p": pk},
            limit=limit,
            start_key=start,
            filter_expression=self.filters,
            names={"#st": "status"},
        )

    def one_lane(
        self, tenant_id: str, limit: int, max_pages: int
    ) -> tuple[list[CostRecordItem], str | None]:
        """An unsliced tenant: its one partition, exactly as before lanes existed."""
        start = self.start(records_pk(tenant_id))
        found: list[CostRecordItem] = []
        for _ in range(max_pages):
            items, last_key = self.query(records_pk(tenant_id), limit - len(found), start)
            found.extend(CostRecordItem.from_item(i) for i in items)
            if last_key is None:
                return found, None
            start = last_key
            if len(found) >= limit:
                break
        return found, str(start["sk"]["S"]) if start else None

    def merged(
        self, tenant_id: str, lanes: int, limit: int, max_pages: int
    ) -> tuple[list[CostRecordItem], str | None]:
        """Every lane read from the cursor on and merged in record id order.

        A lane's page reads about its share of the page (records spread evenly over the
        lanes). What is known complete is everything up to the least position a lane with
        more to read stopped at: those records are answered in order, the rest are read
        again by the next page. Only lanes whose records were all answered read on."""
        share = max(1, -(-2 * limit // lanes))
        position: dict[int, dict[str, Any] | None] = {}
        waiting: dict[int, list[dict[str, Any]]] = {lane: [] for lane in range(lanes)}
        done: set[int] = set()
        found: list[dict[str, Any]] = []
        for lane in range(lanes):
            position[lane] = self.start(records_pk(tenant_id, lane))
        for _ in range(max_pages):
            for lane in range(lanes):
                if lane in done or waiting[lane]:
                    continue
                items, position[lane] = self.query(
                    records_pk(tenant_id, lane), share, position[lane]
                )
                waiting[lane].extend(items)
                if position[lane] is None:
                    done.add(lane)
            open_ends = [
                str(key["sk"]["S"]) for lane, key in position.items() if lane not in done and key
            ]
            bound = min(open_ends) if open_ends else None
            for lane, items in waiting.items():
                ready = [i for i in items if bound is None or str(i["sk"]) <= bound]
                found.extend(ready)
                waiting[lane] = items[len(ready) :]
            found.sort(key=lambda i: str(i["sk"]))
            if len(found) >= limit:
                found = found[:limit]
                return [CostRecordItem.from_item(i) for i in found], str(found[-1]["sk"])
            if bound is None:
                return [CostRecordItem.from_item(i) for i in found], None
        # Out of pages: complete up to the bound, which the next page starts after.
        return [CostRecordItem.from_item(i) for i in found], bound

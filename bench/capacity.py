"""Counting DynamoDB calls and their request units from what a client sends and receives.

The units follow DynamoDB's documented on-demand rules, applied to item sizes computed from
the real before/after images of every item a call touches (read through a second client
that is not counted):

- item size: attribute name bytes + value bytes; a number is 1 byte + 1 per 2 significant
  digits; a map/list 3 bytes + 1 per element; booleans and nulls 1 byte;
- PutItem/UpdateItem/DeleteItem: 1 WRU per KB of the larger of the before/after item;
- TransactWriteItems: 2 WRU per KB for each Put/Update/Delete, 2 RRU per 4 KB for each
  ConditionCheck (a transactional read; an absent item still costs the minimum);
- GSI: 1 WRU per KB of index entry (keys + projected attributes + 100 bytes) for each index
  entry written or deleted (an item gaining or losing `gsi1pk`/`gsi1sk` is one write), not
  doubled inside a transaction;
- GetItem/BatchGetItem: per item, 1 RRU (strongly consistent) or 0.5 (eventually consistent)
  per 4 KB, an absent item costs the minimum; Query/Scan: the same on the summed size.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from costguard.store.schema import GLOBAL_SECONDARY_INDEXES, HOLDS_PK, HOLDS_SK, PK, SK

KB = 1024
READ_UNIT = 4 * KB
GSI_OVERHEAD = 100
_INDEX_ATTRIBUTES = (
    PK,
    SK,
    HOLDS_PK,
    HOLDS_SK,
    *GLOBAL_SECONDARY_INDEXES[0]["Projection"].get("NonKeyAttributes", []),
)

Item = dict[str, Any]  # an item in DynamoDB's wire format ({"S": ...}, {"N": ...}, ...)


def value_size(value: dict[str, Any]) -> int:
    (kind, v), *_ = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = Decimal(v).normalize().as_tuple().digits
        return 1 + math.ceil(len(digits) / 2)
    if kind == "B":
        return len(base64.b64decode(v)) if isinstance(v, str) else len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: x}) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Item | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(v) for name, v in item.items())


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _in_index(item: Item | None) -> bool:
    return bool(item) and HOLDS_PK in item and HOLDS_SK in item  # type: ignore[operator]


def _index_entry(item: Item | None) -> Item:
    return {k: v for k, v in (item or {}).items() if k in _INDEX_ATTRIBUTES}


def gsi_writes(before: Item | None, after: Item | None) -> int:
    """WRU spent on the sparse `holds` index by one item going from `before` to `after`."""
    was, now = _in_index(before), _in_index(after)
    if not was and not now:
        return 0

    def entry(item: Item | None) -> int:
        return _units(item_size(_index_entry(item)) + GSI_OVERHEAD, KB)

    if was and not now:
        return entry(before)
    if now and not was:
        return entry(after)
    keys = (HOLDS_PK, HOLDS_SK)
    if any(before[k] != after[k] for k in keys):  # type: ignore[index]
        return entry(before) + entry(after)  # delete + put of the index entry
    return entry(after) if _index_entry(before) != _index_entry(after) else 0


def _key(item_or_key: Item) -> tuple[str, str]:
    return item_or_key[PK]["S"], item_or_key[SK]["S"]


@dataclass
class Call:
    """One DynamoDB call: its operation, its actions and the units they consumed."""

    operation: str
    actions: list[str] = field(default_factory=list)
    wru: float = 0
    rru: float = 0
    gsi_wru: float = 0
    max_item_bytes: int = 0


@dataclass
class _Pending:
    call: Call
    body: dict[str, Any]
    writes: list[tuple[str, tuple[str, str], Item | None]]


class CapacityMeter:
    """Counts the calls a client makes (botocore event hooks) and prices them in units."""

    def __init__(self, client: Any, reader: Any, table: str) -> None:
        self.calls: list[Call] = []
        self._reader = reader
        self._table = table
        self._pending: _Pending | None = None
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls

    def _read(self, key: tuple[str, str]) -> Item | None:
        answer = self._reader.get_item(
            TableName=self._table, Key={PK: {"S": key[0]}, SK: {"S": key[1]}}, ConsistentRead=True
        )
        item: Item | None = answer.get("Item")
        return item

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        call = Call(model.name)
        writes: list[tuple[str, tuple[str, str], Item | None]] = []
        if model.name == "TransactWriteItems":
            for action in body["TransactItems"]:
                (kind, spec), *_ = action.items()
                key = _key(spec["Item"] if kind == "Put" else spec["Key"])
                call.actions.append(kind)
                writes.append((kind, key, self._read(key)))
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            key = _key(body["Item"] if model.name == "PutItem" else body["Key"])
            call.actions.append(model.name)
            writes.append((model.name, key, self._read(key)))
        self._pending = _Pending(call, body, writes)

    def _after(self, model: Any, parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
        pending, self._pending = self._pending, None
        assert pending is not None and pending.call.operation == model.name
        call = pending.call
        if http_response.status_code < 300:
            if pending.writes:
                self._price_writes(call, pending.writes)
            else:
                self._price_reads(call, pending.body, parsed)
        self.calls.append(call)

    def _price_writes(
        self, call: Call, writes: list[tuple[str, tuple[str, str], Item | None]]
    ) -> None:
        transactional = call.operation == "TransactWriteItems"
        factor = 2 if transactional else 1
        for kind, key, before in writes:
            if kind == "ConditionCheck":
                call.rru += factor * _units(item_size(before), READ_UNIT)
                call.max_item_bytes = max(call.max_item_bytes, item_size(before))
                continue
            after = self._read(key)
            size = max(item_size(before), item_size(after))
            call.max_item_bytes = max(call.max_item_bytes, size)
            call.wru += factor * _units(size, KB)
            gsi = gsi_writes(before, after)
            call.gsi_wru += gsi
            call.wru += gsi

    def _price_reads(self, call: Call, body: dict[str, Any], parsed: dict[str, Any]) -> None:
        if call.operation == "BatchGetItem":
            for table, spec in body["RequestItems"].items():
                found = {_key(i): i for i in parsed.get("Responses", {}).get(table, [])}
                per = 1 if spec.get("ConsistentRead") else 0.5
                for key in spec["Keys"]:
                    item = found.get(_key(key))
                    call.actions.append("Get")
                    call.max_item_bytes = max(call.max_item_bytes, item_size(item))
                    call.rru += per * _units(item_size(item), READ_UNIT)
        elif call.operation == "GetItem":
            item = parsed.get("Item")
            call.actions.append("Get")
            call.max_item_bytes = item_size(item)
            call.rru += (1 if body.get("ConsistentRead") else 0.5) * _units(
                item_size(item), READ_UNIT
            )
        elif call.operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            call.actions.append(f"{call.operation}({len(items)} items)")
            per = 1 if body.get("ConsistentRead") and "IndexName" not in body else 0.5
            call.rru += per * _units(sum(item_size(i) for i in items), READ_UNIT)

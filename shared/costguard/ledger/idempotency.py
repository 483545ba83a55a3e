"""Idempotency markers: a keyed reserve or record writes a marker in the same transaction as
its effect, so a retry finds the first record (and a different body under the key is refused)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from costguard.errors import IdempotencyMismatch, LedgerCorrupted
from costguard.models import Usage
from costguard.store.dynamo import LedgerTable
from costguard.store.keys import Key, idempotency_pk, record_key
from costguard.store.schema import TTL_ATTRIBUTE
from costguard.store.writes import TransactionBuilder

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def request_hash(usage: Usage) -> str:
    """The digest of a request's body: a retry under the same key must carry the same."""
    canonical = json.dumps(usage.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def marker_key(tenant_id: str, operation: str, idempotency_key: str | None) -> Key | None:
    """Where the marker of a keyed request lives (one per tenant, operation and key)."""
    if not idempotency_key:
        return None
    digest = hashlib.sha256(f"{operation}\x1f{idempotency_key}".encode()).hexdigest()
    return idempotency_pk(tenant_id), digest


def put_marker(
    tx: TransactionBuilder, key: Key, record_id: str, digest: str, now: datetime, lane: int = 0
) -> None:
    """The marker is written in the same transaction as the effect: both or neither. It
    names the record's lane when that is not lane 0 (D98)."""
    item: dict[str, Any] = {
        "record_id": record_id,
        "request_hash": digest,
        TTL_ATTRIBUTE: int((now + IDEMPOTENCY_WINDOW).timestamp()),
    }
    if lane:
        item["lane"] = lane
    tx.put(key, item, "attribute_not_exists(pk)")


def replayed(
    table: LedgerTable, tenant_id: str, marker: dict[str, Any] | None, digest: str
) -> dict[str, Any]:
    """The record a repeated key refers to; a different request under it is refused."""
    if marker is None or marker.get("request_hash") != digest:
        raise IdempotencyMismatch("idempotency key reused with a different request")
    item = table.get(record_key(tenant_id, marker["record_id"], int(marker.get("lane", 0))))
    if item is None:
        raise LedgerCorrupted("idempotency marker without its record")
    return item

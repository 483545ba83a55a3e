"""Holds in the counter item (D70, D72): what a single-item reserve adds to its counter, how
a settlement takes it out, and where the sweeper finds counters that held some.

A hold is the attribute `h_<ulid>` = {p: the terms (D91), x: expires_at, u: model/provider/tier}
(`costguard.store.counters.InItemHold`); `hn` counts them (at most MAX_HOLDS, so the item stays
near 1 KB). A counter that ever held one is listed in the `holds` index under `HELD#<tenant>` /
its period (keys set by its first in-item hold, never changed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ulid import ULID

from costguard.errors import LedgerCorrupted, ReservationNotFound
from costguard.ledger.terms import ReservationRef
from costguard.models import Usage
from costguard.pricing import ModelPrice, Price
from costguard.store.codec import iso
from costguard.store.counters import HOLD_ATTRIBUTE, HOLD_COUNT, PV, CounterItem, InItemHold
from costguard.store.dynamo import LedgerTable
from costguard.store.items import CostRecordItem
from costguard.store.keys import Key, tenant_pk
from costguard.store.schema import HOLDS_INDEX, HOLDS_PK, HOLDS_SK
from costguard.store.writes import ItemWrite

MAX_HOLDS = 4
LISTED_PREFIX = "HELD#"
"""The `holds` index partition listing a tenant's counters that held in-item holds."""


def attribute(ref: ReservationRef) -> str:
    return f"{HOLD_ATTRIBUTE}{ref.ulid}"


def listed_pk(tenant_id: str) -> str:
    return f"{LISTED_PREFIX}{tenant_id}"


def counter_of_listing(item: dict[str, Any]) -> Key:
    """The counter key an index entry of `HELD#<t>` / `<period>` lists."""
    listing = CounterItem(item).listing
    if listing is None:
        raise LedgerCorrupted(f"a listing of {item.get('pk')}/{item.get('sk')} without its keys")
    return tenant_pk(listing[0].removeprefix(LISTED_PREFIX)), listing[1]


def entry(
    ref: ReservationRef, expires_at: datetime, usage: Usage, price: Price | None
) -> dict[str, Any]:
    """What the counter keeps of a hold (`InItemHold`'s stored map): enough to settle it and
    write its record."""
    provider = price.provider if isinstance(price, ModelPrice) else usage.provider
    return InItemHold.value(ref.terms, iso(expires_at), provider, usage.model, usage.tier)


def add(w: ItemWrite, ref: ReservationRef, held: dict[str, Any], tenant_id: str, pv: int) -> None:
    """The single-item reserve's own part of its UpdateItem (the quotas' part is charge_new's):
    the hold, its count (condition below MAX_HOLDS), the tenant policy version it proved
    (condition `pv`, D71) and the counter's listing for the sweeper (set once)."""
    h = w.name(attribute(ref))
    w.sets.append(f"{h} = {w.value(held)}")
    # Not idempotent by itself (an UpdateItem has no request token): a resend of a write
    # whose answer was lost would hold twice. The hold's own absence makes it fail instead,
    # and the reserve reads its hold in ALL_OLD as made.
    w.condition(f"attribute_not_exists({h})")
    count = w.name(HOLD_COUNT)
    w.add(HOLD_COUNT, 1)
    w.condition(f"attribute_not_exists({count}) OR {count} < {w.value(MAX_HOLDS)}")
    w.condition(f"{w.name(PV)} = {w.value(pv)}")
    for name, value in ((HOLDS_PK, listed_pk(tenant_id)), (HOLDS_SK, w.key[1])):
        n = w.name(name)
        w.sets.append(f"{n} = if_not_exists({n}, {w.value(value)})")


def take_out(w: ItemWrite, ref: ReservationRef, now: datetime, *, expired: bool) -> None:
    """Remove the hold from its counter, on condition that it is there as the id says (the
    forged-id proof, D4) and alive (a commit, a release) or `expired` (expiry)."""
    h = w.name(attribute(ref))
    w.removes.append(h)
    w.add(HOLD_COUNT, -1)
    when = "<=" if expired else ">"
    w.condition(
        f"{h}.{w.name('p')} = {w.value(ref.terms)} AND {h}.{w.name('x')} {when} {w.value(iso(now))}"
    )


def holds(counter: dict[str, Any] | None) -> Iterator[tuple[ReservationRef, InItemHold]]:
    """The in-item holds of a counter (a malformed one is reconcile()'s to report)."""
    for held in CounterItem(counter).holds():
        try:
            ULID.from_str(held.ulid)
            ref = ReservationRef.parse(f"{held.ulid}~{held.terms}")
        except (ReservationNotFound, ValueError):
            continue
        if ref.in_item:
            yield ref, held


def due(counter: dict[str, Any] | None, now: datetime) -> list[tuple[ReservationRef, InItemHold]]:
    """The in-item holds of a counter that expired at or before `now`."""
    at = iso(now)
    return [(ref, held) for ref, held in holds(counter) if held.expired(at)]


def found(counter: dict[str, Any] | None, ref: ReservationRef) -> InItemHold | None:
    """The counter's hold of `ref` if it is the hold the id describes."""
    held = CounterItem(counter).hold(str(ref.ulid))
    return held if held is not None and held.terms == ref.terms else None


def usage_of(held: InItemHold, ref: ReservationRef) -> Usage:
    """What an in-item hold was for, enough to roll its charge up (as records.usage_of)."""
    return Usage.model_construct(
        resource="sandbox" if ref.resource.value == "sandbox" else "llm",
        provider=held.provider,
        model=held.model,
        tier=held.tier,
    )


def record(tenant_id: str, ref: ReservationRef, held: InItemHold | None) -> dict[str, Any]:
    """The fields of the record an in-item hold's settlement puts (the id's and the hold's)."""
    item: dict[str, Any] = {
        "tenant_id": tenant_id,
        "plan": ref.terms,
        "resource": ref.resource.value,
        "estimate_usd": ref.estimate_usd,
        "created_at": iso(ref.created_at),
        "user_id": ref.user_id,
    }
    if held is not None:
        item["expires_at"] = held.expires_at
        item |= held.described
    return CostRecordItem.encode(item)


def listed(table: LedgerTable, tenant_id: str) -> set[Key]:
    """The tenant's counters that ever held in-item holds (a strongly consistent read of
    the index is not possible: a counter listed moments ago may be missed)."""
    found = table.query_all(f"{HOLDS_PK} = :p", {":p": listed_pk(tenant_id)}, index=HOLDS_INDEX)
    return {counter_of_listing(item) for item in found}

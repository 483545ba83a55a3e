"""The item writes every spend is made of: charging counters, rolling up the day, settling
a hold, and the record fields that describe a usage. Pure: they only add to a transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from costguard import telemetry
from costguard.ledger.terms import ReservationRef, Slot
from costguard.models import Usage
from costguard.pricing import ModelPrice, Price
from costguard.quotas import QuotaDefinition, Scope
from costguard.store.counters import LAST_REQUEST, PV
from costguard.store.keys import (
    ROLLUP_BUCKET,
    ROLLUP_BUCKET_USER,
    ROLLUP_MODEL,
    ROLLUP_TIER,
    active_pk,
    active_shard,
    day_key,
    day_of,
    user_bucket,
)
from costguard.store.schema import ACTIVE_PK, ACTIVE_SK
from costguard.store.writes import ItemWrite, TransactionBuilder


def charge_new(
    tx: TransactionBuilder,
    quota: QuotaDefinition,
    slot: Slot,
    amount: Decimal,
    target: str,
    enforce: bool,
) -> None:
    """Hold (`target='held'`) or spend (`'spent'`) `amount` on a quota, creating the
    period's counter with the verified limit if it is the period's first spend."""
    w = tx.update(slot.key)
    p = slot.prefix
    avail, limit = w.name(p + "avail"), w.name(p + "limit")
    lim = w.value(quota.limit_usd)
    w.sets.append(f"{avail} = if_not_exists({avail}, {lim}) - {w.value(amount)}")
    w.sets.append(f"{limit} = if_not_exists({limit}, {lim})")
    w.add(p + target, amount)
    stamp(w)
    threshold = quota.denial_threshold(amount) if enforce else None
    if threshold is not None:
        w.condition(f"attribute_not_exists({avail}) OR {avail} >= {w.value(threshold)}")


def roll_up(
    tx: TransactionBuilder,
    tenant_id: str,
    at: datetime,
    usage: Usage,
    cost: Decimal,
    price: Price | None,
    user_id: str | None,
    tz: str,
    lane: int = 0,
) -> None:
    """Add a spend to the tenant's day rollup (same item as its day counter, no extra
    write; the local day in `tz`): per resource, model or tier, and user bucket; the first
    spend of the day also lists the tenant in the `active` index (the schedules' list).
    A spend in lane i > 0 (D98) adds to that lane's day item (`TENANT#t#S<ii>`), which
    readers sum with the others; each lane lists the tenant itself (readers dedupe)."""
    key = day_key(tenant_id, at, tz, lane)
    w = tx.update(key)
    w.add(f"usd_{usage.resource}", cost)
    w.add("usd_all", cost)
    w.add("calls", 1)
    if usage.resource == "llm":
        provider = price.provider if isinstance(price, ModelPrice) else (usage.provider or "-")
        w.add(f"{ROLLUP_MODEL}{provider}/{usage.model or '-'}", cost)
    else:
        w.add(f"{ROLLUP_TIER}{usage.tier or '-'}", cost)
    if user_id:
        bucket = user_bucket(user_id)
        w.add(f"{ROLLUP_BUCKET}{bucket}", cost)
        w.sets.append(f"{w.name(ROLLUP_BUCKET_USER + bucket)} = {w.value(user_id)}")
    day = day_of(key[1])
    for attribute, value in (
        (ACTIVE_PK, active_pk(day, active_shard(tenant_id))),
        (ACTIVE_SK, tenant_id),
    ):
        n = w.name(attribute)
        w.sets.append(f"{n} = if_not_exists({n}, {w.value(value)})")


def settle_hold(
    tx: TransactionBuilder,
    tenant_id: str,
    ref: ReservationRef,
    charged: Decimal,
    usage: Usage,
    price: Price | None,
) -> None:
    """The counter and rollup writes of settling a hold by charging `charged`: the hold
    leaves every counter it was on, the charge is spent there (avail moves by the
    difference) and rolled up on the reservation's day (commit, unknown usage, expiry)."""
    estimate = ref.estimate_usd
    for slot in ref.slots(tenant_id):
        w = tx.update(slot.key)
        w.add(slot.prefix + "held", -estimate)
        w.add(slot.prefix + "spent", charged)
        if charged != estimate:
            w.add(slot.prefix + "avail", estimate - charged)
        stamp(w)
    roll_up(tx, tenant_id, ref.created_at, usage, charged, price, ref.user_id, ref.tz, ref.lane)


def give_back(tx: TransactionBuilder, tenant_id: str, ref: ReservationRef) -> None:
    """The counter writes of returning a hold uncharged (release, expiry with `release`)."""
    for slot in ref.slots(tenant_id):
        w = tx.update(slot.key)
        w.add(slot.prefix + "held", -ref.estimate_usd)
        w.add(slot.prefix + "avail", ref.estimate_usd)


def usage_fields(usage: Usage, price: Price | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model": usage.model,
        "tier": usage.tier,
        "provider": price.provider if isinstance(price, ModelPrice) else usage.provider,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_input_tokens": usage.cache_write_input_tokens,
        "cache_write_1h_input_tokens": usage.cache_write_1h_input_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "service_tier": usage.service_tier if usage.resource == "llm" else None,
        "seconds": usage.seconds,
        "price": price.describe() if price is not None else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def usage_of(held: dict[str, Any]) -> Usage:
    """What a reservation's record says it was for: enough to roll its charge up by model
    or tier (built without validation: it was validated when it was reserved)."""
    return Usage.model_construct(
        resource="sandbox" if held.get("resource") == "sandbox" else "llm",
        provider=held.get("provider"),
        model=held.get("model"),
        tier=held.get("tier"),
    )


def stamp_pv(
    tx: TransactionBuilder, pairs: list[tuple[QuotaDefinition, Slot]], version: int
) -> None:
    """A spend whose transaction proved the tenant policy's `version` stamps it on the tenant
    counters it writes (D71): a counter created by it is stamped like the others."""
    for _, slot in pairs:
        if slot.scope is Scope.TENANT and slot.key == slot.base:
            w = tx.update(slot.key)
            if PV not in w.names.values():
                w.sets.append(f"{w.name(PV)} = {w.value(version)}")


def stamp(write: ItemWrite) -> None:
    """The API request behind a counter write, for the stream's alerts (once per item)."""
    request = telemetry.request_id()
    if request and LAST_REQUEST not in write.names.values():
        write.sets.append(f"{write.name(LAST_REQUEST)} = {write.value(request)}")

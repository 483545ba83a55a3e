"""Sliced quotas in the spend engine (decisions D74–D77).

The slice a spend takes, its hold with the allowance it borrows, the refusal decided on a
snapshot of the whole, figures summed over the slices, and the re-grant of a quota PUT.
`costguard.ledger.escrow` is the protocol; this binds it to quotas, periods and policies. A
quota that is not sliced (`slices: 1`, never more) never reaches this module: its writes,
reads and ids are exactly what they were before slices existed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import costguard.ledger.escrow as escrow
from costguard.ledger.terms import Slot, slot_for
from costguard.quotas import QuotaDefinition, QuotaId, Scope
from costguard.store.counters import CounterItem, QuotaFields
from costguard.store.items import policy_version
from costguard.store.keys import POLICY_SK, Key, policy_pk

BORROW_ATTEMPTS = 32
"""Spend attempts a reserve may use for borrowing, beyond its policy refreshes: near
exhaustion, concurrent borrowers take each other's donors and compute their moves again."""


def layout(quota: QuotaDefinition, base: Key) -> escrow.Layout:
    """The slices of `quota` on the period whose counter (slice 0) is `base`: its period key
    is the one the period's solo mark names (in the calendar the counter was keyed in)."""
    solo = quota.solo_period == base[1]
    return escrow.Layout(quota.limit_usd, quota.slices, quota.span, solo)


def slot(quota: QuotaDefinition, tenant_id: str, at: datetime, pick: int, tz: str) -> Slot:
    """The slot a spend takes: for a sliced quota, slice `pick` mod the slices it may take
    (periods in the zone `tz`, as every slot's)."""
    first = slot_for(quota.quota_id, tenant_id, at, tz)
    if not quota.sliced:
        return first
    index = pick % layout(quota, first.base).pickable
    return slot_for(quota.quota_id, tenant_id, at, tz, index)


def charge(
    tx: Any,
    quota: QuotaDefinition,
    at_slot: Slot,
    amount: Decimal,
    target: str,
    enforce: bool,
    at: datetime,
    moves: Mapping[int, Decimal],
) -> None:
    """Hold (`target='held'`) or spend (`'spent'`) `amount` on the slot's slice, after `moves`
    brought allowance onto it from its siblings in the same transaction."""
    lay = layout(quota, at_slot.base)
    borrowed = escrow.add_borrow(tx, at_slot.base, at_slot.prefix, lay, moves)
    threshold = quota.denial_threshold(amount) if enforce else None
    share = (
        escrow.slice_threshold(threshold, amount, lay.pickable) if threshold is not None else None
    )
    default = escrow.virtual_grant(lay.limit, lay.slices, at_slot.slice)
    escrow.hold(tx.update(at_slot.key), at_slot.prefix, default, amount, target, share, borrowed)


def keys(quota: QuotaDefinition, base: Key) -> list[Key]:
    """Every item a sliced quota's figures of a period are on."""
    return [escrow.slice_key(base, i) for i in layout(quota, base).indices]


def whole_fields(
    quota: QuotaDefinition, at_slot: Slot, items: Mapping[Key, Mapping[str, Any]], at: datetime
) -> QuotaFields:
    """A sliced quota's figures summed over its slices, as one field group (so figures, the
    429 body and checks read it as they read an unsliced counter's).

    The limit is the verified policy's: the grants of the period sum to it (conservation,
    which reconcile() checks), and the slices may have been read one by one (figures) while a
    borrow moved a grant between two of them, which their sum would show twice or not at all.
    """
    p = at_slot.prefix
    lay = layout(quota, at_slot.base)
    whole = escrow.whole(escrow.states_of(items, at_slot.base, p, lay))
    return QuotaFields(lay.limit, lay.limit - whole.spent - whole.held, whole.held, whole.spent)


def period_totals(
    quota: QuotaDefinition, base: Key, prefix: str, items: Mapping[Key, Mapping[str, Any]]
) -> tuple[Decimal, Decimal] | None:
    """(spent, limit) of a sliced quota in the period of `base`, summed over its slices;
    None when no slice has the quota's fields in that period (no counter). A slice never
    written in the period counts its share of the quota's limit now (as the ledger would)."""
    mine = keys(quota, base)
    if not any(CounterItem(items.get(k)).has(prefix) for k in mine):
        return None
    whole = escrow.whole(escrow.states_of(items, base, prefix, layout(quota, base)))
    return whole.spent, whole.limit


@dataclass(frozen=True)
class Borrow:
    """Allowance to move onto a slice before trying again."""

    quota_id: QuotaId
    moves: dict[int, Decimal]


@dataclass(frozen=True)
class Refused:
    """The whole quota cannot cover the request: its figures (from the snapshot)."""

    quota: QuotaDefinition
    at_slot: Slot
    fields: QuotaFields
    """Its figures as one (`whole_fields`)."""


@dataclass(frozen=True)
class Stale:
    """The snapshot met a newer policy: the items it returned (to refresh the cache)."""

    policies: dict[Key, dict[str, Any] | None]


def decide(
    table: Any,
    pairs: Sequence[tuple[QuotaDefinition, Slot]],
    failed: Mapping[Key, Any],
    amount: Decimal,
    at: datetime,
    policies: Mapping[Key, int | None],
    tenant_id: str,
) -> Borrow | Refused | Stale | None:
    """After a cancelled spend: for the first sliced quota whose items failed, a snapshot of
    its policy and every slice decides between borrowing and refusing. None when no sliced
    quota is involved (the caller's unsliced rules apply)."""
    for quota, at_slot in pairs:
        if not quota.sliced or quota.denial_threshold(amount) is None:
            continue
        mine = keys(quota, at_slot.base)
        if not any(k in failed for k in mine):
            continue
        policy_key = _policy_key(quota, tenant_id)
        found = table.transact_get([policy_key, *mine])
        if policy_version(found.get(policy_key)) != policies.get(policy_key):
            return Stale({policy_key: found.get(policy_key)})
        lay = layout(quota, at_slot.base)
        states = escrow.states_of(found, at_slot.base, at_slot.prefix, lay)
        threshold = quota.denial_threshold(amount)
        assert threshold is not None
        share = escrow.slice_threshold(threshold, amount, lay.pickable)
        moves = escrow.borrow_moves(states, at_slot.slice, share, threshold)
        if moves is None:
            return Refused(quota, at_slot, whole_fields(quota, at_slot, found, at))
        if not moves:
            # The slice covers it now (a release landed meanwhile): just try again.
            return Borrow(quota.quota_id, {})
        time.sleep(random.uniform(0, 0.002))  # noqa: S311 - let racing borrowers spread
        return Borrow(quota.quota_id, moves)
    return None


def _policy_key(quota: QuotaDefinition, tenant_id: str) -> Key:
    return policy_pk(None if quota.quota_id.scope is Scope.PLATFORM else tenant_id), POLICY_SK


def regrant(
    tx: Any,
    old: QuotaDefinition | None,
    new: QuotaDefinition,
    base: Key,
    prefix: str,
    items: Mapping[Key, Mapping[str, Any]],
    at: datetime,
) -> dict[str, Any]:
    """The counter side of a quota PUT for a sliced quota (or one becoming or ceasing to be
    sliced): every slice of the current period re-granted to the new limit and slice count.
    Returns the slicing fields of the policy spec written in the same transaction."""
    before = (
        layout(old, base)
        if old is not None
        else escrow.Layout(escrow.ZERO, 1, max(1, new.span), False)
    )
    span = max(before.span, before.slices, new.slices)
    reading = escrow.Layout(before.limit, before.slices, span, before.solo)
    states = escrow.states_of(items, base, prefix, reading)
    solo = escrow.add_regrant(tx, base, prefix, reading, states, new.limit_usd, new.slices)
    spec: dict[str, Any] = {"slices": new.slices, "span": span}
    if solo:
        spec["solo"] = base[1]  # the period's key, in the calendar its counters are keyed in
    return spec


def regrant_keys(old: QuotaDefinition | None, new: QuotaDefinition, base: Key) -> list[Key]:
    span = max(new.slices, *((old.slices, old.span) if old else (1,)))
    return [escrow.slice_key(base, i) for i in range(span)]


def keys_of(pairs: Iterable[tuple[QuotaDefinition, Slot]], at: datetime) -> list[Key]:
    out: list[Key] = []
    for quota, at_slot in pairs:
        out.extend(keys(quota, at_slot.base) if quota.sliced else [at_slot.key])
    return out

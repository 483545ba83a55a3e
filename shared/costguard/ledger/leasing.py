"""Leased platform quotas in the spend engine (decisions D78, D87–D89).

A platform quota with `leased: true` keeps its allowance of a period as a *pool* (the platform
counter, `PLATFORM / MONTH#…`, whose `q_r_limit` is the pool's grant) plus one *lease* per
tenant on the tenant's own counter item of the platform period (`TENANT#t / MONTH#…`, fields
`l_r_limit` = the lease's grant, `l_r_avail`, `l_r_held`, `l_r_spent`, `l_r_until`). The pool's
and the leases' grants sum to the limit; allowance moves between them only by relative `ADD`s
in one transaction (`costguard.ledger.escrow`). A reserve holds on its live lease, writing no
platform item; a lease that is short or expired is renewed in the reserve's own transaction
from the pool (and, when the pool cannot, by recall from other leases), decided on a snapshot
of the policy, the pool and every lease of the period; the pool lists its lessees (a string
set written with each renewal), so the snapshot knows which leases exist. Expired leases give
their unused allowance back to the pool (`sweep`). `costguard.ledger.escrow` is the protocol;
this binds it to quotas, periods and tenants. A quota that is not leased never reaches this
module.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import costguard.ledger.escrow as escrow
from costguard.ledger.slicing import Refused, Stale  # the same outcomes as a borrow's
from costguard.ledger.terms import LEASED, Slot, slot_for
from costguard.money import ZERO
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.store.codec import iso
from costguard.store.counters import LESSEES, CounterItem, QuotaFields, lease_prefix
from costguard.store.dynamo import Cancelled
from costguard.store.items import policy_of, policy_version
from costguard.store.keys import PLATFORM_PK, POLICY_SK, Key, tenant_pk
from costguard.store.writes import TransactionBuilder

POLICY: Key = (PLATFORM_PK, POLICY_SK)
SNAPSHOT_ITEMS = 100
"""TransactGetItems reads at most 100 items: the policy, the pool and 98 leases at once."""
SNAPSHOT_ATTEMPTS = 16
"""Reads of the snapshot while new lessees keep appearing (each is read again with them)."""


def slot(quota: QuotaDefinition, tenant_id: str, at: datetime) -> Slot:
    """The slot a tenant's spend under a leased platform quota takes: its own lease."""
    pool = slot_for(quota.quota_id, tenant_id, at)
    return Slot(pool.scope, pool.period, pool.resource, pool.base, LEASED, pool.tz, tenant_id)


def pool_slot(at_slot: Slot) -> Slot:
    """The platform counter (the pool) of a lease's period: what figures are keyed by."""
    return replace(at_slot, slice=0, lessee=None)


def lessees_field(pool_prefix: str) -> str:
    return lease_prefix(pool_prefix) + LESSEES


def lease_key(base: Key, tenant_id: str) -> Key:
    return tenant_pk(tenant_id), base[1]


def lessees(pool_item: Mapping[str, Any] | None, pool_prefix: str) -> list[str]:
    """The tenants holding a lease of the pool's period, as the pool lists them."""
    return sorted(CounterItem(pool_item).lease(lease_prefix(pool_prefix)).lessees)


@dataclass(frozen=True)
class Renew:
    """Allowance to move onto the tenant's lease through the pool (`moves`: recalled leases by
    index, 1 is `tenants[0]`) before trying again, and the lease's new expiry."""

    quota_id: QuotaId
    moves: escrow.LeaseMoves
    tenants: tuple[str, ...]
    until: str


def charge(
    tx: Any,
    quota: QuotaDefinition,
    at_slot: Slot,
    amount: Decimal,
    target: str,
    enforce: bool,
    at: datetime,
    renewal: Renew | None,
) -> None:
    """Hold (`target='held'`) or spend (`'spent'`) `amount` on the tenant's lease: on the live
    lease as it is, or after `renewal` moved allowance onto it in the same transaction. Not
    enforced (a record of money already spent): taken from the lease whatever it has."""
    assert at_slot.lessee is not None
    w = tx.update(at_slot.key)
    lp = at_slot.prefix
    if not enforce:
        avail, limit, zero = w.name(lp + "avail"), w.name(lp + "limit"), w.value(ZERO)
        w.sets.append(f"{avail} = if_not_exists({avail}, {zero}) - {w.value(amount)}")
        w.sets.append(f"{limit} = if_not_exists({limit}, {zero})")
        w.add(lp + target, amount)
        _list(tx, at_slot)
        return
    if renewal is None:
        escrow.lease_hold(w, lp, amount, iso(at), quota.lease_epoch, None, target)
        return
    pool = pool_slot(at_slot)
    moves = renewal.moves
    for index, x in sorted(moves.recalls.items()):
        donor = lease_key(at_slot.base, renewal.tenants[index - 1])
        escrow.move(tx.update(donor), lp, ZERO, -x, guard=True)
    if moves.given or moves.recalls or moves.returned:
        escrow.pool_move(tx.update(pool.key), pool.prefix, quota.limit_usd, moves.pool_delta)
    _list(tx, at_slot)
    escrow.lease_hold(w, lp, amount, iso(at), quota.lease_epoch, (moves, renewal.until), target)


def _list(tx: Any, at_slot: Slot) -> None:
    """The pool names every tenant that has a lease of the period (written with renewals)."""
    assert at_slot.lessee is not None
    pool = pool_slot(at_slot)
    w = tx.update(pool.key)
    w.add(lessees_field(pool.prefix), {at_slot.lessee})


@dataclass(frozen=True)
class Snapshot:
    """The policy's version, the pool and every lease of a period, read as one."""

    version: int | None
    tenants: tuple[str, ...]
    states: list[escrow.SliceState]
    """Index 0 the pool, index i the lease of `tenants[i − 1]`."""
    items: dict[Key, dict[str, Any]]
    consistent: bool = True


def snapshot(
    table: Any, quota: QuotaDefinition, base: Key, prefix: str, also: str | None = None
) -> Snapshot:
    """A serializable read of the platform policy, the pool and every lease it lists (plus
    `also`'s). Beyond 98 leases the rest are read in chunks after the snapshot, then the pool
    again: when its move count changed meanwhile (a grant in flight could show twice or not
    at all), the whole is read again (D97). `consistent` is False when that, or new lessees,
    kept happening on every read: a refusal decided on such a read may be false; an admission
    never exceeds the limit (every move is guarded)."""
    lp = lease_prefix(prefix)
    pool_item = table.get(base, consistent=True) or {}
    complete = settled = False
    for _ in range(SNAPSHOT_ATTEMPTS):
        names = sorted({*lessees(pool_item, prefix), *((also,) if also else ())})
        keys = [POLICY, base, *(lease_key(base, t) for t in names)]
        found = table.transact_get(keys[:SNAPSHOT_ITEMS])
        rest = keys[SNAPSHOT_ITEMS:]
        settled = True
        if rest:
            found.update(table.batch_get(rest, consistent=True))
            after = table.get(base, consistent=True)
            moves = CounterItem(found.get(base)).lease(lp).moves
            settled = moves == CounterItem(after).lease(lp).moves
        pool_item = found.get(base) or {}
        complete = not set(lessees(pool_item, prefix)) - set(names)
        if complete and settled:
            break  # else a new lessee or a move meanwhile: read again
    version = policy_version(found.get(POLICY))
    pool = escrow.state_of(pool_item, prefix, 0, escrow.Layout(quota.limit_usd))
    leases = [
        escrow.state_of(found.get(lease_key(base, t)), lp, i + 1, escrow.Layout(ZERO))
        for i, t in enumerate(names)
    ]
    return Snapshot(
        version,
        tuple(names),
        [pool, *leases],
        found,
        consistent=complete and settled,
    )


def whole_of(quota: QuotaDefinition, at_slot: Slot, snap: Snapshot) -> QuotaFields:
    """A leased quota read as one counter (figures, the 429 body): spent and held summed over
    the pool and the leases, the limit the verified policy's (their grants sum to it)."""
    return _fields(quota, escrow.whole(snap.states))


def _fields(quota: QuotaDefinition, whole: escrow.Whole) -> QuotaFields:
    limit = quota.limit_usd
    return QuotaFields(limit, limit - whole.spent - whole.held, whole.held, whole.spent)


def whole_fields(
    table: Any,
    quota: QuotaDefinition,
    at_slot: Slot,
    counters: Mapping[Key, Mapping[str, Any]],
    consistent: bool,
) -> QuotaFields:
    """The whole of a leased quota from its pool item in `counters` and a read of every lease
    the pool lists (figures, GET /v1/platform/quotas, a reserve's figures)."""
    pool = pool_slot(at_slot)
    pool_item = counters.get(pool.key) or {}
    names = lessees(pool_item, pool.prefix)
    leases = (
        table.batch_get([lease_key(pool.base, t) for t in names], consistent=consistent)
        if names
        else {}
    )
    lp = lease_prefix(pool.prefix)
    states = [
        escrow.state_of(pool_item, pool.prefix, 0, escrow.Layout(quota.limit_usd)),
        *(
            escrow.state_of(leases.get(lease_key(pool.base, t)), lp, 1, escrow.Layout(ZERO))
            for t in names
        ),
    ]
    return _fields(quota, escrow.whole(states))


def decide(
    table: Any,
    pairs: Sequence[tuple[QuotaDefinition, Slot]],
    failed: Mapping[Key, Any],
    amount: Decimal,
    at: datetime,
    platform_version: int | None,
) -> Renew | Refused | Stale | None:
    """After a cancelled spend: for a leased quota whose lease failed, decide between renewing
    (from the pool, else by recall) and refusing. The policy, the pool and the tenant's own
    lease are read first: a renewal the pool alone can serve needs nothing else (the pool's
    own condition keeps it at avail >= 0, D94); a recall or a refusal is decided on a snapshot
    of every lease. None when no lease is short (the caller's other rules apply)."""
    for quota, at_slot in pairs:
        if at_slot.lessee is None or not any(_ours(k, at_slot) for k in failed):
            continue
        pool = pool_slot(at_slot)
        own = _own_snapshot(table, quota, pool, at_slot)
        if own.version != platform_version:
            return Stale({POLICY: own.items.get(POLICY)})
        decided = _plan(quota, at_slot, own, amount, at)
        if decided is None or (isinstance(decided, Renew) and not decided.moves.recalls):
            return decided  # covered, or the pool alone serves it
        snap = snapshot(table, quota, at_slot.base, pool.prefix, at_slot.lessee)
        if snap.version != platform_version:
            return Stale({POLICY: snap.items.get(POLICY)})
        decided = _plan(quota, at_slot, snap, amount, at)
        if isinstance(decided, Renew) and decided.moves.recalls:
            time.sleep(random.uniform(0, 0.002))  # noqa: S311 - let racing recalls spread
        return decided
    return None


def _own_snapshot(table: Any, quota: QuotaDefinition, pool: Slot, at_slot: Slot) -> Snapshot:
    """The policy, the pool and the tenant's own lease, read as one (6 RRU)."""
    keys = [POLICY, pool.key, at_slot.key]
    found = table.transact_get(keys)
    lp = lease_prefix(pool.prefix)
    states = [
        escrow.state_of(found.get(pool.key), pool.prefix, 0, escrow.Layout(quota.limit_usd)),
        escrow.state_of(found.get(at_slot.key), lp, 1, escrow.Layout(ZERO)),
    ]
    assert at_slot.lessee is not None
    return Snapshot(policy_version(found.get(POLICY)), (at_slot.lessee,), states, found, False)


def _plan(
    quota: QuotaDefinition, at_slot: Slot, snap: Snapshot, amount: Decimal, at: datetime
) -> Renew | Refused | None:
    assert at_slot.lessee is not None
    lessee = snap.tenants.index(at_slot.lessee) + 1
    own = snap.states[lessee]
    terms = CounterItem(snap.items.get(at_slot.key)).lease(at_slot.prefix)
    stale = terms.epoch != quota.lease_epoch
    live = terms.live(iso(at), quota.lease_epoch)
    if live and own.avail >= amount:
        return None  # the lease covers it: another quota on the same item failed
    # The request plus the lease's rate for a lease's life (D87): the rate is what the
    # tenant's leases were given this period per lease life, so a busy tenant's lease
    # doubles with each renewal (up to a quarter of the pool) and renews about once per
    # lease life; its first lease is the request alone.
    rate = own.grant / escrow.LEASE_SECONDS
    size = amount + escrow.lease_size(rate, ZERO, max(snap.states[0].avail, ZERO))
    moves = escrow.lease_moves(snap.states, lessee, amount, size, stale)
    if moves is None:
        return Refused(quota, pool_slot(at_slot), whole_of(quota, at_slot, snap))
    until = iso(at + timedelta(seconds=escrow.LEASE_SECONDS))
    return Renew(quota.quota_id, moves, snap.tenants, until)


def _ours(key: Key, at_slot: Slot) -> bool:
    """A failed item of the lease's renewal: the lease, the pool or a lease recalled."""
    return key == pool_slot(at_slot).key or (
        key[1] == at_slot.base[1] and key[0].startswith("TENANT#")
    )


def sweep(table: Any, quotas: Iterable[QuotaDefinition], at: datetime) -> int:
    """Every expired lease of the current period of each leased quota, and every lease of an
    older epoch than the quota's (D94), gives its unused allowance back to the pool (the
    sweeper); the number of leases returned."""
    returned = 0
    now = iso(at)
    for quota in quotas:
        if not quota.leased:
            continue
        pool = slot_for(quota.quota_id, "-", at)
        lp = lease_prefix(pool.prefix)
        names = lessees(table.get(pool.key, consistent=True), pool.prefix)
        items = table.batch_get([lease_key(pool.base, t) for t in names]) if names else {}
        for key, item in items.items():
            lease = CounterItem(item)
            unused = lease.fields(lp).avail_or(ZERO)
            if unused <= 0 or lease.lease(lp).live(now, quota.lease_epoch):
                continue
            tx = TransactionBuilder()
            escrow.lease_return(
                tx.update(key), tx.update(pool.key), lp, pool.prefix, unused, now, quota.lease_epoch
            )
            try:
                table.transact(tx.writes)
            except Cancelled:
                continue  # renewed or spent meanwhile: the next sweep looks again
            returned += 1
    return returned


def conserved(table: Any, quota: QuotaDefinition, at: datetime) -> list[str]:
    """Conservation of a leased quota (D78): in the period at `at`, the pool's and the leases'
    grants sum to the limit, and each has avail = grant − spent − held (on a snapshot)."""
    pool = slot_for(quota.quota_id, "-", at)
    snap = snapshot(table, quota, pool.base, pool.prefix)
    where = f"{quota.quota_id} {pool.base[1]}"
    problems = []
    fresh = _policy_limit(snap.items.get(POLICY), quota)
    total = escrow.whole(snap.states).limit
    if fresh is not None and total != fresh:
        problems.append(f"{where}: pool and lease grants sum to {total} != limit {fresh}")
    for s in snap.states:
        if s.stored and s.avail != s.grant - s.spent - s.held:
            who = "pool" if s.index == 0 else f"lease of {snap.tenants[s.index - 1]}"
            problems.append(f"{where} {who}: avail {s.avail} != {s.grant - s.spent - s.held}")
    return problems


def _policy_limit(item: Mapping[str, Any] | None, quota: QuotaDefinition) -> Decimal | None:
    if item is None:
        return None
    found = [q for q in policy_of(item).quotas if q.quota_id == quota.quota_id]
    return found[0].limit_usd if found else None

"""The escrow protocol for one quota, composed as the ledger composes it (tests and bench).

One quota whose layout (limit, slices, span, version) sits in a policy-like item; reservation
records name their slice. Used by the stateful test (tests/unit/test_escrow_properties.py) and
the capacity bench (bench/hotquota.py) before and apart from the spend engine.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from costguard.ledger import LedgerTable
from costguard.ledger import escrow as E
from costguard.store.counters import lease_prefix
from costguard.store.dynamo import Cancelled
from costguard.store.writes import TransactionBuilder

POLICY = ("QUOTA#acme", "POLICY")
BASE = ("TENANT#acme", "MONTH#2026-12")
P = "q_all_"
REC = "TENANT#acme#REC"
ZERO = Decimal(0)
ATTEMPTS = 12
"""Tries of one operation: sequential runs need 2 or 3; racing threads more."""


class Busy(Exception):
    """The driver's retry budget ran out (never expected sequentially)."""


@dataclass(frozen=True)
class Held:
    rid: str
    index: int
    estimate: Decimal


class Driver:
    """The escrow protocol for one quota, composed as the ledger composes it."""

    def __init__(self, table: LedgerTable, attempts: int = ATTEMPTS) -> None:
        self.table = table
        self.ids = itertools.count()
        self.attempts = attempts
        self.borrows = 0

    def layout(self) -> tuple[int, E.Layout]:
        item = self.table.get(POLICY, consistent=True) or {}
        layout = E.Layout(
            item["limit"], int(item["slices"]), int(item["span"]), bool(item.get("solo"))
        )
        return int(item["version"]), layout

    def snapshot(self, layout: E.Layout) -> tuple[int, list[E.SliceState]]:
        keys = [POLICY, *(E.slice_key(BASE, i) for i in layout.indices)]
        found = self.table.transact_get(keys)
        return int(found[POLICY]["version"]), E.states_of(found, BASE, P, layout)

    def reserve(
        self, amount: Decimal, pick: int, before_borrow: Callable[[], None] | None = None
    ) -> Held | None:
        version, layout = self.layout()
        index = pick % layout.pickable
        moves: dict[int, Decimal] = {}
        rid = f"r{next(self.ids):05d}"
        for _ in range(self.attempts):
            tx = TransactionBuilder()
            check = tx.check(POLICY, "#v = :v", {":v": version})
            check.names["#v"] = "version"
            borrowed = E.add_borrow(tx, BASE, P, layout, moves)
            w = tx.update(E.slice_key(BASE, index))
            E.hold(
                w, P, E.virtual_grant(layout.limit, layout.slices, index), amount, "held",
                amount, borrowed,
            )  # fmt: skip
            item = {"status": "held", "slice": index, "estimate_usd": amount}
            tx.put((REC, rid), item, "attribute_not_exists(pk)")
            if moves and before_borrow:
                before_borrow()
                before_borrow = None
            try:
                self.table.transact(tx.writes)
            except Cancelled as cancelled:
                failed = {tx.writes[i].key for i, _ in cancelled.failed()}
                if moves:  # a borrow lost its donors to a racing reserve: back off a little
                    time.sleep(random.uniform(0, 0.004))
                if POLICY in failed:
                    version, layout = self.layout()
                    index, moves = pick % layout.pickable, {}
                    continue
                seen, states = self.snapshot(layout)
                if seen != version:
                    version, layout = self.layout()
                    index, moves = pick % layout.pickable, {}
                    continue
                moved = E.borrow_moves(states, index, amount, amount)
                if moved is None:
                    return None  # the snapshot proves the quota as a whole cannot cover it
                moves = moved
                self.borrows += 1
                continue
            return Held(rid, index, amount)
        raise Busy

    def settle(self, held: Held, charged: Decimal, status: str) -> None:
        tx = TransactionBuilder()
        E.settle(tx.update(E.slice_key(BASE, held.index)), P, held.estimate, charged)
        rec = tx.update((REC, held.rid))
        rec.sets.append(f"{rec.name('status')} = {rec.value(status)}")
        rec.condition(f"{rec.name('status')} = {rec.value('held')}")
        self.table.transact(tx.writes)

    def regrant(
        self, limit: Decimal, slices: int, before_send: Callable[[], None] | None = None
    ) -> None:
        for _ in range(self.attempts):
            version, layout = self.layout()
            seen, states = self.snapshot(layout)
            if seen != version:
                continue
            tx = TransactionBuilder()
            pw = tx.update(POLICY)
            solo = E.add_regrant(tx, BASE, P, layout, states, limit, slices)
            for name, value in (
                ("limit", limit),
                ("slices", slices),
                ("span", max(layout.span, slices)),
                ("solo", solo),
                ("version", version + 1),
            ):
                pw.sets.append(f"{pw.name(name)} = {pw.value(value)}")
            pw.condition(f"{pw.name('version')} = {pw.value(version)}")
            if before_send:
                before_send()
                before_send = None
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue
            return
        raise Busy


PLATFORM_POLICY = ("PLATFORM#Q", "POLICY")
POOL = ("PLATFORM", "MONTH#2026-12")
LP = lease_prefix(P)
TENANTS = ("t-a", "t-b", "t-c", "t-d")


def lease_key(tenant: str) -> tuple[str, str]:
    return (f"TENANT#{tenant}", "MONTH#2026-12")


@dataclass(frozen=True)
class LeaseHeld:
    rid: str
    tenant: str
    estimate: Decimal


class LeaseDriver:
    """A platform quota by lease: the pool on the platform counter, a lease per tenant on the
    tenant's own counter item (costguard.ledger.escrow's lease builders)."""

    def __init__(
        self, table: LedgerTable, attempts: int = ATTEMPTS, tenants: tuple[str, ...] = TENANTS
    ) -> None:
        self.table = table
        self.ids = itertools.count()
        self.attempts = attempts
        self.tenants = tenants
        self.renewals = 0

    def limit(self) -> tuple[int, Decimal]:
        item = self.table.get(PLATFORM_POLICY, consistent=True) or {}
        return int(item["version"]), item["limit"]

    def snapshot(self, limit: Decimal) -> tuple[int, list[E.SliceState]]:
        keys = [PLATFORM_POLICY, POOL, *(lease_key(t) for t in self.tenants)]
        found = self.table.transact_get(keys)
        pool = E.state_of(found.get(POOL), P, 0, E.Layout(limit))
        leases = [
            E.state_of(found.get(lease_key(t)), LP, i + 1, E.Layout(ZERO))
            for i, t in enumerate(self.tenants)
        ]
        return int(found[PLATFORM_POLICY]["version"]), [pool, *leases]

    def reserve(self, tenant: str, amount: Decimal, now: str, until: str) -> LeaseHeld | None:
        version, limit = self.limit()
        lessee = self.tenants.index(tenant) + 1
        plan: E.LeaseMoves | None = None  # None: hold on the live lease as it is
        rid = f"l{next(self.ids):05d}"
        for _ in range(self.attempts):
            tx = TransactionBuilder()
            check = tx.check(PLATFORM_POLICY, "#v = :v", {":v": version})
            check.names["#v"] = "version"
            if plan is not None:
                for index, x in sorted(plan.recalls.items()):
                    lease = tx.update(lease_key(self.tenants[index - 1]))
                    E.move(lease, LP, ZERO, -x, guard=True)
                if plan.given or plan.recalls or plan.returned:
                    E.pool_move(tx.update(POOL), P, limit, plan.pool_delta)
            renew = None if plan is None else (plan, until)
            E.lease_hold(tx.update(lease_key(tenant)), LP, amount, now, 0, renew)
            item = {"status": "held", "tenant": tenant, "estimate_usd": amount}
            tx.put((REC, rid), item, "attribute_not_exists(pk)")
            try:
                self.table.transact(tx.writes)
            except Cancelled as cancelled:
                failed = {tx.writes[i].key for i, _ in cancelled.failed()}
                if plan is not None and plan.recalls:
                    time.sleep(random.uniform(0, 0.004))
                if PLATFORM_POLICY in failed:
                    version, limit = self.limit()
                    plan = None
                    continue
                seen, states = self.snapshot(limit)
                if seen != version:
                    version, limit = self.limit()
                    plan = None
                    continue
                own = states[lessee]
                rate = own.grant / E.LEASE_SECONDS  # what the last lease gave, per second
                size = E.lease_size(rate, amount, states[0].avail)
                planned = E.lease_moves(states, lessee, amount, size)
                if planned is None:
                    return None  # pool and every lease together cannot cover it
                plan = planned
                self.renewals += 1
                continue
            return LeaseHeld(rid, tenant, amount)
        raise Busy

    def settle(self, held: LeaseHeld, charged: Decimal, status: str) -> None:
        tx = TransactionBuilder()
        E.settle(tx.update(lease_key(held.tenant)), LP, held.estimate, charged)
        rec = tx.update((REC, held.rid))
        rec.sets.append(f"{rec.name('status')} = {rec.value(status)}")
        rec.condition(f"{rec.name('status')} = {rec.value('held')}")
        self.table.transact(tx.writes)

    def expire(self, now: str) -> int:
        """The sweeper: every expired lease gives its unused allowance back to the pool."""
        returned = 0
        for tenant in self.tenants:
            item = self.table.get(lease_key(tenant), consistent=True) or {}
            v = item.get(LP + "avail", ZERO)
            if v <= 0 or item.get(LP + "until", "") > now:
                continue
            tx = TransactionBuilder()
            E.lease_return(tx.update(lease_key(tenant)), tx.update(POOL), LP, P, v, now, 0)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue  # renewed or spent meanwhile: the next sweep looks again
            returned += 1
        return returned

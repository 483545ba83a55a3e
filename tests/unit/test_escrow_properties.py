"""Escrow slices, stateful: one quota over N slices on moto, against a model of the whole.

The protocol is driven exactly as the ledger drives it (costguard.ledger.escrow: a reserve
takes one slice, borrows from siblings by transaction when it cannot cover, and is refused only
on a serializable snapshot of every slice; commit, release and expiry settle on the slice the
reservation names; a re-grant moves allowance for a new limit or slice count), including
*stale* moves: a borrow or a re-grant computed on a snapshot that another reserve, commit or
release changed before it was sent.

After every step: the slices' grants (virtual ones included) sum to the limit (conservation);
every stored slice has avail = grant − spent − held; held and spent per slice equal the live
holds and charges the model put there; no slice is overdrawn unless the limit was cut below
what is spent and held (then only slice 0, as an unsliced counter would be). Within the steps:
a reserve is admitted exactly when the quota as a whole can cover it (no false refusal, no
over-admission).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from costguard.ledger import LedgerTable
from costguard.ledger import escrow as E
from costguard.settings import Settings
from costguard.store.schema import create_table
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)
from moto import mock_aws

from tests.support.escrow_driver import (
    BASE,
    LP,
    PLATFORM_POLICY,
    POLICY,
    TENANTS,
    Driver,
    Held,
    LeaseDriver,
    LeaseHeld,
    P,
    lease_key,
)

TABLE = "costguard-escrow"
ZERO = Decimal(0)
AMOUNTS = st.sampled_from(["0.5", "1", "1.25", "2", "3", "5", "0.000001", "7.5"]).map(Decimal)
LIMITS = st.sampled_from(["0", "1", "5", "10", "12.5", "20", "33.333333"]).map(Decimal)
SLICES = st.sampled_from([1, 2, 3, 4, 8, 16, 64])


class EscrowMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, stream=False)
        self.table = LedgerTable(client, TABLE, Settings(table_name=TABLE))
        self.table.put(_put(POLICY, {"version": 1, "limit": Decimal(10), "slices": 4, "span": 4}))
        self.driver = Driver(self.table)
        self.limit = Decimal(10)
        self.live: dict[str, Held] = {}
        self.charged: dict[int, Decimal] = {}
        self.refusals = 0

    def teardown(self) -> None:
        self.mock.stop()

    # ------------------------------------------------------------------ model
    def used(self) -> Decimal:
        return sum((h.estimate for h in self.live.values()), ZERO) + sum(
            self.charged.values(), ZERO
        )

    def do_reserve(self, amount: Decimal, pick: int, before: Callable[[], None] | None) -> Any:
        def nested() -> None:
            assert before is not None
            before()

        room_after_nested: list[Decimal] = []

        def wrapped() -> None:
            nested()
            room_after_nested.append(self.limit - self.used())

        held = self.driver.reserve(amount, pick, wrapped if before else None)
        room = room_after_nested[-1] if room_after_nested else self.limit - self.used()
        if held is None:
            # No false refusal: the whole quota could not cover it.
            assert room < amount, f"refused {amount} with {room} left"
            self.refusals += 1
            return None
        # No over-admission: the whole quota covered it.
        assert room >= amount, f"admitted {amount} with {room} left"
        self.live[held.rid] = held
        return held

    # ------------------------------------------------------------------ rules
    @rule(target=holds, amount=AMOUNTS, pick=st.integers(0, 63))
    def reserve(self, amount: Decimal, pick: int) -> Any:
        held = self.do_reserve(amount, pick, None)
        return held if held is not None else consumes_nothing()

    @rule(
        target=holds,
        amount=AMOUNTS,
        pick=st.integers(0, 63),
        other=AMOUNTS,
        other_pick=st.integers(0, 63),
    )
    def reserve_racing_a_reserve(
        self, amount: Decimal, pick: int, other: Decimal, other_pick: int
    ) -> Any:
        """A borrow computed on a snapshot that another reserve changes before it is sent."""
        nested: list[Held] = []

        def race() -> None:
            h = self.do_reserve(other, other_pick, None)
            if h is not None:
                nested.append(h)

        held = self.do_reserve(amount, pick, race)
        return held if held is not None else consumes_nothing()

    @rule(h=consumes(holds), fraction=st.sampled_from(["0", "0.5", "1"]))
    def commit(self, h: Held | None, fraction: str) -> None:
        if h is None or h.rid not in self.live:
            return
        charged = h.estimate * Decimal(fraction)
        self.driver.settle(h, charged, "committed")
        del self.live[h.rid]
        self.charged[h.index] = self.charged.get(h.index, ZERO) + charged

    @rule(h=consumes(holds))
    def release(self, h: Held | None) -> None:
        if h is None or h.rid not in self.live:
            return
        self.driver.settle(h, ZERO, "released")
        del self.live[h.rid]

    @rule(h=consumes(holds))
    def expire_charged(self, h: Held | None) -> None:
        if h is None or h.rid not in self.live:
            return
        self.driver.settle(h, h.estimate, "committed")
        del self.live[h.rid]
        self.charged[h.index] = self.charged.get(h.index, ZERO) + h.estimate

    @rule(limit=LIMITS, slices=SLICES)
    def regrant(self, limit: Decimal, slices: int) -> None:
        self.driver.regrant(limit, slices)
        self.limit = limit

    @rule(limit=LIMITS, slices=SLICES, amount=AMOUNTS, pick=st.integers(0, 63))
    def regrant_racing_spend(self, limit: Decimal, slices: int, amount: Decimal, pick: int) -> None:
        """A reshard computed on a snapshot that a reserve and a settlement change."""

        def race() -> None:
            self.do_reserve(amount, pick, None)
            for h in list(self.live.values())[:1]:
                self.driver.settle(h, ZERO, "released")
                del self.live[h.rid]

        self.driver.regrant(limit, slices, race)
        self.limit = limit

    # ------------------------------------------------------------------ invariants
    @invariant()
    def conserved_and_within_limit(self) -> None:
        _, layout = self.driver.layout()
        assert layout.limit == self.limit
        items = self.table.batch_get([E.slice_key(BASE, i) for i in range(E.MAX_SLICES)])
        assert all(k in {E.slice_key(BASE, i) for i in layout.indices} for k in items), (
            "a slice beyond the span"
        )
        states = E.states_of(items, BASE, P, layout)
        assert sum(s.grant for s in states) == self.limit  # conservation
        for s in states:
            if s.stored:
                assert s.avail == s.grant - s.spent - s.held, s
            held = sum((h.estimate for h in self.live.values() if h.index == s.index), ZERO)
            assert s.held == held, (s, held)
            assert s.spent == self.charged.get(s.index, ZERO), s
        whole = E.whole(states)
        assert whole.avail == self.limit - self.used()
        # Only slice 0 ever carries a deficit (a limit cut below spent + held), and then
        # reserves take slice 0 alone: no slice can admit while the whole is over.
        negative = [s.index for s in states if s.avail < 0]
        assert negative in ([], [0]), states
        if negative:
            assert layout.solo, states


def consumes_nothing() -> Any:
    """A refused reserve adds nothing settleable to the bundle."""
    return None


def _put(key: tuple[str, str], item: dict[str, Any]) -> Any:
    from costguard.store.writes import ItemWrite

    return ItemWrite(key=key, kind="Put", item=item)


EscrowMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("ESCROW_EXAMPLES", "25")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEscrowMachine = EscrowMachine.TestCase


START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseMachine(RuleBasedStateMachine):
    """A platform quota by lease: reserves of four tenants on their leases, renewals from the
    pool and recalls from other leases, settlements, the clock and the lease sweeper.

    After every step: the pool's and the leases' grants sum to the platform limit, each has
    avail = grant − spent − held ≥ 0, held and spent per tenant are the model's; within the
    steps a reserve is admitted exactly when the platform as a whole can cover it, and the
    sweeper leaves no expired lease with unused allowance.
    """

    holds = Bundle("lease_holds")

    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, stream=False)
        self.table = LedgerTable(client, TABLE, Settings(table_name=TABLE))
        self.limit = Decimal(20)
        item = {"version": 1, "limit": self.limit}
        self.table.put(_put(PLATFORM_POLICY, item))
        self.driver = LeaseDriver(self.table)
        self.now = START
        self.live: dict[str, LeaseHeld] = {}
        self.charged: dict[str, Decimal] = {}

    def teardown(self) -> None:
        self.mock.stop()

    def used(self) -> Decimal:
        held = sum((h.estimate for h in self.live.values()), ZERO)
        return held + sum(self.charged.values(), ZERO)

    @rule(target=holds, tenant=st.sampled_from(TENANTS), amount=AMOUNTS)
    def reserve(self, tenant: str, amount: Decimal) -> Any:
        room = self.limit - self.used()
        until = _iso(self.now + timedelta(seconds=E.LEASE_SECONDS))
        held = self.driver.reserve(tenant, amount, _iso(self.now), until)
        if held is None:
            assert room < amount, f"refused {amount} with {room} left on the platform"
            return None
        assert room >= amount, f"admitted {amount} with {room} left on the platform"
        self.live[held.rid] = held
        return held

    @rule(h=consumes(holds), fraction=st.sampled_from(["0", "0.5", "1"]))
    def settle(self, h: LeaseHeld | None, fraction: str) -> None:
        if h is None:
            return
        charged = h.estimate * Decimal(fraction)
        self.driver.settle(h, charged, "committed")
        del self.live[h.rid]
        self.charged[h.tenant] = self.charged.get(h.tenant, ZERO) + charged

    @rule(seconds=st.sampled_from([1, 30, 59, 60, 61, 300]))
    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def sweep(self) -> None:
        now = _iso(self.now)
        self.driver.expire(now)
        for t in TENANTS:
            item = self.table.get(lease_key(t)) or {}
            if item.get(LP + "until", now) <= now:
                assert item.get(LP + "avail", ZERO) == 0, (t, item)  # all unused came back

    @invariant()
    def platform_never_over_its_limit(self) -> None:
        _, states = self.driver.snapshot(self.limit)
        assert sum(s.grant for s in states) == self.limit  # conservation
        for s in states:
            assert s.avail == s.grant - s.spent - s.held, s
            assert s.avail >= 0, s
        for i, t in enumerate(TENANTS, start=1):
            held = sum((h.estimate for h in self.live.values() if h.tenant == t), ZERO)
            assert (states[i].held, states[i].spent) == (held, self.charged.get(t, ZERO))
        assert sum(s.avail for s in states) == self.limit - self.used()


LeaseMachine.TestCase.settings = EscrowMachine.TestCase.settings
TestLeaseMachine = LeaseMachine.TestCase

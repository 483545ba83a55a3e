"""A stateful property test of a leased platform quota through the `Ledger` itself, on moto.

Hypothesis runs random sequences of reserves (in two processes, each with its own policy
cache), commits, releases, lease renewals and recalls (both happen inside reserves), the
wall clock moving leases past their expiry, the sweeper, the processes' monotonic clocks
moving past the announced 5 s (D71, D94), and the operator raising, cutting, and deleting then
creating again the leased quota. tests/unit/test_escrow_properties.py drives the escrow
protocol through a driver of its own; this drives the spend engine that serves the API.

After every step: reconcile() is clean for every tenant (each lease against the tenant's
records, and the pool's and the leases' grants sum to the limit in the policy); the whole's
spent and held are the model's. Within the steps: an admission never takes spent + held over
the limit in force (the largest limit announced since the processes last all read the policy,
while a change is within its 5 s; the limit itself once every process has read it); a refusal
is decided on the whole: a limit in force − spent − held < the amount (no false refusal; a
process may still refuse on the smallest limit of the last 5 s, as announced).
"""

from __future__ import annotations

import os
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import boto3
import costguard.ledger.policies as policies
from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger, LedgerTable
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.settings import Settings
from costguard.store.schema import create_table
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from moto import mock_aws

from tests.conftest import Clock
from tests.helpers import actual, estimate

TABLE = "costguard-lease-props"
Q = QuotaId.parse("platform:all:month")
TENANTS = ("t-a", "t-b", "t-c")
ZERO = Decimal(0)
AMOUNTS = st.sampled_from([Decimal(1), Decimal(2), Decimal(3), Decimal(5), Decimal(8)])
LIMITS = st.sampled_from([Decimal(4), Decimal(10), Decimal(16), Decimal(25)])


class Held:
    def __init__(self, tenant: str, rid: str, amount: Decimal) -> None:
        self.tenant, self.rid, self.amount = tenant, rid, amount


class LeasedLedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, stream=False)
        s = Settings(table_name=TABLE)
        table = LedgerTable(client, TABLE, s)
        self.clock = Clock()
        self.monotonic = 1000.0
        self.saved_time = getattr(policies, "time")  # noqa: B009
        setattr(policies, "time", SimpleNamespace(monotonic=lambda: self.monotonic))  # noqa: B010
        self.operator = Ledger(table, s, clock=self.clock)
        self.processes = [Ledger(table, s, clock=self.clock) for _ in range(2)]
        self.limit = Decimal(25)
        self.operator.put_quota(None, QuotaDefinition(Q, self.limit, leased=True))
        self.in_force = self.limit  # the largest limit a process may still decide on
        self.floor = self.limit  # the smallest
        self.live: dict[str, Held] = {}
        self.spent = ZERO

    def teardown(self) -> None:
        setattr(policies, "time", self.saved_time)  # noqa: B010
        self.mock.stop()

    def used(self) -> Decimal:
        return self.spent + sum((h.amount for h in self.live.values()), ZERO)

    @rule(
        target=holds,
        process=st.sampled_from([0, 1]),
        tenant=st.sampled_from(TENANTS),
        amount=AMOUNTS,
    )
    def reserve(self, process: int, tenant: str, amount: Decimal) -> Any:
        return self._reserve(process, tenant, amount)

    def _reserve(self, process: int, tenant: str, amount: Decimal) -> Held | None:
        ledger = self.processes[process]
        used = self.used()
        try:
            r = ledger.reserve(tenant, estimate(str(amount)), ttl_seconds=86400, with_figures=False)
        except QuotaExceeded:
            assert self.floor - used < amount, f"refused {amount}: {self.floor} − {used} left"
            return None
        assert used + amount <= self.in_force, f"admitted {amount} over {self.in_force}: {used}"
        held = Held(tenant, r.reservation_id, amount)
        self.live[held.rid] = held
        return held

    @rule(process=st.sampled_from([0, 1]), tenant=st.sampled_from(TENANTS), amount=AMOUNTS)
    def reserve_and_release(self, process: int, tenant: str, amount: Decimal) -> None:
        # Leaves the lease's allowance unused: what a cut must not let be spent.
        self._release(self._reserve(process, tenant, amount))

    @rule(h=consumes(holds), fraction=st.sampled_from(["0", "0.5", "1"]))
    def commit(self, h: Held | None, fraction: str) -> None:
        if h is None:
            return
        cost = h.amount * Decimal(fraction)
        self.processes[0].commit(h.tenant, h.rid, actual(str(cost)))
        del self.live[h.rid]
        self.spent += cost

    @rule(h=consumes(holds))
    def release(self, h: Held | None) -> None:
        self._release(h)

    def _release(self, h: Held | None) -> None:
        if h is None:
            return
        self.processes[1].release(h.tenant, h.rid)
        del self.live[h.rid]

    @rule(seconds=st.sampled_from([1, 30, 61]))
    def wall_clock_moves(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)  # leases live 60 s

    @rule()
    def sweep(self) -> None:
        self.operator.return_expired_leases()

    @rule()
    def announced_delay_passes(self) -> None:
        # Every process's read is now older than 5 s: each reads the policy again.
        self.monotonic += policies.PLATFORM_FRESH_SECONDS + 0.001
        self.in_force = self.floor = self.limit

    @rule(limit=LIMITS)
    def change_limit(self, limit: Decimal) -> None:
        self.operator.put_quota(None, QuotaDefinition(Q, limit, leased=True))
        self.limit = limit
        self.in_force, self.floor = max(self.in_force, limit), min(self.floor, limit)

    @rule(limit=LIMITS)
    def delete_and_create_again(self, limit: Decimal) -> None:
        self.operator.delete_quota(None, Q)
        self.operator.put_quota(None, QuotaDefinition(Q, limit, leased=True))
        self.limit = limit
        self.in_force, self.floor = max(self.in_force, limit), min(self.floor, limit)

    @invariant()
    def conserved_and_exact(self) -> None:
        for t in TENANTS:
            assert self.operator.reconcile(t) == [], t
        whole = next(q for q in self.operator.quotas(None) if q.quota_id == str(Q))
        held = sum((h.amount for h in self.live.values()), ZERO)
        assert (whole.limit_usd, whole.spent_usd, whole.reserved_usd) == (
            self.limit,
            self.spent,
            held,
        )


LeasedLedgerMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("LEASE_EXAMPLES", "20")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLeasedLedgerMachine = LeasedLedgerMachine.TestCase


def test_the_machines_checks_see_a_stale_lease_spent_after_a_cut() -> None:
    # A sequence the search may take long to draw, run through the machine's own rules: a
    # lease left with 8 unused, a cut to 4, the 5 s passing; the lease must not serve more than the 4.
    machine = LeasedLedgerMachine()
    try:
        machine.reserve_and_release(0, "t-a", Decimal(8))
        machine.change_limit(Decimal(4))
        machine.conserved_and_exact()
        machine.announced_delay_passes()
        assert machine.reserve(0, "t-a", Decimal(3)) is not None  # through the pool
        assert machine.reserve(0, "t-a", Decimal(3)) is None  # refused on the whole
        assert machine.reserve(1, "t-b", Decimal(1)) is not None  # what the cut leaves
        assert machine.reserve(1, "t-c", Decimal(1)) is None
        machine.conserved_and_exact()
    finally:
        machine.teardown()

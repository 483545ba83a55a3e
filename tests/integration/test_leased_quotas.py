"""A leased platform quota inside the ledger, on DynamoDB Local: the spend engine's reserve,
commit, release, lease renewal and recall, the sweeper, figures, the 429 body and reconcile()
for a platform quota over 50 tenants (decisions D78, D87–D89).

Invariants: exactly as many one-unit reserves are admitted as the limit has units, however
1,000 of them from 50 tenants interleave; every refusal was decided on a snapshot where the
pool and every lease together could not cover one unit (its 429 shows the whole with nothing
left), so none was refused while allowance remained in the pool or in a recallable lease; the
pool's and the leases' grants sum to the limit afterwards (reconcile()), and figures are exact;
the same with commits and releases racing, and with leases expiring (the clock moves past
them) and the sweeper returning them to the pool meanwhile.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger, leasing
from costguard.ledger import escrow as E
from costguard.ledger.plan import slot_for
from costguard.quotas import QuotaDefinition, QuotaId

from tests.conftest import Clock
from tests.helpers import actual, estimate, usd
from tests.support.own_emulator import ddb_local  # noqa: F401 (the module's own emulator)

Q = "platform:all:month"
TENANTS = [f"t-{i:02d}" for i in range(50)]
LIMIT = 100


def _lease(ledger: Ledger, limit: int = LIMIT) -> None:
    ledger.put_quota(None, QuotaDefinition(QuotaId.parse(Q), Decimal(limit), leased=True))


def _reserve(ledger: Ledger, tenant: str, refusals: list[QuotaExceeded]) -> str | None:
    try:
        return ledger.reserve(
            tenant, estimate("1"), ttl_seconds=3600, with_figures=False
        ).reservation_id
    except QuotaExceeded as refused:
        refusals.append(refused)
        return None


def _whole(ledger: Ledger) -> tuple[Decimal, Decimal, Decimal]:
    q = next(s for s in ledger.quotas(None) if s.quota_id == Q)
    return q.limit_usd, q.spent_usd, q.reserved_usd


def _consistent(ledger: Ledger) -> None:
    for tenant in TENANTS:
        assert ledger.reconcile(tenant) == []


def test_1000_concurrent_reserves_from_50_tenants_admit_exactly_the_limit(
    local_ledger: Ledger,
) -> None:
    _lease(local_ledger)
    refusals: list[QuotaExceeded] = []

    with ThreadPoolExecutor(32) as pool:
        ids = list(
            pool.map(lambda k: _reserve(local_ledger, TENANTS[k % 50], refusals), range(1000))
        )

    admitted = [r for r in ids if r is not None]
    assert len(admitted) == LIMIT and len(refusals) == 1000 - LIMIT
    assert {r.split("~")[3] for r in admitted} == {"pml-a"}  # every hold on a lease
    # Every refusal saw the quota as one with nothing left anywhere (no false refusal).
    assert {(r.binding.limit_usd, r.binding.remaining_usd) for r in refusals} == {
        (usd("100"), usd("0"))
    }
    assert _whole(local_ledger) == (usd("100"), usd("0"), usd("100"))
    _consistent(local_ledger)


def test_commits_releases_lease_expiry_and_the_sweeper_racing(
    local_ledger: Ledger, clock: Clock
) -> None:
    _lease(local_ledger)
    lock = threading.Lock()
    committed = 0
    done = threading.Event()
    refusals: list[QuotaExceeded] = []

    def call(k: int) -> None:
        nonlocal committed
        rid = _reserve(local_ledger, TENANTS[k % 50], refusals)
        if rid is None:
            return
        if k % 2:
            local_ledger.commit(TENANTS[k % 50], rid, actual("1"))
            with lock:
                committed += 1
        else:
            local_ledger.release(TENANTS[k % 50], rid)

    samples: list[tuple[Decimal, Decimal]] = []

    def time_passes() -> None:
        # Leases live 60 s: every 20 s step expires some, and the sweeper returns them; each
        # step also takes a snapshot of the pool and every lease (grants, spent + held).
        # At most 60 steps (20 min): the holds (ttl 1 h) never expire under the racers.
        quota = QuotaDefinition(QuotaId.parse(Q), Decimal(LIMIT), leased=True)
        steps = 0
        while not done.wait(0.2):
            if steps < 60:
                clock.advance(seconds=20)
                steps += 1
            local_ledger.return_expired_leases()
            pool = slot_for(quota.quota_id, "-", clock())
            snap = leasing.snapshot(local_ledger.table, quota, pool.base, pool.prefix)
            if snap.consistent:
                whole = E.whole(snap.states)
                samples.append((whole.limit, whole.spent + whole.held))

    with ThreadPoolExecutor(33) as pool:
        ticking = pool.submit(time_passes)
        list(pool.map(call, range(1000)))
        done.set()
        ticking.result()

    # At every step the grants summed to the limit and spent + held never exceeded it.
    assert samples and all(g == LIMIT and used <= LIMIT for g, used in samples), samples
    # Every refusal saw the whole with nothing left in the pool or any lease.
    assert all(r.binding.remaining_usd < 1 for r in refusals)
    assert _whole(local_ledger) == (usd("100"), Decimal(committed), usd("0"))
    assert committed == LIMIT  # releases give allowance back; commits spend all of it
    _consistent(local_ledger)
    # The sweeper returns what expired leases still have: the pool ends with the rest.
    clock.advance(seconds=120)
    local_ledger.return_expired_leases()
    assert _whole(local_ledger) == (usd("100"), usd("100"), usd("0"))
    _consistent(local_ledger)

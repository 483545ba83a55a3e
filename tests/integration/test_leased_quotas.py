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
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace

import pytest
from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger, leasing
from costguard.ledger import escrow as E
from costguard.ledger.core import LedgerBusy
from costguard.ledger.terms import slot_for
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


def test_a_limit_cut_racing_reserves_in_four_processes_never_passes_the_limit_in_force(
    local_ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D94: leased reserves check no platform policy; a cut is in force once announced.

    Four processes (ledgers with their own caches) reserve one unit at a time from 50 tenants
    while leases hold most of the limit unused; the operator cuts the limit from 100 to 40
    meanwhile. Invariants: at every sampled step the pool's and the leases' grants sum to the
    limit of the policy read with them and spent + held ≤ 100 (the old limit); the admissions
    never pass 40 unless those that started before the cut was in force (its write returned
    + the announced delay) already did; with 400 reserves of demand, none refused while the
    whole had room (admitted = max(40, those started before)); reconcile() clean."""
    import costguard.ledger.policies as policies

    # The processes' monotonic clock, moved by the operator: the announced delay passes at
    # once after the cut (the stale window is as short as it gets, leases still full)
    monotonic = [0.0]
    monkeypatch.setattr(policies, "time", SimpleNamespace(monotonic=lambda: monotonic[0]))
    _lease(local_ledger)
    processes = [Ledger(local_ledger.table, local_ledger.settings, clock=clock) for _ in range(4)]
    # Given leases that hold most of the limit unused: 20 tenants' first leases of 3 (a
    # first lease is the request), released at once
    for k, tenant in enumerate(TENANTS[:20]):
        held = processes[k % 4].reserve(tenant, estimate("3"), with_figures=False)
        processes[k % 4].release(tenant, held.reservation_id)
    assert _unused_in_leases(local_ledger) == 60  # more than the cut below leaves

    lock = threading.Lock()
    admitted: list[float] = []  # when each admitted reserve started (monotonic)
    in_force = [float("inf")]
    done = threading.Event()
    samples: list[tuple[Decimal, Decimal, Decimal]] = []

    def call(k: int) -> None:
        started = monotonic[0]
        ledger = processes[k % 4]
        try:
            ledger.reserve(TENANTS[k % 50], estimate("1"), ttl_seconds=3600, with_figures=False)
        except (QuotaExceeded, LedgerBusy):
            return
        with lock:
            admitted.append(started)

    def operator() -> None:
        while len(admitted) < 5:
            time.sleep(0.01)
        _lease(local_ledger, 40)
        monotonic[0] += policies.PLATFORM_FRESH_SECONDS + 0.001
        in_force[0] = monotonic[0]

    def sample() -> None:
        quota = QuotaDefinition(QuotaId.parse(Q), Decimal(LIMIT), leased=True)
        while not done.wait(0.05):
            pool = slot_for(quota.quota_id, "-", clock())
            snap = leasing.snapshot(local_ledger.table, quota, pool.base, pool.prefix)
            if not snap.consistent:
                continue
            spec = (snap.items.get(leasing.POLICY) or {})["quotas"][Q]
            whole = E.whole(snap.states)
            samples.append((Decimal(spec["limit_usd"]), whole.limit, whole.spent + whole.held))

    with ThreadPoolExecutor(34) as pool:
        sampling = pool.submit(sample)
        cutting = pool.submit(operator)
        list(pool.map(call, range(400)))
        cutting.result()
        done.set()
        sampling.result()

    before = sum(1 for started in admitted if started < in_force[0])
    assert samples and all(limit == g and used <= LIMIT for limit, g, used in samples), samples
    assert len(admitted) <= max(40, before), (len(admitted), before)
    assert len(admitted) == max(40, before)  # no refusal while the whole had room
    assert _whole(local_ledger) == (usd("40"), usd("0"), Decimal(len(admitted)))
    _consistent(local_ledger)


def _unused_in_leases(ledger: Ledger) -> Decimal:
    quota = QuotaDefinition(QuotaId.parse(Q), Decimal(LIMIT), leased=True)
    pool = slot_for(quota.quota_id, "-", ledger.now())
    snap = leasing.snapshot(ledger.table, quota, pool.base, pool.prefix)
    return sum((s.avail for s in snap.states[1:]), Decimal(0))

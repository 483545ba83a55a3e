"""The single-item reserve (D70–D72) under concurrency, on a DynamoDB Local of this module's
own: holds in the counter and holds in records side by side never pass a hard limit; a
process with a stale policy is refused by the counter and retries; an in-item hold that
expires is settled exactly once whoever races for it; a retried commit charges once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from costguard.errors import QuotaExceeded, ReservationNotHeld
from costguard.ledger import Ledger
from costguard.ledger.terms import ReservationRef
from costguard.models import Usage
from costguard.store.keys import records_pk

from tests.conftest import Clock
from tests.helpers import actual, estimate, quota_state, set_quota, usd
from tests.support.own_emulator import ddb_local  # noqa: F401 (the module's own emulator)

pytestmark = pytest.mark.ddblocal

T = "acme"
Q = "tenant:llm:month"


def _process(ledger: Ledger, clock: Clock | None = None) -> Ledger:
    """Another process on the same table: its own policy cache (and clock, if given)."""
    return Ledger(ledger.table, ledger.settings, clock=clock or ledger._clock)


def _open_the_period(ledger: Ledger, tenant: str = T) -> None:
    """The period's first write is a transaction: it creates the counter."""
    first = ledger.reserve(tenant, estimate("0.01"))
    ledger.release(tenant, first.reservation_id)


def test_mixed_paths_admit_exactly_the_limit(local_ledger: Ledger) -> None:
    """Invariant: $0.10 reserves committed at once against a $1 quota — some single-item
    (at most 4 live in the counter), some transactions (a full hold map, or attribution that
    forces one) — admit exactly 10, whatever the interleaving; the counter equals the
    records; both kinds of hold took part."""
    set_quota(local_ledger, T, Q, "1.00")
    _open_the_period(local_ledger)
    processes = [_process(local_ledger) for _ in range(4)]

    def attempt(i: int) -> str:
        ledger = processes[i % 4]
        usage = estimate("0.10", conversation_id="c") if i % 3 == 0 else estimate("0.10")
        try:
            r = ledger.reserve(T, usage, with_figures=False)
        except QuotaExceeded:
            return "refused"
        ledger.commit(T, r.reservation_id, actual("0.10"))
        return "single" if ReservationRef.parse(r.reservation_id).in_item else "transaction"

    with ThreadPoolExecutor(16) as pool:
        outcomes = Counter(pool.map(attempt, range(200)))

    assert outcomes["single"] + outcomes["transaction"] == 10
    assert outcomes["refused"] == 190
    assert outcomes["single"] > 0 and outcomes["transaction"] > 0
    q = quota_state(local_ledger, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (usd("1.00"), usd("0"))
    assert local_ledger.reconcile(T) == []


def test_live_holds_of_both_kinds_never_pass_the_limit(local_ledger: Ledger) -> None:
    """Invariant: held, not committed, 200 reserves of $0.10 against $1 admit exactly 10 (4
    at most in the counter, the rest with records)."""
    set_quota(local_ledger, T, Q, "1.00")
    _open_the_period(local_ledger)

    def attempt(_: int) -> str:
        try:
            r = local_ledger.reserve(T, estimate("0.10"), with_figures=False)
        except QuotaExceeded:
            return "refused"
        return "single" if ReservationRef.parse(r.reservation_id).in_item else "transaction"

    with ThreadPoolExecutor(16) as pool:
        outcomes = Counter(pool.map(attempt, range(200)))

    assert outcomes == {"single": 4, "transaction": 6, "refused": 190}
    assert quota_state(local_ledger, T, Q).reserved_usd == usd("1.00")
    assert local_ledger.reconcile(T) == []


def test_a_stale_policy_version_is_always_refused_and_retried(local_ledger: Ledger) -> None:
    """Invariant: once a policy write has returned, every reserve that starts afterwards in
    any process — each with a cache older than the write — counts against the quota it added
    (its id names the day counter), or is refused by it; none passes on the old policy."""
    set_quota(local_ledger, T, Q, "100")
    _open_the_period(local_ledger)
    processes = [_process(local_ledger) for _ in range(4)]
    for p in processes:  # each caches the policy as it is now
        r = p.reserve(T, estimate("0.01"))
        p.release(T, r.reservation_id)
    written = threading.Event()
    after: list[str] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        ledger = processes[i % 4]
        started_after = written.is_set()
        try:
            r = ledger.reserve(T, estimate("0.01"), with_figures=False)
        except QuotaExceeded as refused:
            assert started_after and refused.binding.quota_id == "tenant:llm:day"
            return
        ledger.release(T, r.reservation_id)
        if started_after:
            with lock:
                after.append(r.reservation_id)

    def write_policy() -> None:
        set_quota(local_ledger, T, "tenant:llm:day", "50")
        written.set()

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(attempt, i) for i in range(100)]
        writer = pool.submit(write_policy)
        futures += [pool.submit(attempt, i) for i in range(100, 300)]
        writer.result()
        for f in futures:
            f.result()

    assert after, "no reserve started after the policy write"
    plans = Counter(ReservationRef.parse(rid).terms.split("~")[2] for rid in after)
    assert set(plans) == {"td-l.tm-l"}  # both counters: a transaction, never the month alone
    assert local_ledger.reconcile(T) == []


def test_an_expired_in_item_hold_is_settled_exactly_once_under_racing_settlers(
    local_ledger: Ledger, clock: Clock
) -> None:
    """Invariant: 8 tenants × 4 in-item holds of $0.25, expired; two late commits, a release
    and two sweepers race for each: each hold is charged exactly once (spent = $1 a tenant),
    every late commit is refused with what expiry charged, counters equal records."""
    tenants = [f"tenant-{i}" for i in range(8)]
    held: list[tuple[str, str]] = []
    for t in tenants:
        local_ledger.create_tenant(t, t)
        set_quota(local_ledger, t, Q, "10")
        _open_the_period(local_ledger, t)
        for _ in range(4):
            r = local_ledger.reserve(t, estimate("0.25"), ttl_seconds=60)
            assert ReservationRef.parse(r.reservation_id).in_item
            held.append((t, r.reservation_id))
    clock.advance(seconds=61)
    processes = [_process(local_ledger) for _ in range(4)]
    charged: list[Decimal | None] = []

    def late_commit(i: int) -> None:
        t, rid = held[i % len(held)]
        try:
            processes[i % 4].commit(t, rid, actual("0.10"))
        except ReservationNotHeld as refused:
            assert refused.status == "expired"
            charged.append(refused.charged_usd)
            return
        raise AssertionError("a late commit was accepted")

    def release(i: int) -> None:
        t, rid = held[i % len(held)]
        assert processes[i % 4].release(t, rid).status == "expired"

    with ThreadPoolExecutor(16) as pool:
        work: list[Future[object]] = [pool.submit(late_commit, i) for i in range(2 * len(held))]
        work += [pool.submit(release, i) for i in range(len(held))]
        work += [pool.submit(p.expire_due) for p in processes[:2]]
        for f in work:
            f.result()

    assert charged == [usd("0.25")] * (2 * len(held))
    for t in tenants:
        q = quota_state(local_ledger, t, Q)
        assert (q.spent_usd, q.reserved_usd) == (usd("1.00"), usd("0")), t
        assert local_ledger.reconcile(t) == []
    assert local_ledger.expire_due() == 0


def test_a_commit_racing_the_sweeper_settles_each_hold_once(local_ledger: Ledger) -> None:
    """Invariant: a committer whose clock says the hold is alive races a sweeper whose clock
    says it expired: each hold is settled once — by the commit (charged $0.10) or by expiry
    (charged the $0.25 hold, and the commit is refused with it) — never both."""
    tenants = [f"sweep-{i}" for i in range(8)]
    for t in tenants:
        local_ledger.create_tenant(t, t)
        set_quota(local_ledger, t, Q, "10")
        _open_the_period(local_ledger, t)
    held = [
        (t, local_ledger.reserve(t, estimate("0.25"), ttl_seconds=60).reservation_id)
        for t in tenants
        for _ in range(4)
    ]
    base = local_ledger._clock()
    late = Clock(base + timedelta(seconds=60))  # expires_at <= now: due
    committer, sweeper = _process(local_ledger), _process(local_ledger, late)
    won: Counter[str] = Counter()
    lock = threading.Lock()

    def commit(i: int) -> None:
        t, rid = held[i]
        try:
            committer.commit(t, rid, actual("0.10"))
            outcome = "commit"
        except ReservationNotHeld as refused:
            assert (refused.status, refused.charged_usd) == ("expired", usd("0.25"))
            outcome = "expiry"
        with lock:
            won[outcome] += 1

    with ThreadPoolExecutor(16) as pool:
        work: list[Future[object]] = [pool.submit(commit, i) for i in range(len(held))]
        work += [pool.submit(sweeper.expire_due) for _ in range(4)]
        for f in work:
            f.result()

    assert won["commit"] + won["expiry"] == len(held)
    spent = sum((quota_state(local_ledger, t, Q).spent_usd for t in tenants), Decimal(0))
    assert spent == won["commit"] * usd("0.10") + won["expiry"] * usd("0.25")
    for t in tenants:
        assert quota_state(local_ledger, t, Q).reserved_usd == 0
        assert local_ledger.reconcile(t) == []


def test_concurrent_retries_of_one_commit_charge_it_once(local_ledger: Ledger) -> None:
    """Invariant: 16 concurrent deliveries of the same commit (a client retrying a lost
    answer) return one record and charge it once."""
    set_quota(local_ledger, T, Q, "10")
    _open_the_period(local_ledger)
    r = local_ledger.reserve(T, estimate("1"))
    assert ReservationRef.parse(r.reservation_id).in_item
    processes = [_process(local_ledger) for _ in range(4)]
    usage = Usage(resource="llm", cost_usd="0.75")

    with ThreadPoolExecutor(16) as pool:
        records = list(
            pool.map(lambda i: processes[i % 4].commit(T, r.reservation_id, usage), range(16))
        )

    assert {rec.record_id for rec in records} == {r.reservation_id.split("~", 1)[0]}
    assert {rec.cost_usd for rec in records} == {usd("0.75")}
    q = quota_state(local_ledger, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (usd("0.75"), usd("0"))
    items = local_ledger.table.query_all("pk = :p", {":p": records_pk(T)})
    assert Counter(i["status"] for i in items) == {"committed": 1, "released": 1}
    assert local_ledger.reconcile(T) == []

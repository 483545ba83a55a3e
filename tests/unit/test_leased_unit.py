"""A leased platform quota in the ledger, sequentially on moto (D78): a reserve holds on the
tenant's lease and writes no platform counter, a short or expired lease is renewed from the
pool, a pool that cannot serve recalls other leases, the sweeper returns expired leases,
settlements land on the lease, and figures, the 429 body and reconcile() read the whole."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from costguard.errors import InvalidRequest, QuotaExceeded
from costguard.ledger import Ledger
from costguard.ledger import escrow as E
from costguard.quotas import Mode, QuotaDefinition, QuotaId
from costguard.store.counters import lease_prefix

from tests.conftest import Clock
from tests.helpers import actual, estimate, usd

Q = "platform:all:month"
POOL = ("PLATFORM", "MONTH#2026-11")
LP = "l_all_"


def _put(ledger: Ledger, limit: str, leased: bool = True, **kw: Any) -> None:
    ledger.put_quota(None, QuotaDefinition(QuotaId.parse(Q), Decimal(limit), leased=leased, **kw))


def _lease(ledger: Ledger, tenant: str) -> dict[str, Any]:
    item = ledger.table.get((f"TENANT#{tenant}", "MONTH#2026-11")) or {}
    return {k[len(LP) :]: v for k, v in item.items() if k.startswith(LP)}


def _pool(ledger: Ledger) -> dict[str, Any]:
    item = ledger.table.get(POOL) or {}
    return {k[6:]: v for k, v in item.items() if k.startswith("q_all_")}


def _platform_figures(ledger: Ledger) -> tuple[Decimal, Decimal, Decimal]:
    q = next(s for s in ledger.quotas(None) if s.quota_id == Q)
    return q.limit_usd, q.spent_usd, q.reserved_usd


def _grants(ledger: Ledger, *tenants: str) -> Decimal:
    pool: Decimal = _pool(ledger).get("limit", Decimal(0))
    return pool + sum((_lease(ledger, t).get("limit", Decimal(0)) for t in tenants), Decimal(0))


def test_a_reserve_under_a_leased_quota_holds_on_its_lease_and_names_it(
    ledger: Ledger, clock: Clock
) -> None:
    _put(ledger, "100")
    rid = ledger.reserve("acme", estimate("1"), with_figures=False).reservation_id
    assert rid.split("~")[3] == "pml-a"
    lease = _lease(ledger, "acme")
    # The first reserve renewed an empty lease: the request from the pool, live for 60 s.
    assert (lease["limit"], lease["held"], lease["avail"]) == (usd("1"), usd("1"), usd("0"))
    assert _pool(ledger)["limit"] == usd("99")
    # A live lease that covers a reserve: the pool is not written.
    ledger.commit("acme", rid, actual("0.25"))
    pool_before = ledger.table.get(POOL)
    rid2 = ledger.reserve("acme", estimate("0.5"), with_figures=False).reservation_id
    assert ledger.table.get(POOL) == pool_before
    lease = _lease(ledger, "acme")
    assert (lease["spent"], lease["held"], lease["avail"]) == (usd("0.25"), usd("0.5"), usd("0.25"))
    ledger.release("acme", rid2)
    assert _lease(ledger, "acme")["avail"] == usd("0.75")
    assert _platform_figures(ledger) == (usd("100"), usd("0.25"), usd("0"))
    assert ledger.reconcile("acme") == []


def test_an_expired_lease_is_renewed_sized_from_what_it_was_given(
    ledger: Ledger, clock: Clock
) -> None:
    _put(ledger, "100")
    ledger.reserve("acme", estimate("4"), with_figures=False)
    clock.advance(seconds=61)  # the lease expired with 0 left
    ledger.reserve("acme", estimate("1"), with_figures=False)
    lease = _lease(ledger, "acme")
    # Renewed by the request + the grant so far = 1 + 4 (under a quarter of the pool's 96).
    assert (lease["limit"], lease["avail"]) == (usd("9"), usd("4"))
    assert lease["until"] > "2026-11-25T12:01:01"
    assert _grants(ledger, "acme") == usd("100")
    assert ledger.reconcile("acme") == []


def test_the_sweeper_returns_an_expired_lease_to_the_pool(ledger: Ledger, clock: Clock) -> None:
    _put(ledger, "100")
    rid = ledger.reserve("acme", estimate("1"), with_figures=False).reservation_id
    clock.advance(seconds=61)
    ledger.reserve("acme", estimate("1"), with_figures=False)  # lease now 1 + 1 renewed ...
    ledger.release("acme", rid)  # ... and 1 back from the release
    assert _lease(ledger, "acme")["avail"] > 0
    assert ledger.return_expired_leases() == 0  # still live: nothing returns
    clock.advance(seconds=61)
    assert ledger.return_expired_leases() == 1
    lease = _lease(ledger, "acme")
    assert (lease["avail"], lease["held"], lease["limit"]) == (usd("0"), usd("1"), usd("1"))
    assert _pool(ledger)["limit"] == usd("99")
    assert _grants(ledger, "acme") == usd("100")
    assert ledger.reconcile("acme") == []


def test_a_pool_that_cannot_serve_recalls_from_other_leases_and_refuses_only_the_whole(
    ledger: Ledger, clock: Clock
) -> None:
    _put(ledger, "10")
    ledger.reserve("acme", estimate("2"), with_figures=False)
    held = ledger.reserve("bolt", estimate("2"), with_figures=False).reservation_id
    ledger.release("bolt", held)  # bolt's lease keeps 2 unused
    # 6 in the pool, 2 on bolt's live lease: cove needs 8 and gets all of it.
    ledger.reserve("cove", estimate("8"), with_figures=False)
    assert _lease(ledger, "bolt")["avail"] == usd("0")
    assert _pool(ledger)["avail"] == usd("0")
    assert _grants(ledger, "acme", "bolt", "cove") == usd("10")
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve("dune", estimate("0.01"), with_figures=False)
    b = refused.value.binding
    # The 429 body shows the quota as one: all 10 held over three leases.
    assert (b.quota_id, b.limit_usd, b.held_usd, b.remaining_usd) == (
        Q, usd("10"), usd("10"), usd("0")
    )  # fmt: skip
    assert b.period_key == "MONTH#2026-11"
    for t in ("acme", "bolt", "cove", "dune"):
        assert ledger.reconcile(t) == []


def test_a_leased_hold_that_expires_settles_on_its_lease(ledger: Ledger, clock: Clock) -> None:
    _put(ledger, "10")
    ledger.reserve("acme", estimate("3"), ttl_seconds=30, with_figures=False)
    clock.advance(seconds=31)
    assert ledger.expire_due() == 1  # on_expiry: charge (the default) charges it in full
    lease = _lease(ledger, "acme")
    assert (lease["held"], lease["spent"], lease["avail"]) == (usd("0"), usd("3"), usd("0"))
    assert _platform_figures(ledger) == (usd("10"), usd("3"), usd("0"))
    assert ledger.reconcile("acme") == []


def test_an_unenforced_record_spends_on_the_lease(ledger: Ledger) -> None:
    _put(ledger, "1")
    ledger.record_usage("acme", actual("3"), enforce=False)
    lease = _lease(ledger, "acme")
    assert (lease["spent"], lease["avail"], lease["limit"]) == (usd("3"), usd("-3"), usd("0"))
    assert _platform_figures(ledger) == (usd("1"), usd("3"), usd("0"))
    assert ledger.reconcile("acme") == []


def test_a_limit_change_moves_the_pool_only(ledger: Ledger) -> None:
    _put(ledger, "10")
    ledger.reserve("acme", estimate("2"), with_figures=False)
    _put(ledger, "4")
    assert _pool(ledger)["limit"] == usd("2")
    assert _grants(ledger, "acme") == usd("4")
    assert ledger.reconcile("acme") == []


def test_only_a_hard_unsliced_platform_quota_is_leased_and_stays_leased(ledger: Ledger) -> None:
    with pytest.raises(InvalidRequest):
        _put(ledger, "10", mode=Mode.SOFT)
    with pytest.raises(InvalidRequest):
        _put(ledger, "10", slices=4)
    _put(ledger, "10")
    with pytest.raises(InvalidRequest):
        _put(ledger, "10", leased=False)


def test_reconcile_reports_a_forged_lease_grant(ledger: Ledger) -> None:
    _put(ledger, "10")
    ledger.reserve("acme", estimate("2"), with_figures=False)
    from costguard.store.writes import ItemWrite

    assert ledger.reconcile("acme") == []
    # When acme's lease is given $1 out of nothing (grant and avail together)
    forge = ItemWrite(key=("TENANT#acme", "MONTH#2026-11"))
    forge.add(LP + "limit", Decimal(1))
    forge.add(LP + "avail", Decimal(1))
    ledger.table.update(forge)
    # Then reconcile names the quota, the period and both sums
    assert ledger.reconcile("acme") == [
        "platform:all:month MONTH#2026-11: pool and lease grants sum to 11 != limit 10"
    ]
    # And a lease whose avail no longer adds up is named too
    broken = ItemWrite(key=("TENANT#acme", "MONTH#2026-11"))
    broken.add(LP + "limit", Decimal(-1))
    ledger.table.update(broken)
    assert ledger.reconcile("acme") == [
        "('TENANT#acme', 'MONTH#2026-11') l_all_avail 1 != 0",
        "platform:all:month MONTH#2026-11 lease of acme: avail 1 != 0",
    ]


def test_lease_plan_ids_round_trip() -> None:
    from costguard.ledger.terms import LEASED, ReservationRef

    rid = "01JD0000000000000000000000~a~1~pml-a.tm-a~"
    ref = ReservationRef.parse(rid)
    assert ref.slices == (LEASED, 0) and ref.reservation_id == rid
    assert lease_prefix("q_all_") == LP


def test_a_reserve_the_pool_cannot_serve_takes_back_an_expired_lease(
    ledger: Ledger, clock: Clock
) -> None:
    # Given acme's lease holding 6 unused and the pool empty after bolt took the rest
    _put(ledger, "10")
    held = ledger.reserve("acme", estimate("6"), with_figures=False).reservation_id
    ledger.release("acme", held)
    ledger.reserve("bolt", estimate("4"), with_figures=False)
    assert (_pool(ledger)["avail"], _lease(ledger, "acme")["avail"]) == (usd("0"), usd("6"))
    # When acme's lease has expired (no sweep yet) and cove needs 5
    clock.advance(seconds=61)
    ledger.reserve("cove", estimate("5"), with_figures=False)
    # Then cove's renewal took it from acme's expired lease, in its own transaction
    assert (_lease(ledger, "acme")["avail"], _lease(ledger, "acme")["limit"]) == (
        usd("1"), usd("1")
    )  # fmt: skip
    assert _lease(ledger, "cove")["limit"] == usd("5")
    assert _grants(ledger, "acme", "bolt", "cove") == usd("10")
    for t in ("acme", "bolt", "cove"):
        assert ledger.reconcile(t) == []


# ---------------------------------------------------------------- D94: no platform policy check
def _process(ledger: Ledger, clock: Clock) -> Ledger:
    """Another process on the same table and clock: its own policy cache."""
    return Ledger(ledger.table, ledger.settings, clock=clock)


def _actions(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str]]]:
    """The keys of every transaction the ledger writes, in order."""
    seen: list[list[tuple[str, str]]] = []
    transact = ledger.table.transact

    def spy(writes: Any) -> Any:
        seen.append([w.key for w in writes])
        return transact(writes)

    monkeypatch.setattr(ledger.table, "transact", spy)
    return seen


def _age_platform_read(ledger: Ledger, seconds: float) -> None:
    ledger._platform_read_at -= seconds


POLICY = ("PLATFORM", "POLICY")


def test_a_reserve_on_a_live_lease_checks_no_platform_policy_while_its_read_is_fresh(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(ledger, "10")
    writes = _actions(ledger, monkeypatch)
    reads: list[Any] = []
    get = ledger.table.get

    def spy(key: Any, **kw: Any) -> Any:
        reads.append(key)
        return get(key, **kw)

    monkeypatch.setattr(ledger.table, "get", spy)
    # Given acme's lease renewed twice (a renewal writes the pool: it checks the policy)
    ledger.reserve("acme", estimate("1"), with_figures=False)
    assert POLICY in writes[-1] and POOL in writes[-1]
    ledger.reserve("acme", estimate("1"), with_figures=False)  # lease now 1 + 2 granted
    assert POLICY in writes[-1] and POOL in writes[-1]
    # When acme reserves on its live lease with a platform read under 5 s old
    before = len(writes)
    third = ledger.reserve("acme", estimate("1"), with_figures=False).reservation_id
    # Then its one transaction is the lease and the record: no platform policy, no pool
    [keys] = writes[before:]
    assert POLICY not in keys and POOL not in keys
    assert ("TENANT#acme", "MONTH#2026-11") in keys
    ledger.release("acme", third)
    # And once its read is 5 s old the process reads the policy again (1 GetItem), no check
    reads.clear()
    _age_platform_read(ledger, 5.01)
    ledger.reserve("acme", estimate("1"), with_figures=False)
    assert reads.count(POLICY) == 1 and POLICY not in writes[-1]


def test_a_read_under_5_seconds_old_is_trusted_and_one_older_is_read_again(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import costguard.ledger.policies as policies

    _put(ledger, "10")
    now = [1000.0]
    monkeypatch.setattr(policies, "time", SimpleNamespace(monotonic=lambda: now[0]))
    ledger._platform_read_at = 0.0
    assert ledger._platform_announced().version == 1
    assert ledger._platform_read_at == 1000.0
    # A write by another process: the old read is trusted for exactly PLATFORM_FRESH_SECONDS
    _put(_process(ledger, clock), "20")
    now[0] = 1000.0 + policies.PLATFORM_FRESH_SECONDS
    assert ledger._platform_announced().version == 1
    now[0] += 0.001
    assert ledger._platform_announced().version == 2


def test_a_raise_keeps_the_lease_epoch_and_the_leases_serve_on(ledger: Ledger) -> None:
    _put(ledger, "10")
    ledger.reserve("acme", estimate("1"), with_figures=False)
    ledger.reserve("acme", estimate("1"), with_figures=False)
    granted = _lease(ledger, "acme")["limit"]
    _put(ledger, "20")
    ledger.reserve("acme", estimate("1"), with_figures=False)
    assert _lease(ledger, "acme")["limit"] == granted  # spent on the live lease, not renewed
    assert _lease(ledger, "acme")["epoch"] == 1 and _grants(ledger, "acme") == usd("20")


def test_a_cut_stops_leases_granted_before_it_once_in_force_and_never_passes_the_new_limit(
    ledger: Ledger, clock: Clock
) -> None:
    # Given acme's lease with 6 unused (pool 4) in a process that read the policy just now
    _put(ledger, "10")
    worker = _process(ledger, clock)
    worker.release("acme", worker.reserve("acme", estimate("6"), with_figures=False).reservation_id)
    assert (_lease(ledger, "acme")["avail"], _pool(ledger)["avail"]) == (usd("6"), usd("4"))
    # When the operator cuts the limit to 3 (announced: in force 5 s later)
    _put(ledger, "3")
    assert (_pool(ledger)["limit"], _pool(ledger)["avail"]) == (usd("-3"), usd("-3"))
    # Then within the 5 s the worker's live lease still serves (the old limit is in force)
    early = worker.reserve("acme", estimate("5"), with_figures=False).reservation_id
    assert _platform_figures(ledger) == (usd("3"), usd("0"), usd("5"))
    # And once the worker's read is 5 s old, acme's pre-cut lease is not spent: its renewal
    # returns what it has to the pool first, and the whole is over the new limit: refused
    _age_platform_read(worker, 5.01)
    with pytest.raises(QuotaExceeded) as refused:
        worker.reserve("acme", estimate("1"), with_figures=False)
    assert refused.value.binding.remaining_usd == usd("-2")
    # When the early hold is released, bolt can have what the new limit leaves: 3, no more
    worker.release("acme", early)
    worker.reserve("bolt", estimate("3"), with_figures=False)
    with pytest.raises(QuotaExceeded):
        worker.reserve("bolt", estimate("1"), with_figures=False)
    with pytest.raises(QuotaExceeded):
        worker.reserve("acme", estimate("1"), with_figures=False)
    # Then the pool's deficit was filled from acme's stale lease, every grant sums to 3
    assert _pool(ledger)["avail"] >= 0 and _grants(ledger, "acme", "bolt") == usd("3")
    assert _platform_figures(ledger) == (usd("3"), usd("0"), usd("3"))
    for t in ("acme", "bolt"):
        assert ledger.reconcile(t) == []


def test_a_process_that_read_after_the_cut_never_spends_a_lease_from_before(
    ledger: Ledger, clock: Clock
) -> None:
    _put(ledger, "10")
    ledger.release("acme", ledger.reserve("acme", estimate("8"), with_figures=False).reservation_id)
    _put(ledger, "5")
    fresh = _process(ledger, clock)  # its first read is after the cut
    fresh.reserve("acme", estimate("5"), with_figures=False)
    with pytest.raises(QuotaExceeded):
        fresh.reserve("acme", estimate("1"), with_figures=False)
    lease = _lease(ledger, "acme")
    assert (lease["epoch"], lease["limit"], lease["held"]) == (2, usd("5"), usd("5"))
    assert _pool(ledger)["avail"] == usd("0") and ledger.reconcile("acme") == []


def test_a_leased_quota_deleted_and_created_again_grants_the_new_limit(
    ledger: Ledger, clock: Clock
) -> None:
    # Given acme holding 4 on its lease, then the quota deleted and created again at 6
    _put(ledger, "10")
    ledger.reserve("acme", estimate("4"), with_figures=False)
    ledger.delete_quota(None, QuotaId.parse(Q))
    _put(ledger, "6")
    # Then the pool and the old lease grant exactly 6, and acme's hold counts in the whole
    assert _grants(ledger, "acme") == usd("6")
    assert _platform_figures(ledger) == (usd("6"), usd("0"), usd("4"))
    # And only the 2 left can be reserved, by anyone
    ledger.reserve("bolt", estimate("2"), with_figures=False)
    with pytest.raises(QuotaExceeded):
        ledger.reserve("acme", estimate("1"), with_figures=False)
    assert _grants(ledger, "acme", "bolt") == usd("6")
    for t in ("acme", "bolt"):
        assert ledger.reconcile(t) == []


def test_the_sweeper_returns_a_live_lease_of_an_older_epoch(ledger: Ledger) -> None:
    _put(ledger, "10")
    ledger.release("acme", ledger.reserve("acme", estimate("4"), with_figures=False).reservation_id)
    ledger.reserve("bolt", estimate("1"), with_figures=False)
    _put(ledger, "9")
    assert ledger.return_expired_leases() == 1  # acme's: live, of the epoch before the cut
    assert (_lease(ledger, "acme")["avail"], _lease(ledger, "bolt")["avail"]) == (0, 0)
    assert _pool(ledger)["avail"] == usd("8") and _grants(ledger, "acme", "bolt") == usd("9")


# ---------------------------------------------------------------- lease_moves, planned whole
def _states(*avail: str) -> list[E.SliceState]:
    return [E.SliceState(i, Decimal(a), Decimal(a)) for i, a in enumerate(avail)]


def test_a_renewal_fills_the_pools_deficit_before_it_gives() -> None:
    # pool −3 after a cut, acme (1) stale with 6, bolt (2) asks 2 with nothing
    plan = E.lease_moves(_states("-3", "6", "0"), 2, Decimal(2), Decimal(2))
    assert plan == E.LeaseMoves(Decimal(2), {1: Decimal(5)}, Decimal(0))
    assert plan.pool_delta == Decimal(3)  # the pool ends at 0


def test_a_stale_lease_gives_back_what_it_has_before_it_takes() -> None:
    plan = E.lease_moves(_states("-3", "6"), 1, Decimal(2), Decimal(4), stale=True)
    assert plan == E.LeaseMoves(Decimal(3), {}, Decimal(6))  # the pool's 3 after the return
    assert E.lease_moves(_states("-5", "6"), 1, Decimal(2), Decimal(2), stale=True) is None


def test_a_live_lease_that_covers_is_extended_from_a_pool_with_room_only() -> None:
    assert E.lease_moves(_states("-1", "3", "5"), 1, Decimal(2), Decimal(4)) == E.LeaseMoves(
        Decimal(0), {}
    )
    assert E.lease_moves(_states("9", "3"), 1, Decimal(2), Decimal(4)) == E.LeaseMoves(
        Decimal(4), {}
    )


def test_a_snapshot_past_98_leases_reads_again_when_a_grant_moved_while_it_read(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.ledger import leasing
    from costguard.ledger.terms import slot_for
    from costguard.store.writes import ItemWrite

    # Given 100 lessees of 1 each (the last two are read after the TransactGetItems), t-099's
    # lease unused and expired (written as renewals leave them)
    _put(ledger, "1000")
    tenants = [f"t-{i:03d}" for i in range(100)]
    pool_write = ItemWrite(key=POOL)
    pool_write.add("q_all_limit", Decimal(900))
    pool_write.add("q_all_avail", Decimal(900))
    pool_write.add(LP + "lessees", set(tenants))
    ledger.table.update(pool_write)
    for t in tenants:
        lease = ItemWrite(key=(f"TENANT#{t}", "MONTH#2026-11"))
        for field, value in (("limit", 1), ("avail", 1 if t == "t-099" else 0), ("epoch", 1)):
            lease.add(LP + field, Decimal(value))
        lease.add(LP + "held", Decimal(0 if t == "t-099" else 1))
        lease.sets.append(f"{lease.name(LP + 'until')} = {lease.value('2026-11-25T12:01:00Z')}")
        ledger.table.update(lease)
    clock.advance(seconds=61)
    # When the sweeper returns it to the pool while the snapshot reads the last leases
    batch_get = ledger.table.batch_get
    swept: list[int] = []

    def racing(keys: Any, **kw: Any) -> Any:
        if not swept:
            swept.append(0)
            swept[0] = leasing.sweep(ledger.table, [_quota()], clock())
        return batch_get(keys, **kw)

    monkeypatch.setattr(ledger.table, "batch_get", racing)
    pool = slot_for(QuotaId.parse(Q), "-", clock())
    snap = leasing.snapshot(ledger.table, _quota(), pool.base, pool.prefix)
    # Then the grant in flight was seen once: the read was made again after the move
    assert swept == [1] and snap.consistent
    assert E.whole(snap.states).limit == usd("1000") and len(snap.tenants) == 100


def _quota() -> QuotaDefinition:
    return QuotaDefinition(QuotaId.parse(Q), Decimal(1000), leased=True, lease_epoch=1)


@pytest.mark.parametrize("slices", [2, 4])
def test_a_sliced_tenant_quota_beside_a_leased_platform_quota_renews_the_lease(
    ledger: Ledger, slices: int
) -> None:
    # Given a leased platform quota and a tenant quota in slices: slice 0 shares the tenant's
    # counter of the platform period with the tenant's (still empty) lease
    _put(ledger, "100")
    tenant_quota = QuotaDefinition(QuotaId.parse("tenant:all:month"), usd("50"), slices=slices)
    ledger.put_quota("acme", tenant_quota)
    # When the tenant reserves and commits (its first spend renews the empty lease; the
    # slice covering the amount must not be read as the failure: it looped to LedgerBusy)
    for _ in range(3):
        rid = ledger.reserve("acme", estimate("1"), with_figures=False).reservation_id
        ledger.commit("acme", rid, actual("0.75"))
    # Then both quotas are charged exactly and the ledger reconciles
    assert _platform_figures(ledger) == (usd("100"), usd("2.25"), usd("0"))
    tenant = next(q for q in ledger.quotas("acme") if q.quota_id == "tenant:all:month")
    assert (tenant.spent_usd, tenant.reserved_usd) == (usd("2.25"), usd("0"))
    assert ledger.reconcile("acme") == []

"""A leased platform quota in the ledger, sequentially on moto (D78): a reserve holds on the
tenant's lease and writes no platform counter, a short or expired lease is renewed from the
pool, a pool that cannot serve recalls other leases, the sweeper returns expired leases,
settlements land on the lease, and figures, the 429 body and reconcile() read the whole."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from costguard.errors import InvalidRequest, QuotaExceeded
from costguard.ledger import Ledger
from costguard.ledger import escrow as E
from costguard.quotas import Mode, QuotaDefinition, QuotaId

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
    from costguard.ledger.plan import LEASED, ReservationRef

    rid = "01JD0000000000000000000000~a~1~pml-a.tm-a~"
    ref = ReservationRef.parse(rid)
    assert ref.slices == (LEASED, 0) and ref.reservation_id == rid
    assert E.lease_prefix("q_all_") == LP


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

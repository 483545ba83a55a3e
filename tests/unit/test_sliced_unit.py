"""A sliced quota in the ledger, sequentially on moto: ids name the slice, settlements land on
it, figures and the 429 body read the quota as one, a PUT reshards or cuts it in one
transaction, and `slices: 1` writes exactly what it always wrote."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger
from costguard.ledger import escrow as E
from costguard.ledger.terms import ReservationRef
from costguard.quotas import QuotaDefinition, QuotaId

from tests.helpers import actual, estimate, quota_state, usd

T = "acme"
Q = "tenant:llm:month"


def _put(ledger: Ledger, limit: str, slices: int) -> None:
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(limit), slices=slices))


def _slices(ledger: Ledger) -> dict[int, dict[str, Decimal]]:
    base = ("TENANT#acme", "MONTH#2026-11")
    items = ledger.table.batch_get([E.slice_key(base, i) for i in range(E.MAX_SLICES)])
    return {
        i: {k[6:]: v for k, v in item.items() if k.startswith("q_llm_")}
        for i in range(E.MAX_SLICES)
        if (item := items.get(E.slice_key(base, i)))
    }


def test_slices_one_stores_the_quota_exactly_as_before(ledger: Ledger) -> None:
    _put(ledger, "10", 1)
    spec = ledger.table.get(("TENANT#acme", "POLICY"))["quotas"][Q]  # type: ignore[index]
    assert set(spec) == {"limit_usd", "mode", "thresholds", "grace_pct"}
    rid = ledger.reserve(T, estimate("1"), with_figures=False).reservation_id
    assert rid.split("~")[3] == "tm-l"


def test_a_sliced_quota_spends_on_one_slice_and_reads_as_one(ledger: Ledger) -> None:
    _put(ledger, "8", 4)
    assert {i: s["limit"] for i, s in _slices(ledger).items()} == {i: usd("2") for i in range(4)}
    rid = ledger.reserve(T, estimate("1.5"), with_figures=False).reservation_id
    index = ReservationRef.parse(rid).slice_of(0)
    ledger.commit(T, rid, actual("0.5"))
    s = _slices(ledger)[index]
    assert (s["limit"], s["spent"], s["held"], s["avail"]) == (
        usd("2"), usd("0.5"), usd("0"), usd("1.5")
    )  # fmt: skip
    q = quota_state(ledger, T, Q)
    assert (q.limit_usd, q.spent_usd, q.remaining_usd) == (usd("8"), usd("0.5"), usd("7.5"))
    assert ledger.reconcile(T) == []


def test_a_reserve_larger_than_its_slice_borrows_and_the_last_cent_is_reachable(
    ledger: Ledger,
) -> None:
    _put(ledger, "8", 4)
    ledger.reserve(T, estimate("7"), with_figures=False)  # 2 on its slice + 5 borrowed
    ledger.reserve(T, estimate("1"), with_figures=False)  # wherever the last 1 is
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve(T, estimate("0.01"), with_figures=False)
    assert (refused.value.binding.limit_usd, refused.value.binding.remaining_usd) == (
        usd("8"), usd("0")
    )  # fmt: skip
    assert sum(s["limit"] for s in _slices(ledger).values()) == usd("8")
    assert ledger.reconcile(T) == []


def test_a_reshard_moves_only_unused_allowance(ledger: Ledger) -> None:
    _put(ledger, "8", 4)
    rid = ledger.reserve(T, estimate("1"), with_figures=False).reservation_id
    _put(ledger, "8", 2)
    slices = _slices(ledger)
    assert sum(s["limit"] for s in slices.values()) == usd("8")
    assert all(s["avail"] == 0 for i, s in slices.items() if i >= 2)
    ledger.release(T, rid)  # settles on its slice, even if that slice is retired
    q = quota_state(ledger, T, Q)
    assert (q.limit_usd, q.reserved_usd, q.remaining_usd) == (usd("8"), usd("0"), usd("8"))
    assert ledger.reconcile(T) == []


def test_a_limit_cut_below_what_is_held_refuses_until_the_whole_has_room(ledger: Ledger) -> None:
    _put(ledger, "8", 4)
    held = [ledger.reserve(T, estimate("1.5"), with_figures=False).reservation_id for _ in range(4)]
    _put(ledger, "3", 4)  # 6 held against 3
    assert _slices(ledger)[0]["avail"] < 0
    for rid in held[:2]:
        ledger.release(T, rid)  # 3 held: the whole has exactly nothing left
    with pytest.raises(QuotaExceeded):
        ledger.reserve(T, estimate("0.01"), with_figures=False)
    ledger.release(T, held[2])
    ledger.reserve(T, estimate("1.5"), with_figures=False)  # the returned 1.5, by a borrow
    q = quota_state(ledger, T, Q)
    assert (q.limit_usd, q.reserved_usd, q.remaining_usd) == (usd("3"), usd("3"), usd("0"))
    assert ledger.reconcile(T) == []


def test_reconcile_reports_a_forged_grant_and_a_broken_avail(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.store.writes import ItemWrite

    # Given $8 in 4 slices with spend on slice 1: consistent
    _put(ledger, "8", 4)
    monkeypatch.setattr(E, "pick", lambda n, rng=None: 1)
    rid = ledger.reserve(T, estimate("1"), with_figures=False).reservation_id
    ledger.commit(T, rid, actual("1"))
    assert ledger.reconcile(T) == []

    # When slice 3 is given $1 out of nothing (grant and avail together: the slice itself
    # still adds up, only the quota does not)
    forge = ItemWrite(key=E.slice_key(("TENANT#acme", "MONTH#2026-11"), 3))
    forge.add("q_llm_limit", Decimal(1))
    forge.add("q_llm_avail", Decimal(1))
    ledger.table.update(forge)

    # Then reconcile names the quota, the period and both sums
    assert ledger.reconcile(T) == [
        "tenant:llm:month MONTH#2026-11: slice grants sum to 9.000000 != limit 8"
    ]

    # And a slice whose avail no longer adds up is named too
    broken = ItemWrite(key=E.slice_key(("TENANT#acme", "MONTH#2026-11"), 2))
    broken.add("q_llm_limit", Decimal(-1))
    ledger.table.update(broken)
    assert ledger.reconcile(T) == [
        "tenant:llm:month MONTH#2026-11 slice 2: avail 2.000000 != 1.000000"
    ]


def test_figures_read_slice_by_slice_during_a_borrow_show_the_limit(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given $8 in 4 slices with $1 spent
    _put(ledger, "8", 4)
    rid = ledger.reserve(T, estimate("1"), with_figures=False).reservation_id
    ledger.commit(T, rid, actual("1"))

    # When the figures' read (item by item) sees slice 3 before a $2 borrow reached it and
    # its donor after
    read = ledger.table.batch_get

    def mid_borrow(keys: Any, consistent: bool = True) -> dict[Any, dict[str, Any]]:
        found: dict[Any, dict[str, Any]] = read(keys, consistent)
        key = E.slice_key(("TENANT#acme", "MONTH#2026-11"), 3)
        if key in found:
            found[key] = {**found[key], "q_llm_limit": found[key]["q_llm_limit"] - 2}
        return found

    monkeypatch.setattr(ledger.table, "batch_get", mid_borrow)

    # Then the quota still reads as its $8 limit, $7 remaining
    q = quota_state(ledger, T, Q)
    assert (q.limit_usd, q.spent_usd, q.remaining_usd) == (usd("8"), usd("1"), usd("7"))

"""The escrow's pure parts: shares, borrow moves and re-grant deltas (no DynamoDB)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from costguard.ledger import escrow as E
from hypothesis import given
from hypothesis import strategies as st

MONEY = st.decimals(min_value=0, max_value=10_000, places=6)
SLICES = st.integers(1, E.MAX_SLICES)
ZERO = Decimal(0)


def test_slice_zero_is_the_counter_itself_and_others_have_their_own_partition() -> None:
    base = ("TENANT#acme", "MONTH#2026-12")
    assert E.slice_key(base, 0) == base
    assert E.slice_key(base, 7) == ("TENANT#acme#S07", "MONTH#2026-12")
    with pytest.raises(ValueError):
        E.slice_key(base, 64)


def test_a_limit_cut_in_eight_gives_the_remainder_to_slice_zero() -> None:
    assert E.shares(Decimal(100), 8) == (Decimal("12.5"),) * 8
    cut = E.shares(Decimal("10"), 3)
    assert cut == (Decimal("3.333334"), Decimal("3.333333"), Decimal("3.333333"))


@given(total=MONEY, n=SLICES)
def test_shares_sum_exactly_to_the_total(total: Decimal, n: int) -> None:
    cut = E.shares(total, n)
    assert len(cut) == n and sum(cut, ZERO) == total and all(x >= 0 for x in cut)


@st.composite
def snapshots(draw: st.DrawFn) -> list[E.SliceState]:
    n = draw(st.integers(1, 16))
    avails = draw(st.lists(MONEY, min_size=n, max_size=n))
    return [E.SliceState(i, a, a) for i, a in enumerate(avails)]


@given(states=snapshots(), amount=MONEY, pick=st.integers(0, 15))
def test_a_borrow_is_refused_exactly_when_the_whole_cannot_cover(
    states: list[E.SliceState], amount: Decimal, pick: int
) -> None:
    """No false refusal, no over-admission: the moves bring the slice to the amount from
    siblings that have it, or says the whole cannot."""
    target = pick % len(states)
    moves = E.borrow_moves(states, target, amount, amount)
    whole = sum((s.avail for s in states), ZERO)
    if moves is None:
        assert whole < amount
        return
    assert whole >= amount
    avail = {s.index: s.avail for s in states}
    assert target not in moves
    for donor, x in moves.items():
        assert 0 < x <= avail[donor]
    assert avail[target] + sum(moves.values(), ZERO) >= amount


@given(states=snapshots(), limit=MONEY, n=SLICES)
def test_a_regrant_conserves_and_spreads_the_unused_allowance(
    states: list[E.SliceState], limit: Decimal, n: int
) -> None:
    grant = sum((s.grant for s in states), ZERO)
    deltas = E.regrant_deltas(states, limit, n)
    assert grant + sum(deltas.values(), ZERO) == limit  # Σ grants becomes the new limit
    after = {
        i: d + next((s.avail for s in states if s.index == i), ZERO) for i, d in deltas.items()
    }
    retired = [a for i, a in after.items() if i >= n]
    assert all(a == 0 for a in retired)
    if limit >= grant - sum((s.avail for s in states), ZERO):
        assert all(a >= 0 for a in after.values())
    else:
        assert [i for i, a in after.items() if a < 0] == [0]

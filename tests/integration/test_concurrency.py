"""Atomicity under concurrency, on DynamoDB Local (AWS's emulator, itself atomic).

moto is not safe under concurrent requests (lost updates), so every claim here runs against a
real server on loopback with many threads, and asserts exact totals.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from costguard.errors import QuotaExceeded, ReservationNotHeld
from costguard.ledger import Ledger

from tests.helpers import (
    actual,
    estimate,
    one_token_at_30_cents_per_million,
    quota_state,
    set_quota,
    usd,
)

T = "acme"


def _attempt(ledger: Ledger, amount: str, **kw: str) -> str | None:
    try:
        return ledger.reserve(T, estimate(amount, **kw), with_figures=False).reservation_id
    except QuotaExceeded:
        return None


def test_400_reservations_from_16_threads_stop_at_exactly_the_limit(local_ledger: Ledger) -> None:
    """Invariant: no interleaving of reserves takes a hard quota above its limit."""
    set_quota(local_ledger, T, "tenant:llm:month", "10")

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: _attempt(local_ledger, "0.10"), range(400)))

    assert sum(r is not None for r in results) == 100
    q = quota_state(local_ledger, T, "tenant:llm:month")
    assert (q.reserved_usd, q.remaining_usd) == (usd("10.00"), usd("0"))
    assert local_ledger.reconcile(T) == []


def test_ten_concurrent_two_dollar_operations_against_ten_dollars(local_ledger: Ledger) -> None:
    """The replaced system's headline scenario: exactly 5 succeed, spend is exactly $10.00."""
    set_quota(local_ledger, T, "tenant:all:month", "10")

    def reserve_and_commit(_: int) -> bool:
        rid = _attempt(local_ledger, "2")
        if rid is None:
            return False
        local_ledger.commit(T, rid, actual("2"))
        return True

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(reserve_and_commit, range(10)))

    assert outcomes.count(True) == 5
    assert quota_state(local_ledger, T, "tenant:all:month").spent_usd == usd("10.00")
    assert local_ledger.reconcile(T) == []


def test_tenant_and_user_quotas_binding_at_once(local_ledger: Ledger) -> None:
    """Invariant: every applicable quota holds; each user stops at its own, the tenant at its."""
    set_quota(local_ledger, T, "tenant:llm:day", "5")
    for u in ("u-1", "u-2", "u-3"):
        set_quota(local_ledger, T, f"user:{u}:llm:day", "2")

    with ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(
                lambda i: (
                    f"u-{i % 3 + 1}",
                    _attempt(local_ledger, "0.25", user_id=f"u-{i % 3 + 1}"),
                ),
                range(120),
            )
        )

    won = [u for u, r in results if r is not None]
    assert len(won) == 20  # the tenant's $5 binds first: 3 users × $2 = $6 > $5
    assert all(won.count(u) <= 8 for u in ("u-1", "u-2", "u-3"))
    assert quota_state(local_ledger, T, "tenant:llm:day").reserved_usd == usd("5.00")
    assert local_ledger.reconcile(T) == []


def test_commits_and_releases_racing_with_new_reservations(local_ledger: Ledger) -> None:
    """Invariant: spent + held never exceeds the limit, and the counters equal the records."""
    set_quota(local_ledger, T, "tenant:llm:month", "20")
    rng = random.Random(7)
    plans = [
        (rng.choice(["commit", "release"]), Decimal(rng.randint(1, 100)) / 100) for _ in range(300)
    ]

    def work(plan: tuple[str, Decimal]) -> Decimal:
        action, amount = plan
        rid = _attempt(local_ledger, "0.50")
        if rid is None:
            return Decimal(0)
        if action == "release":
            local_ledger.release(T, rid)
            return Decimal(0)
        local_ledger.commit(T, rid, actual(str(amount / 2)))
        return amount / 2

    with ThreadPoolExecutor(16) as pool:
        spent = sum(pool.map(work, plans), Decimal(0))

    q = quota_state(local_ledger, T, "tenant:llm:month")
    assert (q.spent_usd, q.reserved_usd) == (spent, Decimal(0))
    assert q.spent_usd <= usd("20")
    assert local_ledger.reconcile(T) == []


def test_a_commit_raced_five_times_counts_once(local_ledger: Ledger) -> None:
    set_quota(local_ledger, T, "tenant:llm:month", "10")
    rid = _attempt(local_ledger, "1")
    assert rid is not None

    with ThreadPoolExecutor(5) as pool:
        records = list(pool.map(lambda _: local_ledger.commit(T, rid, actual("0.7")), range(5)))

    assert {r.record_id for r in records} == {records[0].record_id}
    assert quota_state(local_ledger, T, "tenant:llm:month").spent_usd == usd("0.7")
    [day] = local_ledger.daily_rollups(T, local_ledger.now(), local_ledger.now())
    assert day.spent() == usd("0.7") and day.calls == 1


def test_commit_racing_release_settles_exactly_one_way(local_ledger: Ledger) -> None:
    set_quota(local_ledger, T, "tenant:llm:month", "100")
    rids = [_attempt(local_ledger, "1") for _ in range(40)]

    def settle(job: tuple[int, str | None]) -> str:
        i, rid = job
        assert rid is not None
        try:
            if i % 2:
                local_ledger.commit(T, rid, actual("1"))
                return "committed"
            return local_ledger.release(T, rid).status
        except ReservationNotHeld as refused:
            return f"refused:{refused.status}"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(settle, [(i, r) for r in rids for i in (0, 1)]))

    committed = outcomes.count("committed")
    assert committed + sum(o == "released" for o in outcomes) == 40
    q = quota_state(local_ledger, T, "tenant:llm:month")
    assert (q.spent_usd, q.reserved_usd) == (Decimal(committed), Decimal(0))
    assert local_ledger.reconcile(T) == []


def test_ten_thousand_tiny_costs_add_up_exactly(local_ledger: Ledger) -> None:
    """10,000 direct records of one token at $0.30/M ($0.0000003) sum to exactly $0.003."""
    set_quota(local_ledger, T, "tenant:llm:month", "1")
    one_token = one_token_at_30_cents_per_million(local_ledger)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: local_ledger.record_usage(T, one_token), range(10_000)))

    q = quota_state(local_ledger, T, "tenant:llm:month")
    assert q.spent_usd == Decimal("0.003")
    [day] = local_ledger.daily_rollups(T, local_ledger.now(), local_ledger.now())
    assert (day.spent(), day.calls) == (Decimal("0.003"), 10_000)


pytestmark = pytest.mark.ddblocal

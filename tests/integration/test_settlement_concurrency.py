"""No money escapes under concurrency, on DynamoDB Local.

200 threads reserving against a nearly exhausted quota with the estimates that let money slip
through before worst-case holds: no token counts, an estimate of $0, tiny estimates followed by
large commits. Exact totals afterwards.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from costguard.alerts import AlertBook, overrun_draft
from costguard.errors import InvalidRequest, QuotaExceeded
from costguard.ledger import Ledger
from costguard.models import Usage
from costguard.store.keys import records_pk

from tests.conftest import Clock
from tests.helpers import actual, estimate, quota_state, set_quota, usd

pytestmark = pytest.mark.ddblocal

T = "acme"
Q = "tenant:llm:month"
# gpt-4o: 1,000 input tokens at $2.50/M + its 16,384-token output maximum at $10/M
NO_CAP = Usage(resource="llm", provider="openai", model="gpt-4o", input_tokens=1_000)
NO_CAP_HOLD = usd("0.16634")


def test_200_reserves_without_token_counts_stop_at_the_limit(local_ledger: Ledger) -> None:
    """Invariant: a reserve with no output cap holds the model's worst case, so a $1 quota
    admits exactly floor(1 / 0.16634) = 6 of them, whatever the interleaving."""
    set_quota(local_ledger, T, Q, "1.00")

    def attempt(_: int) -> str:
        try:
            return local_ledger.reserve(T, NO_CAP, with_figures=False).reservation_id
        except QuotaExceeded:
            return "refused"

    with ThreadPoolExecutor(16) as pool:
        outcomes = Counter(
            "admitted" if r != "refused" else r for r in pool.map(attempt, range(200))
        )

    assert outcomes == {"admitted": 6, "refused": 194}
    q = quota_state(local_ledger, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (usd("0"), 6 * NO_CAP_HOLD)
    assert local_ledger.reconcile(T) == []


def test_200_zero_estimates_are_all_refused_and_change_nothing(local_ledger: Ledger) -> None:
    set_quota(local_ledger, T, Q, "0.01")

    def attempt(_: int) -> str | None:
        try:
            local_ledger.reserve(T, estimate("0"), with_figures=False)
        except InvalidRequest as invalid:
            return invalid.field
        return None

    with ThreadPoolExecutor(16) as pool:
        fields = Counter(pool.map(attempt, range(200)))

    assert fields == {"estimated_cost_usd": 200}
    q = quota_state(local_ledger, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (usd("0"), usd("0"))


def test_tiny_estimates_with_large_commits_record_every_overrun_and_alert_it_once(
    local_ledger: Ledger, clock: Clock
) -> None:
    """Invariants: every commit is recorded in full (spent = 0.05 × admitted); admitted spend
    ≤ limit + Σ overruns; each overrun alerted exactly once though every stream record is
    delivered twice, concurrently."""
    set_quota(local_ledger, T, Q, "1.00")

    def call(_: int) -> str | None:
        try:
            r = local_ledger.reserve(T, estimate("0.01"), with_figures=False)
        except QuotaExceeded:
            return None
        record = local_ledger.commit(T, r.reservation_id, actual("0.05"))
        assert record.overrun_usd == usd("0.04")
        return r.reservation_id.split("~", 1)[0]

    with ThreadPoolExecutor(16) as pool:
        admitted = [u for u in pool.map(call, range(200)) if u is not None]

    n = len(admitted)
    q = quota_state(local_ledger, T, Q)
    assert 1 <= n <= 100
    assert (q.spent_usd, q.reserved_usd) == (usd("0.05") * n, usd("0"))
    assert q.spent_usd <= usd("1.00") + usd("0.04") * n
    assert local_ledger.reconcile(T) == []

    book = AlertBook(local_ledger.table, clock)

    def deliver(ulid: str) -> int:
        new = local_ledger.table.get((records_pk(T), ulid), consistent=True)
        assert new is not None
        draft = overrun_draft({"pk": records_pk(T), "sk": ulid}, {**new, "status": "held"}, new)
        assert draft is not None
        return len(book.record([draft]))

    with ThreadPoolExecutor(16) as pool:
        created = sum(pool.map(deliver, admitted * 2))

    assert created == n
    alerts, _ = book.recent(T, limit=500)
    assert len(alerts) == n
    assert {a.details["overrun_usd"] for a in alerts if a.details} == {"0.040000"}


def test_concurrent_usage_unknown_commits_charge_each_hold_once(local_ledger: Ledger) -> None:
    """A stream cut seen by two retries at once: each hold is charged exactly once."""
    set_quota(local_ledger, T, Q, "10.00")
    ids = [local_ledger.reserve(T, estimate("0.10")).reservation_id for _ in range(40)]

    with ThreadPoolExecutor(16) as pool:
        costs = list(pool.map(lambda rid: local_ledger.commit(T, rid, None).cost_usd, ids * 3))

    assert costs == [usd("0.10")] * 120
    q = quota_state(local_ledger, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (Decimal("4.00"), usd("0"))
    assert local_ledger.reconcile(T) == []

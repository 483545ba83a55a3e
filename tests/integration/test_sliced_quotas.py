"""A sliced quota inside the ledger, on DynamoDB Local: the spend engine's reserve, commit,
release, figures, 429 body, reconcile() and quota PUT with `slices` (decisions D74–D77).

Invariants: exactly as many one-unit reserves are admitted as the limit has units, however
2,000 of them interleave (a refusal only when the quota as a whole is spent, and its 429 shows
the whole); figures and reconcile() are exact afterwards (reconcile() also sums the slices'
grants to the limit, and names a forged one); a reshard 8 → 16 → 4 in the middle of the spend
conserves the allowance.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger
from costguard.ledger import escrow as E
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.store.writes import ItemWrite

from tests.helpers import actual, estimate, quota_state, usd
from tests.support.own_emulator import ddb_local  # noqa: F401 (the module's own emulator)

T = "acme"
Q = "tenant:llm:month"


def _slice(ledger: Ledger, slices: int, limit: str = "100") -> None:
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(limit), slices=slices))


def _reserve(ledger: Ledger, refusals: list[QuotaExceeded]) -> str | None:
    try:
        return ledger.reserve(T, estimate("1"), with_figures=False).reservation_id
    except QuotaExceeded as refused:
        refusals.append(refused)
        return None


def test_2000_concurrent_reserves_on_8_slices_admit_exactly_100(local_ledger: Ledger) -> None:
    _slice(local_ledger, 8)
    refusals: list[QuotaExceeded] = []

    with ThreadPoolExecutor(32) as pool:
        ids = list(pool.map(lambda _: _reserve(local_ledger, refusals), range(2000)))

    admitted = [r for r in ids if r is not None]
    assert len(admitted) == 100 and len(refusals) == 1900
    assert len({r.split("~")[3] for r in admitted}) > 1  # the holds are on several slices
    # Every refusal shows the quota as one: all of it held, nothing left.
    assert {(r.binding.limit_usd, r.binding.remaining_usd) for r in refusals} == {
        (usd("100"), usd("0"))
    }
    q = quota_state(local_ledger, T, Q)
    assert (q.limit_usd, q.reserved_usd, q.remaining_usd) == (usd("100"), usd("100"), usd("0"))
    assert local_ledger.reconcile(T) == []


def test_commits_and_releases_racing_on_8_slices(local_ledger: Ledger) -> None:
    _slice(local_ledger, 8)
    lock = threading.Lock()
    committed = 0

    def call(k: int) -> None:
        nonlocal committed
        rid = _reserve(local_ledger, [])
        if rid is None:
            return
        if k % 2:
            local_ledger.commit(T, rid, actual("1"))
            with lock:
                committed += 1
        else:
            local_ledger.release(T, rid)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(call, range(2000)))

    q = quota_state(local_ledger, T, Q)
    assert (q.limit_usd, q.reserved_usd) == (usd("100"), usd("0"))
    assert q.spent_usd == Decimal(committed) == usd("100")
    assert local_ledger.reconcile(T) == []


def test_a_reshard_8_16_4_during_the_spend_conserves_it(local_ledger: Ledger) -> None:
    _slice(local_ledger, 8)
    started = threading.Event()
    refusals: list[QuotaExceeded] = []

    def reserve(k: int) -> str | None:
        if k == 300:
            started.set()
        return _reserve(local_ledger, refusals)

    def reshard() -> None:
        started.wait(30)
        _slice(local_ledger, 16)
        _slice(local_ledger, 4)

    with ThreadPoolExecutor(33) as pool:
        resharding = pool.submit(reshard)
        ids = list(pool.map(reserve, range(2000)))
        resharding.result()

    assert sum(r is not None for r in ids) == 100
    q = quota_state(local_ledger, T, Q)
    assert (q.limit_usd, q.reserved_usd, q.remaining_usd) == (usd("100"), usd("100"), usd("0"))
    assert local_ledger.reconcile(T) == []  # the slices' grants still sum to the limit

    # And a grant forged on a retired slice (its avail moved with it) is reported
    forge = ItemWrite(key=E.slice_key(("TENANT#acme", q.period_key), 9))
    forge.add("q_llm_limit", Decimal(1))
    forge.add("q_llm_avail", Decimal(1))
    local_ledger.table.update(forge)
    assert local_ledger.reconcile(T) == [
        f"{Q} {q.period_key}: slice grants sum to 101.000000 != limit 100"
    ]

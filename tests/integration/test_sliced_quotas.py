"""A sliced quota inside the ledger, on DynamoDB Local: the spend engine's reserve, commit,
release, figures, 429 body, reconcile() and quota PUT with `slices` (decisions D74–D77), and
the hot tenant's lanes: records, holds and day rollups spread by slice (D98).

Invariants: exactly as many one-unit reserves are admitted as the limit has units, however
2,000 of them interleave (a refusal only when the quota as a whole is spent, and its 429 shows
the whole); figures and reconcile() are exact afterwards (reconcile() also sums the slices'
grants to the limit, and names a forged one); a reshard 8 → 16 → 4 in the middle of the spend
conserves the allowance.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger
from costguard.ledger import escrow as E
from costguard.ledger.terms import ReservationRef
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.store.writes import ItemWrite
from costguard.usage import summary, usage_report

from tests.conftest import Clock
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


def test_lanes_list_count_and_reconcile_every_record_once_across_a_reshard(
    local_ledger: Ledger, clock: Clock
) -> None:
    """A hot tenant's lanes (D98): reserves on 8 slices, commits, releases and holds left to
    expire race a reshard 8 → 16 → 4. Invariant: every admitted reservation has exactly one
    record, in the lane its id names; record pages (one cursor across lanes), the day
    rollups summed over the lanes, usage, the quota's figures and reconcile() all agree with
    what was committed, before and after the sweeper charges the holds left to expire."""
    _slice(local_ledger, 8)
    started = threading.Event()
    lock = threading.Lock()
    committed: list[str] = []
    released: list[str] = []
    held: list[str] = []

    def call(k: int) -> None:
        if k == 150:
            started.set()
        user = f"u-{k % 5}"
        try:
            rid = local_ledger.reserve(
                T, estimate("1", user_id=user), with_figures=False, ttl_seconds=60
            ).reservation_id
        except QuotaExceeded:
            return
        if k % 3 == 0:
            local_ledger.commit(T, rid, actual("1", user_id=user))
            bucket = committed
        elif k % 3 == 1:
            local_ledger.release(T, rid)
            bucket = released
        else:
            bucket = held
        with lock:
            bucket.append(rid)

    def reshard() -> None:
        started.wait(30)
        _slice(local_ledger, 16)
        _slice(local_ledger, 4)

    with ThreadPoolExecutor(33) as pool:
        resharding = pool.submit(reshard)
        list(pool.map(call, range(600)))
        resharding.result()

    admitted = committed + released + held
    refs = {ReservationRef.parse(r).ulid: ReservationRef.parse(r) for r in admitted}
    assert len(refs) == len(admitted)
    assert len({ref.lane for ref in refs.values()}) > 4  # spread over many lanes
    assert local_ledger.lanes(T) == 16  # the widest the quota ever was
    day = clock.at.replace(hour=0, minute=0)
    end = day + timedelta(days=1)

    # Every record once, in its own lane
    records = local_ledger.records(T, day, end)
    assert [r.record_id for r in records] == sorted(str(u) for u in refs)
    assert all(local_ledger.table.get(ref.record_key(T)) is not None for ref in refs.values())

    # Pages of 7 settled records, one cursor across the lanes: each committed record once
    paged: list[str] = []
    after: str | None = None
    while True:
        page, after = local_ledger.settled_records(T, day, end, limit=7, after=after)
        paged.extend(r.record_id for r in page)
        if after is None:
            break
    assert paged == sorted(r.split("~")[0] for r in committed)

    def agrees(spent: int, reserved: int) -> None:
        [rollup] = local_ledger.daily_rollups(T, day, day)
        assert (rollup.spent(), rollup.calls) == (Decimal(spent), spent)
        report = usage_report(local_ledger, T, None, None, "user")
        assert (report.total_usd, report.calls) == (Decimal(spent), spent)
        assert sum(g.cost_usd for g in report.groups) == Decimal(spent)
        assert summary(local_ledger, T).month_to_date_usd == Decimal(spent)
        q = quota_state(local_ledger, T, Q)
        assert (q.spent_usd, q.reserved_usd) == (Decimal(spent), Decimal(reserved))
        assert local_ledger.reconcile(T) == []

    agrees(len(committed), len(held))
    assert committed and held and released

    # The sweeper finds the holds left in every lane's `holds` index partition
    clock.advance(seconds=61)
    assert local_ledger.expire_due() == len(held)
    agrees(len(committed) + len(held), 0)

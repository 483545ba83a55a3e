"""Escrow slices under real concurrency, on DynamoDB Local (moto loses updates under threads).

The protocol as costguard.ledger.escrow builds it (tests/support/escrow_driver.py composes it
as the ledger does): a quota of exactly 100 units in 8 slices, 2,000 concurrent reserves of
one unit. Invariants: exactly 100 admitted (a refusal only on a snapshot whose whole could not
cover it; an admission never past the limit), the slices' grants sum to the limit, every slice
has avail = grant − spent − held, and the figures afterwards are exact — also with commits and
releases racing, and with a reshard 8 → 16 → 4 in the middle; and a platform quota leased to
50 tenants.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from costguard.ledger import LedgerTable
from costguard.ledger import escrow as E
from costguard.settings import Settings
from costguard.store.writes import ItemWrite

from tests.support.escrow_driver import (
    BASE,
    PLATFORM_POLICY,
    POLICY,
    Driver,
    Held,
    LeaseDriver,
    P,
)
from tests.support.own_emulator import ddb_local  # noqa: F401 (the module's own emulator)

ONE = Decimal(1)
ZERO = Decimal(0)


def _driver(local_client: object, slices: int = 8) -> Driver:
    name = local_client.table_name  # type: ignore[attr-defined]
    table = LedgerTable(local_client, name, Settings(table_name=name))
    item = {"version": 1, "limit": Decimal(100), "slices": slices, "span": slices}
    table.put(ItemWrite(key=POLICY, kind="Put", item=item))
    return Driver(table, attempts=400)


def _whole(driver: Driver) -> tuple[E.Layout, list[E.SliceState]]:
    _, layout = driver.layout()
    items = driver.table.batch_get([E.slice_key(BASE, i) for i in range(E.MAX_SLICES)])
    assert set(items) <= {E.slice_key(BASE, i) for i in layout.indices}
    return layout, E.states_of(items, BASE, P, layout)


def _assert_consistent(driver: Driver) -> E.Whole:
    layout, states = _whole(driver)
    for s in states:
        if s.stored:
            assert s.avail == s.grant - s.spent - s.held, s
        assert s.avail >= 0, s
    whole = E.whole(states)
    assert whole.limit == layout.limit == Decimal(100)  # conservation
    assert whole.avail == whole.limit - whole.spent - whole.held
    return whole


def test_2000_concurrent_reserves_of_one_unit_admit_exactly_100(local_client: object) -> None:
    driver = _driver(local_client)

    with ThreadPoolExecutor(32) as pool:
        held = list(pool.map(lambda k: driver.reserve(ONE, k % 64), range(2000)))

    admitted = [h for h in held if h is not None]
    assert len(admitted) == 100
    assert {h.index for h in admitted} <= set(range(8))
    whole = _assert_consistent(driver)
    assert (whole.held, whole.spent, whole.avail) == (Decimal(100), ZERO, ZERO)
    assert driver.borrows > 0  # the last units were reached by borrowing


def test_commits_and_releases_racing_keep_the_whole_exact(local_client: object) -> None:
    """Half the admitted reserves are released (their unit comes back and is admitted again
    elsewhere), half committed at one unit: the spend stops at exactly 100."""
    driver = _driver(local_client)
    lock = threading.Lock()
    committed: list[Held] = []
    released = 0

    def call(k: int) -> None:
        nonlocal released
        h = driver.reserve(ONE, k % 64)
        if h is None:
            return
        if k % 2:
            driver.settle(h, ONE, "committed")
            with lock:
                committed.append(h)
        else:
            driver.settle(h, ZERO, "released")
            with lock:
                released += 1

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(call, range(2000)))

    whole = _assert_consistent(driver)
    assert whole.held == ZERO
    assert whole.spent == Decimal(len(committed)) == Decimal(100)  # every unit spent once
    assert released > 0


def test_a_reshard_8_16_4_in_the_middle_conserves_the_allowance(local_client: object) -> None:
    driver = _driver(local_client)
    rng = random.Random(21)
    picks = [rng.randrange(64) for _ in range(2000)]
    started = threading.Event()

    def reserve(k: int) -> Held | None:
        if k == 300:
            started.set()
        return driver.reserve(ONE, picks[k])

    def reshard() -> None:
        started.wait(30)
        driver.regrant(Decimal(100), 16)
        driver.regrant(Decimal(100), 4)

    with ThreadPoolExecutor(33) as pool:
        resharding = pool.submit(reshard)
        held = list(pool.map(reserve, range(2000)))
        resharding.result()

    assert sum(h is not None for h in held) == 100
    layout, _ = _whole(driver)
    assert (layout.slices, layout.span) == (4, 16)
    whole = _assert_consistent(driver)
    assert (whole.held, whole.avail) == (Decimal(100), ZERO)


def test_a_platform_quota_leased_to_50_tenants_never_goes_over(local_client: object) -> None:
    """Invariant: the pool's and the 50 leases' grants always sum to the platform limit and
    none is overdrawn, so however 2,000 concurrent reserves of one unit from 50 tenants
    interleave with renewals and recalls, exactly 100 are admitted."""
    name = local_client.table_name  # type: ignore[attr-defined]
    table = LedgerTable(local_client, name, Settings(table_name=name))
    table.put(
        ItemWrite(key=PLATFORM_POLICY, kind="Put", item={"version": 1, "limit": Decimal(100)})
    )
    tenants = tuple(f"t-{k:02d}" for k in range(50))
    driver = LeaseDriver(table, attempts=400, tenants=tenants)
    now, until = "2026-12-01T12:00:00.000000Z", "2026-12-01T12:01:00.000000Z"

    with ThreadPoolExecutor(32) as pool:
        held = list(
            pool.map(lambda k: driver.reserve(tenants[k % 50], ONE, now, until), range(2000))
        )

    assert sum(h is not None for h in held) == 100
    _, states = driver.snapshot(Decimal(100))
    assert sum(s.grant for s in states) == Decimal(100)
    assert all(s.avail == s.grant - s.spent - s.held and s.avail >= 0 for s in states)
    assert sum(s.held for s in states) == Decimal(100)
    assert states[0].held == ZERO  # nothing is ever held on the platform item itself
    assert driver.renewals < 2000  # most reserves ran on a lease, without the pool

"""Seeding under EventBridge's at-least-once delivery, on DynamoDB Local (atomic, unlike moto).

Each thread is its own Ledger (its own policy cache), as concurrent Lambda containers are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger, LedgerTable
from costguard.onboarding import Onboarded, Onboarding, TenantCreatedDetail, parse_plans
from costguard.store.keys import POLICY_SK, tenant_pk

from tests.helpers import estimate, quota, usd

PLANS = parse_plans(
    {
        "default": {
            "tenant:llm:month": "100",
            "tenant:sandbox:month": "50",
            "tenant:all:month": "150",
        }
    }
)
SEEDS = {
    "tenant:all:month": usd("150"),
    "tenant:llm:month": usd("100"),
    "tenant:sandbox:month": usd("50"),
}


def container(base: Ledger) -> Ledger:
    """Another warm Lambda container: same table, its own caches."""
    return Ledger(
        LedgerTable(base.table.client, base.table.name, base.settings),
        base.settings,
        clock=base._clock,
    )


def together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run every job at once (a barrier releases them together); exceptions are returned."""
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return job()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def seed(base: Ledger, detail: TenantCreatedDetail, event_id: str | None = None) -> Onboarded:
    return Onboarding(container(base), PLANS).seed(detail, event_id)


def operator_sets_llm_to_5(base: Ledger, tenant: str) -> None:
    container(base).put_quota(tenant, quota("tenant:llm:month", "5"))


def reserve_a_dollar(base: Ledger, tenant: str) -> bool:
    try:
        container(base).reserve(tenant, estimate("1"), with_figures=False)
    except QuotaExceeded:
        return False
    return True


def limits(ledger: Ledger, tenant: str) -> dict[str, Any]:
    return {q.quota_id: q.limit_usd for q in ledger.quotas(tenant)}


def test_16_concurrent_duplicates_seed_once(local_ledger: Ledger) -> None:
    """Invariant: however many copies of one event race, exactly one writes, the policy version
    moves by one, and the tenant ends with exactly the plan's quotas."""
    for tenant in ("acme", "globex", "initech"):
        if tenant != "globex":  # globex: an event for a tenant costguard never registered
            local_ledger.create_tenant(tenant, tenant.title())
        before = local_ledger.table.get((tenant_pk(tenant), POLICY_SK))
        detail = TenantCreatedDetail(tenant_id=tenant, plan="pro")

        results = together([partial(seed, local_ledger, detail, "evt-1") for _ in range(16)])

        assert all(isinstance(r, Onboarded) for r in results), results
        assert [r.result.first for r in results].count(True) == 1
        assert all(r.result.seeded == () for r in results if not r.result.first)
        after = local_ledger.table.get((tenant_pk(tenant), POLICY_SK))
        assert after is not None
        assert after["version"] == (before["version"] if before else 0) + 1
        assert limits(local_ledger, tenant) == SEEDS
        assert local_ledger.reconcile(tenant) == []


def test_duplicates_racing_an_operator_and_reserves_keep_the_operator_quota_and_the_counters(
    local_ledger: Ledger,
) -> None:
    """Invariant: seeding never replaces an operator's quota, whichever write lands first, and
    every counter still equals its records (avail = limit − spent − held) with reserves racing."""
    for round_ in range(4):
        tenant = f"t-race-{round_}"
        local_ledger.create_tenant(tenant, tenant)
        detail = TenantCreatedDetail(tenant_id=tenant)

        jobs: list[Callable[[], Any]] = [partial(seed, local_ledger, detail) for _ in range(8)]
        jobs += [partial(operator_sets_llm_to_5, local_ledger, tenant)]
        jobs += [partial(reserve_a_dollar, local_ledger, tenant) for _ in range(7)]
        results = together(jobs)

        assert not [r for r in results if isinstance(r, Exception)], results
        seeds = [r for r in results[:8] if isinstance(r, Onboarded)]
        assert [s.result.first for s in seeds].count(True) == 1
        assert limits(local_ledger, tenant) == {**SEEDS, "tenant:llm:month": usd("5")}
        assert local_ledger.reconcile(tenant) == []
        # and the limit binds from here on. (Holds taken under the seeded $100 before the
        # operator lowered it stay held: remaining may be negative, exactly as with put_quota.)
        llm = next(q for q in local_ledger.quotas(tenant) if q.quota_id == "tenant:llm:month")
        assert llm.remaining_usd == usd("5") - llm.reserved_usd
        assert reserve_a_dollar(local_ledger, tenant) is (llm.remaining_usd >= 1)

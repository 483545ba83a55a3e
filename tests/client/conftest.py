"""The client and CLI against the real runner (`make run`) on a free loopback port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from costguard_client import CostGuard
from costguard_client.models import QuotaList, QuotaState

from tests.e2e.conftest import ADMIN, Server, start_runner, stop_runner


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One runner (the default store, its own data folder) for the whole client suite; each
    test makes its own tenant."""
    # These tests set every quota they look at: no default quotas from TenantCreated (a
    # plan with no quotas; the seeds would add tenant:llm/sandbox/all:month to each tenant).
    runner = start_runner({"COSTGUARD_DEFAULT_QUOTAS": '{"default": {}}'})
    # Its output goes to a file (start_runner): nothing to drain, no pipe to fill.
    try:
        yield runner
    finally:
        stop_runner(runner)


@pytest.fixture
def admin(server: Server) -> Iterator[CostGuard]:
    with CostGuard(server.url, ADMIN) as guard:
        yield guard


@dataclass(frozen=True)
class TenantKey:
    tenant_id: str
    api_key: str


LLM_MONTH = "tenant:llm:month"


def quota(quotas: QuotaList, quota_id: str = LLM_MONTH) -> QuotaState:
    """One quota by id: a new tenant may also get its plan's default quotas (onboarding), so
    tests name the quota they mean rather than count them."""
    (found,) = (q for q in quotas.quotas if q.quota_id == quota_id)
    return found


def new_tenant(admin: CostGuard, limit_usd: str = "1.00") -> TenantKey:
    """A fresh tenant with a hard `tenant:llm:month` quota (the tightest: plan defaults, if any,
    are larger) and its own key."""
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"
    admin.create_tenant(tenant_id, tenant_id=tenant_id)
    admin.put_quota(tenant_id, "tenant:llm:month", limit_usd)
    return TenantKey(tenant_id, admin.issue_key(tenant_id).api_key)


@pytest.fixture
def tenant(admin: CostGuard) -> TenantKey:
    return new_tenant(admin)


@pytest.fixture
def guard(server: Server, tenant: TenantKey) -> Iterator[CostGuard]:
    """A client holding the tenant's own key, as an application would."""
    with CostGuard(server.url, tenant.api_key) as client:
        yield client

"""The client and CLI against the real runner (`make run`) on a free loopback port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from costguard_client import CostGuard

from tests.e2e.conftest import ADMIN, Server, start_runner, stop_runner


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One runner (embedded store) for the whole client suite; each test makes its own tenant."""
    runner = start_runner({})
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


def new_tenant(admin: CostGuard, limit_usd: str = "1.00") -> TenantKey:
    """A fresh tenant with a hard `tenant:llm:month` quota and its own key."""
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

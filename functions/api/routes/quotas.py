"""Quotas of a tenant (and its users) and of the platform."""

from __future__ import annotations

from decimal import Decimal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from costguard.errors import InvalidRequest
from costguard.models import QuotaList, QuotaPut, QuotaState, TenantSettings, TenantSettingsState
from costguard.quotas import Mode, QuotaDefinition, QuotaId, Scope

from functions.api.access import Access, route
from functions.api.deps import LedgerDep
from functions.api.problems import no_content, respond

router = Router()


def _definition(quota_id: str, body: QuotaPut, platform: bool) -> QuotaDefinition:
    qid = QuotaId.parse(quota_id)
    if (qid.scope is Scope.PLATFORM) != platform:
        where = (
            "/v1/platform/quotas"
            if qid.scope is Scope.PLATFORM
            else "/v1/tenants/{tenant_id}/quotas"
        )
        raise InvalidRequest(f"a {qid.scope} quota lives under {where}", field="quota_id")
    return QuotaDefinition(
        qid,
        body.limit_usd,
        Mode(body.mode),
        tuple(sorted(set(body.thresholds))),
        Decimal(body.grace_pct),
        slices=body.slices,
        leased=body.leased,
    )


def _states(states: list[QuotaState]) -> Response[QuotaList]:
    return respond(200, QuotaList(quotas=states))


@route(
    router,
    "GET",
    "/v1/tenants/<tenant_id>/quotas",
    Access.TENANT,
    tags=["quotas"],
    summary="Every quota of the tenant with live figures",
)
def list_tenant(tenant_id: str, ledger: LedgerDep) -> Response[QuotaList]:
    states = ledger.quotas(tenant_id)
    return respond(200, QuotaList(quotas=states, settings=ledger.tenant_settings(tenant_id)))


@route(
    router,
    "GET",
    "/v1/tenants/<tenant_id>/settings",
    Access.TENANT,
    tags=["quotas"],
    summary="The tenant's settings: overruns, expired holds, time zone",
)
def get_settings(tenant_id: str, ledger: LedgerDep) -> Response[TenantSettingsState]:
    return respond(200, ledger.tenant_settings(tenant_id))


@route(
    router,
    "PUT",
    "/v1/tenants/<tenant_id>/settings",
    Access.ADMIN,
    tags=["quotas"],
    summary=(
        "Set the tenant's settings (overrun: record|reject, on_expiry: charge|release, "
        "timezone: an IANA zone, from the next local midnight)"
    ),
)
def put_settings(
    tenant_id: str, body: TenantSettings, ledger: LedgerDep
) -> Response[TenantSettingsState]:
    return respond(200, ledger.put_tenant_settings(tenant_id, body))


@route(
    router,
    "PUT",
    "/v1/tenants/<tenant_id>/quotas/<quota_id>",
    Access.ADMIN,
    tags=["quotas"],
    summary="Create or replace a tenant or user quota",
)
def put_tenant(
    tenant_id: str, quota_id: str, body: QuotaPut, ledger: LedgerDep
) -> Response[QuotaState]:
    state = ledger.put_quota(tenant_id, _definition(quota_id, body, platform=False))
    return respond(200, state)


@route(
    router,
    "DELETE",
    "/v1/tenants/<tenant_id>/quotas/<quota_id>",
    Access.ADMIN,
    tags=["quotas"],
    summary="Delete a tenant or user quota",
    status_code=204,
)
def delete_tenant(tenant_id: str, quota_id: str, ledger: LedgerDep) -> Response[None]:
    qid = QuotaId.parse(quota_id)
    if qid.scope is Scope.PLATFORM:
        raise InvalidRequest("a platform quota lives under /v1/platform/quotas", field="quota_id")
    ledger.delete_quota(tenant_id, qid)
    return no_content()


@route(
    router,
    "GET",
    "/v1/platform/quotas",
    Access.ADMIN,
    tags=["quotas"],
    summary="Platform quotas (all tenants together) with live figures",
)
def list_platform(ledger: LedgerDep) -> Response[QuotaList]:
    return _states(ledger.quotas(None))


@route(
    router,
    "PUT",
    "/v1/platform/quotas/<quota_id>",
    Access.ADMIN,
    tags=["quotas"],
    summary="Create or replace a platform quota",
)
def put_platform(quota_id: str, body: QuotaPut, ledger: LedgerDep) -> Response[QuotaState]:
    state = ledger.put_quota(None, _definition(quota_id, body, platform=True))
    return respond(200, state)


@route(
    router,
    "DELETE",
    "/v1/platform/quotas/<quota_id>",
    Access.ADMIN,
    tags=["quotas"],
    summary="Delete a platform quota",
    status_code=204,
)
def delete_platform(quota_id: str, ledger: LedgerDep) -> Response[None]:
    qid = QuotaId.parse(quota_id)
    if qid.scope is not Scope.PLATFORM:
        raise InvalidRequest("only platform quotas live here", field="quota_id")
    ledger.delete_quota(None, qid)
    return no_content()

"""Administration: tenants, pause, API keys, pricing."""

from __future__ import annotations

import secrets
from bisect import bisect_right
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from costguard import telemetry
from costguard.errors import TenantExists
from costguard.ledger import Ledger
from costguard.models import (
    IssuedApiKey,
    ModelPriceOut,
    PauseRequest,
    PauseState,
    PriceList,
    PricePut,
    Tenant,
    TenantCreate,
    TierPriceOut,
)
from costguard.notify import PublishFailed
from costguard.onboarding import announce_tenant
from costguard.pricing.views import (
    model_price_out,
    operator_price,
    price_key,
    pricing_cursor,
    pricing_cursor_key,
)

from functions.api.access import Access, route
from functions.api.deps import EventsDep, IdempotencyKey, KeysDep, LedgerDep, OnboardingDep
from functions.api.problems import no_content, respond

router = Router()
logger = Logger(service="costguard-api", child=True)


@route(
    router,
    "POST",
    "/v1/tenants",
    Access.ADMIN,
    tags=["tenants"],
    summary="Register a tenant",
    status_code=201,
)
def create_tenant(
    body: TenantCreate,
    ledger: LedgerDep,
    events: EventsDep,
    onboarding: OnboardingDep,
    idempotency_key: IdempotencyKey = None,
) -> Response[Tenant]:
    tenant_id = body.tenant_id or f"t-{secrets.token_hex(6)}"
    try:
        created = ledger.create_tenant(tenant_id, body.name, body.plan, body.settings)
    except TenantExists:
        # A retried create (same Idempotency-Key and body) answers as the first one did.
        existing = ledger.tenant(tenant_id) if idempotency_key and body.tenant_id else None
        if existing is None or (existing.name, existing.plan) != (body.name, body.plan):
            raise
        created = existing
    # TenantCreated seeds the default quotas (functions/onboarding); a replayed create announces
    # again, which heals a first attempt that failed after the tenant was written (seeding is
    # idempotent). When the bus refuses the event, the defaults are seeded right here.
    announce_tenant(events, created, onboarding, unpublished=_report_unpublished)
    answer = Tenant(**created.to_item(), settings=ledger.tenant_settings(tenant_id))
    return respond(201, answer)


def _report_unpublished(exc: PublishFailed) -> None:
    """Not silent: an error log and the TenantCreatedUnpublished metric (alarmed in infra)."""
    logger.error(
        "TenantCreated not published; seeding the defaults here", extra={"reason": str(exc)}
    )
    telemetry.dimensional("TenantCreatedUnpublished", telemetry.MetricUnit.Count, 1)


def _pause(
    tenant_id: str, body: PauseRequest | None, paused: bool, ledger: Ledger
) -> Response[PauseState]:
    user_id = body.user_id if body else None
    ledger.set_paused(tenant_id, paused, user_id=user_id)
    return respond(200, PauseState(tenant_id=tenant_id, user_id=user_id, paused=paused))


@route(
    router,
    "POST",
    "/v1/tenants/<tenant_id>/pause",
    Access.ADMIN,
    tags=["tenants"],
    summary='Pause a tenant, or one user with {"user_id": ...}',
)
def pause(
    tenant_id: str, ledger: LedgerDep, body: PauseRequest | None = None
) -> Response[PauseState]:
    return _pause(tenant_id, body, True, ledger)


@route(
    router,
    "POST",
    "/v1/tenants/<tenant_id>/unpause",
    Access.ADMIN,
    tags=["tenants"],
    summary="Unpause a tenant, or one user",
)
def unpause(
    tenant_id: str, ledger: LedgerDep, body: PauseRequest | None = None
) -> Response[PauseState]:
    return _pause(tenant_id, body, False, ledger)


@route(
    router,
    "POST",
    "/v1/tenants/<tenant_id>/api-keys",
    Access.ADMIN,
    tags=["tenants"],
    summary="Issue a tenant API key (shown once)",
    status_code=201,
)
def issue_key(tenant_id: str, ledger: LedgerDep, keys: KeysDep) -> Response[IssuedApiKey]:
    issued = keys.issue(tenant_id, ledger.now())
    return respond(
        201,
        IssuedApiKey(
            key_id=issued.key_id, api_key=issued.api_key, role="tenant", tenant_id=issued.tenant_id
        ),
    )


@route(
    router,
    "DELETE",
    "/v1/tenants/<tenant_id>/api-keys/<key_id>",
    Access.ADMIN,
    tags=["tenants"],
    summary="Revoke a tenant API key",
    status_code=204,
)
def revoke_key(
    tenant_id: str, key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], keys: KeysDep
) -> Response[None]:
    keys.revoke(tenant_id, key_id)
    return no_content()


@route(
    router,
    "GET",
    "/v1/pricing",
    Access.ANY,
    tags=["pricing"],
    summary="Price schedules with their effective dates, paginated with `cursor`",
)
def list_prices(
    ledger: LedgerDep,
    provider: Annotated[
        str | None, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="one provider")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,400}$")] = None,
) -> Response[PriceList]:
    book = ledger.price_book()
    models = book.models(provider)
    start = 0
    if cursor is not None:
        after = pricing_cursor_key(cursor)
        start = bisect_right([price_key(p) for p in models], after)
    page = models[start : start + limit]
    more = start + limit < len(models)
    tiers = book.tiers() if cursor is None and provider is None else []
    body = PriceList(
        models=[model_price_out(p) for p in page],
        sandbox_tiers=[
            TierPriceOut(
                tier=t.tier,
                per_second_usd=t.per_second_usd,
                effective_from=t.effective_from,
                source=t.source,
            )
            for t in tiers
        ],
        next_cursor=pricing_cursor(price_key(page[-1])) if more and page else None,
    )
    return respond(200, body)


@route(
    router,
    "GET",
    "/v1/pricing/<provider>/<model>",
    Access.ANY,
    tags=["pricing"],
    summary="The schedule a model name is priced with now (dated, prefixed, platform names resolved)",
)
def get_price(
    provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")],
    model: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")],
    ledger: LedgerDep,
) -> Response[ModelPriceOut]:
    price = ledger.price_book().model_price(provider, model, ledger.now())
    return respond(200, model_price_out(price))


@route(
    router,
    "PUT",
    "/v1/pricing/<provider>/<model>",
    Access.ADMIN,
    tags=["pricing"],
    summary="A new model price from its effective date on (history is kept; it wins over the catalog's)",
)
def put_price(
    provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")],
    model: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")],
    body: PricePut,
    ledger: LedgerDep,
) -> Response[ModelPriceOut]:
    from costguard.errors import InvalidRequest

    if body.effective_from.tzinfo is None:
        raise InvalidRequest("effective_from needs a time zone (use Z)", field="effective_from")
    price = operator_price(provider, model, body)
    ledger.put_price(price)
    return respond(200, model_price_out(price))

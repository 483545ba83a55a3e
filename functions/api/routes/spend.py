"""Spending: reserve, commit, release, record, dry-run check."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from costguard.models import (
    CheckResult,
    CommitRequest,
    CostRecord,
    RecordRequest,
    Release,
    Reservation,
    ReserveRequest,
    Usage,
)

from functions.api.access import Access, route
from functions.api.deps import TENANT, IdempotencyKey, LedgerDep
from functions.api.problems import respond

router = Router()


@route(
    router,
    "POST",
    f"{TENANT}/reservations",
    Access.TENANT,
    tags=["spend"],
    summary="Hold the estimated cost against every applicable quota",
    status_code=201,
)
def reserve(
    tenant_id: str, body: ReserveRequest, ledger: LedgerDep, idempotency_key: IdempotencyKey = None
) -> Response[Reservation]:
    prefer = router.current_event.headers.get("prefer", "")
    reservation = ledger.reserve(
        tenant_id,
        body,
        ttl_seconds=body.ttl_seconds,
        with_figures="return=minimal" not in prefer,
        idempotency_key=idempotency_key,
    )
    return respond(201, reservation)


@route(
    router,
    "POST",
    f"{TENANT}/reservations/<reservation_id>/commit",
    Access.TENANT,
    tags=["spend"],
    summary="Record the actual usage and free the hold",
)
def commit(
    tenant_id: str,
    reservation_id: str,
    body: CommitRequest,
    ledger: LedgerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response[CostRecord]:
    usage = None if body.usage_unknown else body.usage()
    return respond(200, ledger.commit(tenant_id, reservation_id, usage))


@route(
    router,
    "DELETE",
    f"{TENANT}/reservations/<reservation_id>",
    Access.TENANT,
    tags=["spend"],
    summary="Release the hold",
)
def release(
    tenant_id: str, reservation_id: str, ledger: LedgerDep, idempotency_key: IdempotencyKey = None
) -> Response[Release]:
    result = ledger.release(tenant_id, reservation_id)
    return respond(
        200,
        Release(
            reservation_id=result.reservation_id,
            status=result.status,
            released_usd=result.released_usd,
        ),
    )


@route(
    router,
    "POST",
    f"{TENANT}/usage",
    Access.TENANT,
    tags=["spend"],
    summary="Record usage that had no reservation",
    status_code=201,
)
def record(
    tenant_id: str, body: RecordRequest, ledger: LedgerDep, idempotency_key: IdempotencyKey = None
) -> Response[CostRecord]:
    return respond(
        201,
        ledger.record_usage(tenant_id, body, enforce=body.enforce, idempotency_key=idempotency_key),
    )


@route(
    router,
    "POST",
    f"{TENANT}/quota-checks",
    Access.TENANT,
    tags=["spend"],
    summary="Dry run: would this estimate be allowed now?",
)
def check(tenant_id: str, body: Usage, ledger: LedgerDep) -> Response[CheckResult]:
    return respond(200, ledger.check(tenant_id, body))

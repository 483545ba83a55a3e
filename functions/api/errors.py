"""Every exception the API can meet, mapped to one problem+json response, in one place.

Status, type and title come from the error catalog (costguard.errors); the handlers here add
only what a problem carries beyond them (fields, headers, a fixed detail).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from costguard import telemetry
from costguard.errors import (
    INTERNAL,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    VALIDATION,
    CostguardError,
    IdempotencyMismatch,
    InvalidRequest,
    LedgerCorrupted,
    LedgerUnavailable,
    OverrunRejected,
    Paused,
    QuotaExceeded,
    ReservationNotHeld,
    Stage,
    Unauthenticated,
    UnknownPrice,
)
from costguard.money import format_usd

from functions.api.access import RULES
from functions.api.problems import quota_exceeded, refuse

logger = Logger(service="costguard-api")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods of the routes this path is one of, matched as the resolver matches them (a
    parameter outside the characters it takes is no route at all: 404, not 405)."""
    return sorted(method for method, rule in RULES if app._compile_regex(rule).match(path))


Shape = TypeVar("Shape", bound=Callable[[Any], Response[Any]])


def register(app: APIGatewayHttpResolver) -> None:
    def handles(types: type[Exception] | list[type[Exception]]) -> Callable[[Shape], Shape]:
        """Register a handler that also attributes the failure to its stage (logs, metric,
        the request's span) before shaping the problem."""

        def decorator(shape: Shape) -> Shape:
            def attributed(exc: Exception) -> Response[Any]:
                stage = telemetry.stage_of(
                    exc,
                    Stage.VALIDATION if isinstance(exc, RequestValidationError) else Stage.UNKNOWN,
                )
                telemetry.failed(stage, exc)
                logger.info(
                    "request refused", extra={"stage": stage.value, "error": type(exc).__name__}
                )
                return shape(exc)

            app.exception_handler(types)(attributed)
            return shape

        return decorator

    @handles(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return refuse(MALFORMED_JSON, "the body is not valid JSON")
        params = [
            {"name": _field(tuple(e.get("loc", ()))), "reason": str(e.get("msg", e.get("type")))}
            for e in errors
        ]
        names = ", ".join(p["name"] for p in params)
        return refuse(VALIDATION, f"invalid: {names}", invalid_params=params)

    @handles(CostguardError)
    def _domain(exc: CostguardError) -> Response[Any]:
        """Any domain error: its catalog entry, its message as the detail."""
        return refuse(exc.problem, str(exc) or exc.problem.title)

    @handles(InvalidRequest)
    def _domain_invalid(exc: InvalidRequest) -> Response[Any]:
        params = [{"name": exc.field or "body", "reason": exc.detail}]
        return refuse(exc.problem, exc.detail, invalid_params=params)

    @handles(UnknownPrice)
    def _unknown_price(exc: UnknownPrice) -> Response[Any]:
        name = "model" if exc.kind == "model" else "tier"
        return refuse(
            exc.problem,
            str(exc),
            invalid_params=[{"name": name, "reason": str(exc)}],
            nearest=exc.nearest,
        )

    @handles(QuotaExceeded)
    def _quota(exc: QuotaExceeded) -> Response[Any]:
        return quota_exceeded(exc, app.current_event.headers.get("accept", ""))

    @handles(Paused)
    def _paused(exc: Paused) -> Response[Any]:
        return refuse(exc.problem, str(exc), tenant_id=exc.tenant_id, user_id=exc.user_id)

    @handles(ReservationNotHeld)
    def _not_held(exc: ReservationNotHeld) -> Response[Any]:
        return refuse(
            exc.problem,
            f"the reservation is {exc.status}",
            reservation_status=exc.status,
            charged_usd=format_usd(exc.charged_usd) if exc.charged_usd is not None else None,
        )

    @handles(OverrunRejected)
    def _overrun_rejected(exc: OverrunRejected) -> Response[Any]:
        return refuse(
            exc.problem,
            str(exc),
            reservation_id=exc.reservation_id,
            charged_usd=format_usd(exc.charged_usd),
            actual_usd=format_usd(exc.actual_usd),
            record=exc.record.model_dump(mode="json", exclude_none=True),
        )

    @handles(IdempotencyMismatch)
    def _mismatch(exc: IdempotencyMismatch) -> Response[Any]:
        return refuse(exc.problem, "this Idempotency-Key was used with a different request")

    @handles(Unauthenticated)
    def _unauthenticated(exc: Unauthenticated) -> Response[Any]:
        return refuse(
            exc.problem,
            str(exc) or exc.problem.title,
            headers={"WWW-Authenticate": 'Bearer realm="costguard"'},
        )

    @handles(LedgerUnavailable)
    def _unavailable(exc: LedgerUnavailable) -> Response[Any]:
        logger.warning("ledger unavailable", extra={"reason": str(exc)})
        return refuse(
            exc.problem,
            "the ledger could not be reached; nothing was recorded",
            headers={"Retry-After": str(exc.retry_after_seconds)},
            retry_after_seconds=exc.retry_after_seconds,
        )

    @handles(LedgerCorrupted)
    def _corrupted(exc: LedgerCorrupted) -> Response[Any]:
        # Refused, for the request that met the item only (other tenants' items are others);
        # logged at error with the item, for the operator (reconcile() lists it too).
        tenant_id = (app.context.get("_route_args") or {}).get("tenant_id")
        logger.error("ledger item malformed", extra={"reason": str(exc), "tenant_id": tenant_id})
        return refuse(
            exc.problem,
            "an item this request needs is malformed in the ledger; nothing was changed",
        )

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        path = app.current_event.path
        methods = _allowed_methods(app, path)
        if methods:
            telemetry.failed(METHOD_NOT_ALLOWED.stage)
            return refuse(
                METHOD_NOT_ALLOWED,
                f"{app.current_event.http_method} is not allowed here",
                headers={"Allow": ", ".join(methods)},
            )
        telemetry.failed(NOT_FOUND.stage)
        return refuse(NOT_FOUND, "no such route")

    @handles(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return refuse(INTERNAL, "an unexpected error occurred")

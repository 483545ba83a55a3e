"""Every exception the API can meet, mapped to one problem+json response, in one place."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from costguard import telemetry
from costguard.auth import KeyNotFound
from costguard.errors import (
    IdempotencyMismatch,
    InvalidRequest,
    LedgerCorrupted,
    LedgerUnavailable,
    OverrunRejected,
    Paused,
    QuotaExceeded,
    QuotaNotFound,
    ReservationNotFound,
    ReservationNotHeld,
    TenantExists,
    UnknownPrice,
)
from costguard.money import format_usd

from functions.api.access import RULES, Forbidden, Unauthenticated
from functions.api.problems import problem, quota_exceeded

logger = Logger(service="costguard-api")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _allowed_methods(path: str) -> list[str]:
    return sorted(
        method for method, rule in RULES if re.fullmatch(re.sub(r"<\w+>", r"[^/]+", rule), path)
    )


def register(app: APIGatewayHttpResolver) -> None:
    def handles(types: type[Exception] | list[type[Exception]]) -> Any:
        """Register a handler that also attributes the failure to its stage (logs, metric,
        the request's span) before shaping the problem."""

        def decorator(shape: Any) -> Any:
            def attributed(exc: Exception) -> Response[Any]:
                stage = telemetry.stage_of(exc)
                telemetry.failed(stage, exc)
                logger.info(
                    "request refused", extra={"stage": stage.value, "error": type(exc).__name__}
                )
                return shape(exc)  # type: ignore[no-any-return]

            app.exception_handler(types)(attributed)
            return shape

        return decorator

    @handles(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON")
        params = [
            {"name": _field(tuple(e.get("loc", ()))), "reason": str(e.get("msg", e.get("type")))}
            for e in errors
        ]
        names = ", ".join(p["name"] for p in params)
        return problem(
            422, "validation", "Invalid request", f"invalid: {names}", invalid_params=params
        )

    @handles(InvalidRequest)
    def _domain_invalid(exc: InvalidRequest) -> Response[Any]:
        params = [{"name": exc.field or "body", "reason": exc.detail}]
        return problem(422, "validation", "Invalid request", exc.detail, invalid_params=params)

    @handles(UnknownPrice)
    def _unknown_price(exc: UnknownPrice) -> Response[Any]:
        name = "model" if exc.kind == "model" else "tier"
        return problem(
            422,
            "unknown-price",
            "Unknown price",
            str(exc),
            invalid_params=[{"name": name, "reason": str(exc)}],
            nearest=exc.nearest,
        )

    @handles(QuotaExceeded)
    def _quota(exc: QuotaExceeded) -> Response[Any]:
        return quota_exceeded(exc, app.current_event.headers.get("accept", ""))

    @handles(Paused)
    def _paused(exc: Paused) -> Response[Any]:
        return problem(
            423, "paused", "Paused", str(exc), tenant_id=exc.tenant_id, user_id=exc.user_id
        )

    @handles([ReservationNotFound, QuotaNotFound, KeyNotFound])
    def _not_found(exc: Exception) -> Response[Any]:
        return problem(404, "not-found", "Not found", str(exc) or "not found")

    @handles(ReservationNotHeld)
    def _not_held(exc: ReservationNotHeld) -> Response[Any]:
        return problem(
            409,
            "reservation-not-held",
            "Reservation not held",
            f"the reservation is {exc.status}",
            reservation_status=exc.status,
            **({"charged_usd": format_usd(exc.charged_usd)} if exc.charged_usd is not None else {}),
        )

    @handles(OverrunRejected)
    def _overrun_rejected(exc: OverrunRejected) -> Response[Any]:
        return problem(
            409,
            "overrun-rejected",
            "Overrun rejected",
            str(exc),
            reservation_id=exc.reservation_id,
            charged_usd=format_usd(exc.charged_usd),
            actual_usd=format_usd(exc.actual_usd),
            record=exc.record.model_dump(mode="json", exclude_none=True),
        )

    @handles(TenantExists)
    def _exists(exc: TenantExists) -> Response[Any]:
        return problem(409, "tenant-exists", "Tenant exists", str(exc))

    @handles(IdempotencyMismatch)
    def _mismatch(exc: IdempotencyMismatch) -> Response[Any]:
        return problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used with a different request",
        )

    @handles(Unauthenticated)
    def _unauthenticated(exc: Unauthenticated) -> Response[Any]:
        return problem(
            401,
            "unauthenticated",
            "Unauthenticated",
            str(exc),
            headers={"WWW-Authenticate": 'Bearer realm="costguard"'},
        )

    @handles(Forbidden)
    def _forbidden(exc: Forbidden) -> Response[Any]:
        return problem(403, "forbidden", "Forbidden", str(exc))

    @handles(LedgerUnavailable)
    def _unavailable(exc: LedgerUnavailable) -> Response[Any]:
        logger.warning("ledger unavailable", extra={"reason": str(exc)})
        return problem(
            503,
            "ledger-unavailable",
            "Ledger unavailable",
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
        return problem(
            500,
            "ledger-corrupted",
            "Ledger corrupted",
            "an item this request needs is malformed in the ledger; nothing was changed",
        )

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        telemetry.failed(telemetry.Stage.VALIDATION)
        path = app.current_event.path
        methods = _allowed_methods(path)
        if methods:
            return problem(
                405,
                "method-not-allowed",
                "Method not allowed",
                f"{app.current_event.http_method} is not allowed here",
                headers={"Allow": ", ".join(methods)},
            )
        return problem(404, "not-found", "Not found", "no such route")

    @handles(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return problem(500, "internal", "Internal error", "an unexpected error occurred")

"""Typed domain errors and their catalog: what each one is for a caller and for an operator.

Every error class declares its `problem` (HTTP status, problem type, title) and the `stage`
of a request's or an event's life it belongs to. The HTTP mapper (functions/api/errors.py),
the OpenAPI document's error responses (functions/api/document.py) and telemetry's failure
stages all read this catalog, so a new error is described once, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar


class Stage(StrEnum):
    """Where in a request's or an event's life a failure happened."""

    AUTH = "auth"
    VALIDATION = "validation"
    PRICING = "pricing"
    QUOTA = "quota"
    LEDGER_WRITE = "ledger_write"
    STREAM = "stream"
    PUBLISH = "publish"
    SCHEDULE = "schedule"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Problem:
    """One RFC 9457 problem type: its status, the last segment of its `type` URI, its title,
    and the stage a failure of this kind is attributed to."""

    status: int
    type: str
    title: str
    stage: Stage


# Refusals that are not domain errors: the HTTP layer answers them itself, from here.
MALFORMED_JSON = Problem(400, "malformed-json", "Malformed JSON", Stage.VALIDATION)
UNAUTHENTICATED = Problem(401, "unauthenticated", "Unauthenticated", Stage.AUTH)
FORBIDDEN = Problem(403, "forbidden", "Forbidden", Stage.AUTH)
NOT_FOUND = Problem(404, "not-found", "Not found", Stage.VALIDATION)
METHOD_NOT_ALLOWED = Problem(405, "method-not-allowed", "Method not allowed", Stage.VALIDATION)
BODY_TOO_LARGE = Problem(413, "body-too-large", "Body too large", Stage.VALIDATION)
VALIDATION = Problem(422, "validation", "Invalid request", Stage.VALIDATION)
INTERNAL = Problem(500, "internal", "Internal error", Stage.UNKNOWN)


class CostguardError(Exception):
    """Base of every error the domain raises on purpose. Each subclass declares its `problem`
    (tests/api/test_error_catalog.py walks them all)."""

    code = "costguard_error"
    problem: ClassVar[Problem] = INTERNAL


class InvalidRequest(CostguardError):
    """The caller sent something the domain cannot act on (a 4xx)."""

    code = "invalid_request"
    problem = VALIDATION

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class UnknownPrice(CostguardError):
    """No price in force for this model or sandbox tier at that time (a 4xx, never a zero)."""

    code = "unknown_price"
    problem = Problem(422, "unknown-price", "Unknown price", Stage.PRICING)

    def __init__(self, kind: str, name: str, nearest: list[str] | None = None) -> None:
        hint = f"; nearest known: {', '.join(nearest)}" if nearest else ""
        super().__init__(f"no price for {kind} {name!r}{hint}")
        self.kind = kind
        self.name = name
        self.nearest = list(nearest or [])


@dataclass(frozen=True)
class QuotaFigures:
    """A quota's live figures at one moment."""

    quota_id: str
    scope: str
    resource: str
    period: str
    mode: str
    limit_usd: Decimal
    spent_usd: Decimal
    held_usd: Decimal
    period_key: str
    resets_at: str
    retry_after_seconds: int

    @property
    def remaining_usd(self) -> Decimal:
        return self.limit_usd - self.spent_usd - self.held_usd


class QuotaExceeded(CostguardError):
    """A hard quota (or a soft one past its grace) would go over its limit."""

    code = "quota_exceeded"
    problem = Problem(429, "quota-exceeded", "Quota exceeded", Stage.QUOTA)

    def __init__(self, binding: QuotaFigures, requested_usd: Decimal) -> None:
        super().__init__(f"quota {binding.quota_id} would be exceeded")
        self.binding = binding
        self.requested_usd = requested_usd


class Paused(CostguardError):
    """The tenant, or the user within it, is paused by an operator."""

    code = "paused"
    problem = Problem(423, "paused", "Paused", Stage.QUOTA)

    def __init__(self, tenant_id: str, user_id: str | None = None) -> None:
        who = f"user {user_id!r} of tenant {tenant_id!r}" if user_id else f"tenant {tenant_id!r}"
        super().__init__(f"{who} is paused")
        self.tenant_id = tenant_id
        self.user_id = user_id


class ReservationNotFound(CostguardError):
    code = "reservation_not_found"
    problem = NOT_FOUND


class ReservationNotHeld(CostguardError):
    """The reservation was already released, expired, or committed with another body."""

    code = "reservation_not_held"
    problem = Problem(409, "reservation-not-held", "Reservation not held", Stage.VALIDATION)

    def __init__(
        self, reservation_id: str, status: str, charged_usd: Decimal | None = None
    ) -> None:
        super().__init__(f"reservation is {status}")
        self.reservation_id = reservation_id
        self.status = status
        self.charged_usd = charged_usd
        """An expired hold that was charged in full (`on_expiry: charge`): what was charged."""


class IdempotencyMismatch(CostguardError):
    """The same idempotency key was used with a different request."""

    code = "idempotency_mismatch"
    problem = Problem(422, "idempotency-key-reused", "Idempotency-Key reused", Stage.VALIDATION)


class QuotaNotFound(CostguardError):
    code = "quota_not_found"
    problem = NOT_FOUND


class TenantExists(CostguardError):
    code = "tenant_exists"
    problem = Problem(409, "tenant-exists", "Tenant exists", Stage.VALIDATION)


class LedgerUnavailable(CostguardError):
    """The ledger could not be reached or kept refusing; nothing was recorded twice."""

    code = "ledger_unavailable"
    problem = Problem(503, "ledger-unavailable", "Ledger unavailable", Stage.LEDGER_WRITE)

    def __init__(self, detail: str, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class LedgerCorrupted(CostguardError):
    """An item in the ledger does not have the shape the ledger writes."""

    code = "ledger_corrupted"
    problem = Problem(500, "ledger-corrupted", "Ledger corrupted", Stage.LEDGER_WRITE)


class Unauthenticated(CostguardError):
    """No API key, or one that is not (or no longer) valid."""

    code = "unauthenticated"
    problem = UNAUTHENTICATED


class Forbidden(CostguardError):
    """A valid key that may not do this (another tenant's, or a tenant key on an admin route)."""

    code = "forbidden"
    problem = FORBIDDEN


def catalog() -> frozenset[Problem]:
    """Every problem type there is: the protocol refusals above and each error class's (the
    classes imported so far: the API imports all it can raise)."""
    found = {
        MALFORMED_JSON,
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        BODY_TOO_LARGE,
        VALIDATION,
        INTERNAL,
    }
    pending: list[type[CostguardError]] = [CostguardError]
    while pending:
        cls = pending.pop()
        found.add(cls.problem)
        pending.extend(cls.__subclasses__())
    return frozenset(found)


class OverrunRejected(CostguardError):
    """A commit above its hold, for a tenant whose `overrun` setting is `reject`: the hold was
    charged instead of the reported cost (a 409)."""

    code = "overrun_rejected"
    problem = Problem(409, "overrun-rejected", "Overrun rejected", Stage.QUOTA)

    def __init__(self, record: Any) -> None:
        super().__init__(
            f"the commit's cost {record.actual_usd} is above its hold {record.cost_usd}; "
            "this tenant rejects overruns, so the hold was charged"
        )
        self.record = record
        self.reservation_id = record.reservation_id
        self.charged_usd: Decimal = record.cost_usd
        self.actual_usd: Decimal = record.actual_usd

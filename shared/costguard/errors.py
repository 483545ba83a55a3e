"""Typed domain errors. The API maps each to one problem+json type in one place."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class CostguardError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "costguard_error"


class InvalidRequest(CostguardError):
    """The caller sent something the domain cannot act on (a 4xx)."""

    code = "invalid_request"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class UnknownPrice(CostguardError):
    """No price in force for this model or sandbox tier at that time (a 4xx, never a zero)."""

    code = "unknown_price"

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

    def __init__(self, binding: QuotaFigures, requested_usd: Decimal) -> None:
        super().__init__(f"quota {binding.quota_id} would be exceeded")
        self.binding = binding
        self.requested_usd = requested_usd


class Paused(CostguardError):
    """The tenant, or the user within it, is paused by an operator."""

    code = "paused"

    def __init__(self, tenant_id: str, user_id: str | None = None) -> None:
        who = f"user {user_id!r} of tenant {tenant_id!r}" if user_id else f"tenant {tenant_id!r}"
        super().__init__(f"{who} is paused")
        self.tenant_id = tenant_id
        self.user_id = user_id


class ReservationNotFound(CostguardError):
    code = "reservation_not_found"


class ReservationNotHeld(CostguardError):
    """The reservation was already released, expired, or committed with another body."""

    code = "reservation_not_held"

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


class QuotaNotFound(CostguardError):
    code = "quota_not_found"


class TenantExists(CostguardError):
    code = "tenant_exists"


class LedgerUnavailable(CostguardError):
    """The ledger could not be reached or kept refusing; nothing was recorded twice."""

    code = "ledger_unavailable"

    def __init__(self, detail: str, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class LedgerCorrupted(CostguardError):
    """An item in the ledger does not have the shape the ledger writes."""

    code = "ledger_corrupted"


class OverrunRejected(CostguardError):
    """A commit above its hold, for a tenant whose `overrun` setting is `reject`: the hold was
    charged instead of the reported cost (a 409)."""

    code = "overrun_rejected"

    def __init__(self, record: Any) -> None:
        super().__init__(
            f"the commit's cost {record.actual_usd} is above its hold {record.cost_usd}; "
            "this tenant rejects overruns, so the hold was charged"
        )
        self.record = record
        self.reservation_id = record.reservation_id
        self.charged_usd: Decimal = record.cost_usd
        self.actual_usd: Decimal = record.actual_usd

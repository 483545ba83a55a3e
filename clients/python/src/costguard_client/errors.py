"""Typed errors: every failure of the client is a `CostGuardError`.

Refusals the API gives (RFC 9457 problem+json) map by status and problem `type`; failures on
this side (bad arguments, an answer that is not what the API sends, a commit that could not be
landed) have their own classes, so `except CostGuardError` is the one catch-all an app needs.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from costguard_client.models import CommitRequest, CostRecord, RecordRequest


E = TypeVar("E", bound="CostGuardError")


class CostGuardError(Exception):
    """A problem the API answered, or one met on this side before or after asking it.

    `status` is the HTTP status (None when no answer came or the failure is local),
    `problem` the whole problem+json body as the server sent it (or one made up here).
    """

    def __init__(self, status: int | None, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(self._message())

    @property
    def type(self) -> str:
        return str(self.problem.get("type", "about:blank"))

    @property
    def title(self) -> str:
        return str(self.problem.get("title", "Error"))

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail", ""))

    def _message(self) -> str:
        head = f"{self.status} {self.title}" if self.status is not None else self.title
        return f"{head}: {self.detail}" if self.detail else head


def local(cls: type[E], title: str, detail: str, **extensions: Any) -> E:
    """An error made on this side (no HTTP status), in the same problem shape."""
    return cls(None, {"type": "about:blank", "title": title, "detail": detail, **extensions})


# ---------------------------------------------------------------------------- on this side
class InvalidArgument(CostGuardError, ValueError):
    """An argument refused before any call was made: a float as money, a misspelt field, a
    body that is not one of the API's. Also a `ValueError`; `problem["invalid_params"]` names
    each field."""


class ConfigurationError(CostGuardError, ValueError):
    """No base URL or no API key (arguments or COSTGUARD_URL / COSTGUARD_API_KEY)."""


class BadResponse(CostGuardError):
    """A success status whose body is not what the API sends (not JSON, a float where money
    goes, a missing field): usually a proxy or a gateway answering in the API's place.
    Never retried for a read; for a commit, see `CommitNotLanded`."""


# ---------------------------------------------------------------------------- transient
class CostGuardUnavailable(CostGuardError):
    """costguard could not be reached, or kept answering 5xx, after every retry."""


class Throttled(CostGuardUnavailable):
    """A 429 that is not a quota refusal (an API Gateway throttle, `{"message": "Too Many
    Requests"}`): retried with backoff and `Retry-After`; raised once the retries are spent.
    Nothing was held or recorded. `retry_after_seconds` is the server's hint, if any."""

    def __init__(
        self, status: int | None, problem: dict[str, Any], retry_after: int | None = None
    ) -> None:
        super().__init__(status, problem)
        self.retry_after_seconds = retry_after


# ---------------------------------------------------------------------------- refusals
class QuotaExceeded(CostGuardError):
    """A 429 quota problem: the request would take `quota_id` over its limit. Nothing was held
    or recorded. Never retried (waiting does not help before `resets_at`)."""

    def __init__(
        self, status: int | None, problem: dict[str, Any], retry_after: int | None = None
    ) -> None:
        super().__init__(status, problem)
        self.quota_id: str = str(problem.get("quota_id", ""))
        self.scope: str | None = problem.get("scope")
        self.resource: str | None = problem.get("resource")
        self.period: str | None = problem.get("period")
        self.limit_usd = _usd(problem.get("limit_usd"))
        self.spent_usd = _usd(problem.get("spent_usd"))
        self.reserved_usd = _usd(problem.get("reserved_usd"))
        self.remaining_usd = _usd(problem.get("remaining_usd"))
        self.requested_usd = _usd(problem.get("requested_usd"))
        seconds = problem.get("retry_after_seconds", retry_after)
        self.retry_after_seconds: int | None = _int(seconds)
        self.resets_at = _when(problem.get("resets_at"))


class TenantPaused(CostGuardError):
    """A 423 (or a 403 of type `paused`): the tenant, or this user, is paused by the operator."""

    def __init__(self, status: int | None, problem: dict[str, Any]) -> None:
        super().__init__(status, problem)
        self.tenant_id: str | None = problem.get("tenant_id")
        self.user_id: str | None = problem.get("user_id")


class InvalidRequest(CostGuardError):
    """A 400 or 422: the API refused the request as sent; `invalid_params` names the fields."""

    @property
    def invalid_params(self) -> list[dict[str, Any]]:
        params = self.problem.get("invalid_params")
        return [p for p in params if isinstance(p, dict)] if isinstance(params, list) else []


class Unauthorized(CostGuardError):
    """A 401: the API key is missing, unknown or revoked."""


class Forbidden(CostGuardError):
    """A 403: the key is valid but not for this tenant or route (an admin route, another
    tenant's data)."""


class NotFound(CostGuardError):
    """A 404: no such tenant, quota, reservation, key or route."""


class Conflict(CostGuardError):
    """A 409: the request contradicts the state (a tenant id taken, a reservation no longer
    held, a commit above the hold refused)."""


class ReservationNotHeld(Conflict):
    """A 409 on a commit or release: the reservation is `reservation_status` (committed,
    released or expired) already; `charged_usd` is what its expiry charged, if it did."""

    def __init__(self, status: int | None, problem: dict[str, Any]) -> None:
        super().__init__(status, problem)
        self.reservation_status: str | None = problem.get("reservation_status")
        self.charged_usd = _usd(problem.get("charged_usd"))


class OverrunRejected(Conflict):
    """A 409 on a commit above the hold when the tenant's setting is `overrun: "reject"`: the
    usage was refused and the hold, `charged_usd`, was charged instead (the reservation is
    settled). `actual_usd` is what the refused usage cost; `record` the cost record of the
    charge, when the server sent it."""

    def __init__(self, status: int | None, problem: dict[str, Any]) -> None:
        super().__init__(status, problem)
        self.reservation_id: str | None = problem.get("reservation_id")
        self.charged_usd = _usd(problem.get("charged_usd"))
        self.actual_usd = _usd(problem.get("actual_usd"))
        self.record: CostRecord | None = None
        if isinstance(problem.get("record"), dict):
            from pydantic import ValidationError

            from costguard_client.models import CostRecord

            try:
                self.record = CostRecord.model_validate(problem["record"])
            except ValidationError:
                self.record = None  # the figures above still say what happened


class CommitNotLanded(CostGuardError):
    """A commit was retried until its hold expired (or the server said the hold was gone)
    without an answer that it landed.

    `reservation_id` and `usage` (the body that was committed; `usage.usage_unknown` when the
    usage was unknown) say what to record: `guard.record_usage(tenant_id, error.record())`.
    `reserved_usd` is the hold, what an unknown usage is recorded as. `__cause__` is the last
    failure.

    `charged_usd` is what the hold's expiry charged when the server says so (tenant setting
    `on_expiry: "charge"`): then only the usage beyond it is still to record, which
    `guard.record_unlanded(error)` works out (it prices the usage with a quota check).

    `maybe_landed` is True when a try may have been applied with its answer lost (a
    connection dropped after the request left): then look for the reservation's record
    (`usage_records`) before recording, or it may count twice.
    """

    def __init__(
        self,
        status: int | None,
        problem: dict[str, Any],
        *,
        tenant_id: str,
        reservation_id: str,
        usage: CommitRequest,
        reserved_usd: Decimal | None,
        maybe_landed: bool = False,
    ) -> None:
        super().__init__(status, problem)
        self.tenant_id = tenant_id
        self.reservation_id = reservation_id
        self.usage = usage
        self.reserved_usd = reserved_usd
        self.maybe_landed = maybe_landed
        cause = problem.get("cause")
        self.charged_usd = _usd(cause.get("charged_usd")) if isinstance(cause, dict) else None

    def record(self) -> RecordRequest:
        """The usage as a direct record (`record_usage`), not refusable by a quota: money
        already spent is never dropped. Unknown usage is recorded as the hold's amount. (When
        the expiry already charged the hold, `guard.record_unlanded(error)` records only
        what is beyond it.)"""
        from costguard_client.models import RecordRequest

        fields = self.usage.model_dump(exclude_none=True, exclude={"usage_unknown"})
        if self.usage.usage_unknown:
            fields = {
                k: v
                for k, v in fields.items()
                if k not in ("input_tokens", "output_tokens", "cached_input_tokens", "seconds")
            }
            fields["cost_usd"] = self.reserved_usd
        fields.setdefault("resource", "llm")
        metadata = dict(fields.get("metadata") or {})
        metadata.setdefault("reservation_id", self.reservation_id)
        fields["metadata"] = metadata
        return RecordRequest.model_validate({**fields, "enforce": False})


# ---------------------------------------------------------------------------- mapping
def _usd(value: Any) -> Decimal | None:
    if value is None or isinstance(value, float | bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def retry_after(response: httpx.Response) -> int | None:
    """`Retry-After` in seconds (the delay form; an HTTP date is ignored)."""
    value = response.headers.get("retry-after", "").strip()
    return int(value) if value.isdigit() else None


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body of a refusal, or one made up from the status when there is none
    (a gateway's `{"message": ...}` becomes the detail)."""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and ("type" in body or "title" in body or "status" in body):
        return body
    detail = ""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        detail = body["message"]
    elif response.content:
        detail = response.text[:500]
    return {
        "type": "about:blank",
        "title": response.reason_phrase or "Error",
        "status": response.status_code,
        "detail": detail,
    }


def _is_quota_problem(problem: dict[str, Any]) -> bool:
    return str(problem.get("type", "")).endswith("/quota-exceeded") or bool(problem.get("quota_id"))


def error_from(response: httpx.Response) -> CostGuardError:
    """The typed error for a non-2xx answer."""
    problem = problem_of(response)
    status = response.status_code
    kind = str(problem.get("type", ""))
    if status == 429:
        if _is_quota_problem(problem):
            return QuotaExceeded(status, problem, retry_after(response))
        return Throttled(status, problem, retry_after(response))
    if status == 423 or kind.endswith("/paused"):
        return TenantPaused(status, problem)
    if status >= 500:
        return CostGuardUnavailable(status, problem)
    by_status: dict[int, type[CostGuardError]] = {
        400: InvalidRequest,
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        422: InvalidRequest,
    }
    if status == 409:
        if kind.endswith("/overrun-rejected"):
            return OverrunRejected(status, problem)
        if kind.endswith("/reservation-not-held"):
            return ReservationNotHeld(status, problem)
        return Conflict(status, problem)
    return by_status.get(status, CostGuardError)(status, problem)


def is_throttle(response: httpx.Response) -> bool:
    """A 429 that is not a quota refusal: worth retrying after a wait."""
    return response.status_code == 429 and not _is_quota_problem(problem_of(response))

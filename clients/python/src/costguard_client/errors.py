"""Typed errors: every refusal the API gives (RFC 9457 problem+json) becomes one of these."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx


class CostGuardError(Exception):
    """A problem the API answered (or could not be reached to answer).

    `status` is the HTTP status (None when no answer came), `problem` the whole
    problem+json body as the server sent it.
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


class CostGuardUnavailable(CostGuardError):
    """costguard could not be reached, or kept answering 5xx, after every retry."""


class QuotaExceeded(CostGuardError):
    """A 429: the request would take `quota_id` over its limit. Nothing was held or recorded."""

    def __init__(self, status: int | None, problem: dict[str, Any], retry_after: int | None = None):
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
        self.retry_after_seconds: int | None = int(seconds) if seconds is not None else None
        self.resets_at = _when(problem.get("resets_at"))


class TenantPaused(CostGuardError):
    """A 423 (or a 403 of type `paused`): the tenant, or this user, is paused by the operator."""

    def __init__(self, status: int | None, problem: dict[str, Any]) -> None:
        super().__init__(status, problem)
        self.tenant_id: str | None = problem.get("tenant_id")
        self.user_id: str | None = problem.get("user_id")


def _usd(value: Any) -> Decimal | None:
    if value is None or isinstance(value, float):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body of a refusal, or one made up from the status when there is none."""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {
        "type": "about:blank",
        "title": response.reason_phrase or "Error",
        "status": response.status_code,
        "detail": response.text[:500] if response.content else "",
    }


def error_from(response: httpx.Response) -> CostGuardError:
    """The typed error for a non-2xx answer."""
    problem = problem_of(response)
    status = response.status_code
    kind = str(problem.get("type", ""))
    if status == 429:
        return QuotaExceeded(status, problem, _retry_after(response))
    if status == 423 or kind.endswith("/paused"):
        return TenantPaused(status, problem)
    if status >= 500:
        return CostGuardUnavailable(status, problem)
    return CostGuardError(status, problem)

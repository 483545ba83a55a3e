"""What the sync and async clients share: how a call is described, retried and parsed."""

from __future__ import annotations

import json
import logging
import os
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from costguard_client._version import __version__
from costguard_client.errors import CostGuardError, error_from

log = logging.getLogger("costguard_client")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request left the client: always safe to retry."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with jitter, on connection errors and 5xx only (never on 4xx).

    `attempts` counts the first try. A 5xx with `Retry-After` waits that long (plus jitter)
    when it is at most `max_retry_after_seconds`; a longer wait is not ours to take, so the
    error is raised at once. Other retries wait a random time up to an exponential cap
    ("full jitter"), so many clients retrying together spread out.
    """

    attempts: int = 4
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 4.0
    max_retry_after_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts counts the first try: at least 1")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return rng.uniform(0, cap)

    def delay(self, attempt: int, response: httpx.Response, rng: random.Random) -> float | None:
        """Seconds to wait before retrying after this 5xx, or None: do not retry."""
        value = response.headers.get("retry-after", "").strip()
        if value.isdigit():
            seconds = float(value)
            if seconds > self.max_retry_after_seconds:
                return None
            return seconds + rng.uniform(0, self.backoff_seconds)
        return self.backoff(attempt, rng)


NO_RETRIES = RetryPolicy(attempts=1)


def retryable_status(status: int) -> bool:
    return status >= 500 and status not in (501, 505)


def new_idempotency_key() -> str:
    return f"cg-{uuid.uuid4().hex}"


def segment(value: str) -> str:
    """One path segment, escaped (ids may hold ':', '~', '@', never '/')."""
    if not value:
        raise ValueError("an id in the path may not be empty")
    return quote(value, safe=":@~+!$&'()*,;=")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One logical API call: retried as a whole, with one Idempotency-Key across attempts."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    body: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    replayable: bool = True
    """False: a retry after the request may have arrived would act twice (an issued key)."""
    idempotency_key: str | None = None

    def request_headers(self, key: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def content(self) -> bytes | None:
        if self.body is None:
            return None
        if isinstance(self.body, BaseModel):
            return self.body.model_dump_json(exclude_none=True).encode()
        return json.dumps(self.body, separators=(",", ":")).encode()

    def key(self) -> str | None:
        if self.method not in MUTATING:
            return None
        return self.idempotency_key or new_idempotency_key()

    def may_retry_after(self, error: httpx.TransportError) -> bool:
        return self.replayable or isinstance(error, NEVER_SENT)


def ensure_ok(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from(response)


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        ensure_ok(response)
        return cls.model_validate_json(response.content)

    return parse


def nothing(response: httpx.Response) -> None:
    ensure_ok(response)


def document(response: httpx.Response) -> dict[str, Any]:
    ensure_ok(response)
    body = response.json()
    if not isinstance(body, dict):
        raise CostGuardError(
            response.status_code, {"title": "Unexpected body", "detail": "not an object"}
        )
    return body


def settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """The base URL and key: the arguments, else COSTGUARD_URL and COSTGUARD_API_KEY."""
    url = base_url or os.environ.get("COSTGUARD_URL")
    key = api_key or os.environ.get("COSTGUARD_API_KEY")
    if not url:
        raise ValueError("costguard needs a base URL: pass base_url or set COSTGUARD_URL")
    if not key:
        raise ValueError("costguard needs an API key: pass api_key or set COSTGUARD_API_KEY")
    return url.rstrip("/"), key


def default_headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": f"costguard-client/{__version__}",
    }


def log_retry(call: Call[Any], attempt: int, reason: str, wait: float) -> None:
    log.warning(
        "costguard %s %s: %s; retry %d in %.2fs", call.method, call.path, reason, attempt, wait
    )

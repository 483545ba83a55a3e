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
from pydantic import BaseModel, ValidationError

from costguard_client._version import __version__
from costguard_client.errors import (
    BadResponse,
    ConfigurationError,
    CostGuardUnavailable,
    InvalidArgument,
    error_from,
    is_throttle,
    local,
    retry_after,
)

log = logging.getLogger("costguard_client")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request left the client: always safe to retry."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with jitter, on connection errors, 5xx and throttling 429s (a 429 that
    is not a quota refusal); never on any other 4xx.

    `attempts` counts the first try. An answer with `Retry-After` waits that long (plus
    jitter) when it is at most `max_retry_after_seconds`; a longer wait is not ours to take,
    so the error is raised at once. Other retries wait a random time up to an exponential cap
    ("full jitter"), so many clients retrying together spread out.

    A commit is retried past `attempts`, until its hold expires (see `Retrying`): the spend
    it carries must not be dropped.
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

    def delay(
        self,
        attempt: int,
        response: httpx.Response,
        rng: random.Random,
        max_wait: float | None = None,
    ) -> float | None:
        """Seconds to wait before retrying after this answer, or None: do not retry.

        `max_wait` replaces `max_retry_after_seconds` (a commit waits as long as its hold
        lasts)."""
        seconds = retry_after(response)
        if seconds is not None:
            limit = self.max_retry_after_seconds if max_wait is None else max_wait
            if seconds > limit:
                return None
            return seconds + rng.uniform(0, self.backoff_seconds)
        return self.backoff(attempt, rng)


NO_RETRIES = RetryPolicy(attempts=1)


def retryable(response: httpx.Response) -> bool:
    """A 5xx worth another try (not 501/505, which will not change), or a throttle."""
    status = response.status_code
    return (status >= 500 and status not in (501, 505)) or is_throttle(response)


@dataclass
class Retrying:
    """The retry budget of one logical call: `policy.attempts` tries, or, with a `deadline`
    (a `clock()` reading: a commit's hold expiry), as many as fit before it."""

    policy: RetryPolicy
    rng: random.Random
    clock: Callable[[], float]
    deadline: float | None = None
    attempt: int = 0
    maybe_delivered: bool = False
    """Some try may have reached the server and been applied, its answer lost."""

    def next(self) -> int:
        self.attempt += 1
        return self.attempt

    def _fits(self, wait: float) -> float | None:
        if self.deadline is None:
            return wait if self.attempt < self.policy.attempts else None
        return wait if self.clock() + wait < self.deadline else None

    def after_error(self, call: Call[Any], error: httpx.TransportError) -> float | None:
        """Seconds to wait before the next try after a transport error, or None: give up."""
        if not isinstance(error, NEVER_SENT):
            self.maybe_delivered = True
        if not call.may_retry_after(error):
            return None
        return self._fits(self.policy.backoff(self.attempt, self.rng))

    def after_answer(self, response: httpx.Response) -> float | None:
        """Seconds to wait before the next try after this answer, or None: it is final."""
        if not retryable(response):
            return None
        if self.deadline is None:
            wait = self.policy.delay(self.attempt, response, self.rng)
        else:
            left = max(0.0, self.deadline - self.clock())
            wait = self.policy.delay(self.attempt, response, self.rng, max_wait=left)
        return None if wait is None else self._fits(wait)


def unreachable(error: httpx.TransportError) -> CostGuardUnavailable:
    return CostGuardUnavailable(
        None, {"title": "Unreachable", "detail": f"{type(error).__name__}: {error}"}
    )


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
        try:
            return json.dumps(self.body, separators=(",", ":")).encode()
        except (TypeError, ValueError) as error:
            raise local(InvalidArgument, "Invalid argument", f"not a JSON body: {error}") from None

    def key(self) -> str | None:
        if self.method not in MUTATING:
            return None
        return self.idempotency_key or new_idempotency_key()

    def may_retry_after(self, error: httpx.TransportError) -> bool:
        return self.replayable or isinstance(error, NEVER_SENT)


def ensure_ok(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from(response)


def bad_response(response: httpx.Response, detail: str) -> BadResponse:
    return BadResponse(
        response.status_code,
        {
            "type": "about:blank",
            "title": "Unexpected response",
            "status": response.status_code,
            "detail": detail,
            "body": response.text[:500],
        },
    )


def _errors(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:5]
    )


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        ensure_ok(response)
        try:
            return cls.model_validate_json(response.content)
        except ValidationError as error:
            # A proxy's HTML page, a float where money goes: never pydantic's error.
            raise bad_response(response, f"not a {cls.__name__}: {_errors(error)}") from None

    return parse


def nothing(response: httpx.Response) -> None:
    ensure_ok(response)


def document(response: httpx.Response) -> dict[str, Any]:
    ensure_ok(response)
    try:
        body = response.json()
    except ValueError:
        raise bad_response(response, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad_response(response, "the body is not a JSON object")
    return body


def validated(cls: type[M], fields: Mapping[str, Any]) -> M:
    """A request body built from the caller's arguments; a refusal is `InvalidArgument`
    naming each field (never pydantic's `ValidationError`)."""
    try:
        return cls.model_validate(fields)
    except ValidationError as error:
        raise invalid_argument(error) from None


def invalid_argument(error: ValidationError) -> InvalidArgument:
    params = [
        {
            "name": ".".join(map(str, e["loc"])) or "body",
            "reason": e["msg"].removeprefix("Value error, "),
        }
        for e in error.errors()
    ]
    return local(
        InvalidArgument,
        "Invalid argument",
        "; ".join(f"{p['name']}: {p['reason']}" for p in params),
        invalid_params=params,
    )


def settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """The base URL and key: the arguments, else COSTGUARD_URL and COSTGUARD_API_KEY."""
    url = base_url or os.environ.get("COSTGUARD_URL")
    key = api_key or os.environ.get("COSTGUARD_API_KEY")
    if not url:
        raise local(
            ConfigurationError,
            "No base URL",
            "costguard needs a base URL: pass base_url or set COSTGUARD_URL",
        )
    if not key:
        raise local(
            ConfigurationError,
            "No API key",
            "costguard needs an API key: pass api_key or set COSTGUARD_API_KEY",
        )
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

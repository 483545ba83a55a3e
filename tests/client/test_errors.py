"""One error family: every failure is a `CostGuardError` subclass chosen by status and problem
type; a 429 that is not a quota refusal is `Throttled` and retried; an answer that is not the
API's is `BadResponse`, never pydantic's `ValidationError`."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from costguard_client import (
    BadResponse,
    ConfigurationError,
    Conflict,
    CostGuard,
    CostGuardError,
    CostGuardUnavailable,
    Forbidden,
    InvalidArgument,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    ReservationNotHeld,
    RetryPolicy,
    TenantPaused,
    Throttled,
    Unauthorized,
)
from pydantic import ValidationError

from tests.client.fake import Clock

BASE = "https://costguard.dev/problems/"
QUOTA = {
    "type": BASE + "quota-exceeded",
    "title": "Quota exceeded",
    "status": 429,
    "quota_id": "tenant:llm:month",
    "remaining_usd": "0.000000",
    "retry_after_seconds": 3600,
}


def answering(*answers: httpx.Response, clock: Clock | None = None) -> tuple[CostGuard, list[Any]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    clock = clock or Clock()
    guard = CostGuard(
        "http://costguard.test",
        "k",
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(attempts=4),
    )
    guard._rng = random.Random(3)
    return guard, seen


def problem(status: int, slug: str, **fields: Any) -> httpx.Response:
    body = {"type": BASE + slug, "title": slug, "status": status, "detail": "no", **fields}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (problem(400, "malformed-json"), InvalidRequest),
        (problem(401, "unauthenticated"), Unauthorized),
        (problem(403, "forbidden"), Forbidden),
        (problem(403, "paused", tenant_id="acme"), TenantPaused),
        (problem(404, "not-found"), NotFound),
        (problem(409, "tenant-exists"), Conflict),
        (problem(409, "reservation-not-held", reservation_status="released"), ReservationNotHeld),
        (problem(422, "validation", invalid_params=[{"name": "x", "reason": "y"}]), InvalidRequest),
        (problem(423, "paused"), TenantPaused),
        (httpx.Response(429, json=QUOTA), QuotaExceeded),
        (httpx.Response(418, text="teapot"), CostGuardError),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_each_refusal_is_its_typed_cost_guard_error_and_is_not_retried(
    answer: httpx.Response, kind: type[CostGuardError]
) -> None:
    guard, seen = answering(answer)

    with pytest.raises(CostGuardError) as refused:
        guard.quotas("acme")

    assert type(refused.value) is kind
    assert refused.value.status == answer.status_code
    assert len(seen) == 1


def test_a_gateway_throttle_is_throttled_retried_with_retry_after_never_quota_exceeded() -> None:
    # API Gateway's own 429: no problem body, no quota
    throttle = httpx.Response(
        429, json={"message": "Too Many Requests"}, headers={"Retry-After": "1"}
    )
    ok = httpx.Response(200, json={"quotas": []})
    clock = Clock()
    guard, seen = answering(throttle, throttle, ok, clock=clock)

    assert guard.quotas("acme").quotas == []
    assert len(seen) == 3
    assert all(1 <= s <= 1.25 for s in clock.sleeps)

    # Throttled for good: after the policy's attempts, Throttled (an Unavailable), not a quota
    guard, seen = answering(httpx.Response(429, json={"message": "Too Many Requests"}))
    with pytest.raises(Throttled) as throttled:
        guard.quotas("acme")
    assert len(seen) == 4
    error = throttled.value
    assert isinstance(error, CostGuardUnavailable) and not isinstance(error, QuotaExceeded)
    assert (error.status, error.detail) == (429, "Too Many Requests")


def test_a_quota_429_is_never_retried() -> None:
    guard, seen = answering(httpx.Response(429, json=QUOTA, headers={"Retry-After": "1"}))

    with pytest.raises(QuotaExceeded) as refused:
        guard.quotas("acme")

    assert len(seen) == 1 and refused.value.quota_id == "tenant:llm:month"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>Bad gateway page</html>"),
        httpx.Response(200, json={"quotas": [{"quota_id": "q", "limit_usd": 1.5}]}),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
    ids=["html", "float-money", "list"],
)
def test_an_answer_that_is_not_the_apis_is_bad_response_never_validation_error(
    answer: httpx.Response,
) -> None:
    guard, _ = answering(answer)

    with pytest.raises(BadResponse) as bad:
        guard.quotas("acme")

    assert not isinstance(bad.value, ValidationError)
    assert bad.value.status == 200 and bad.value.problem["body"]


@pytest.mark.parametrize("text", ["<html>Bad gateway page</html>", "[1, 2]"])
def test_a_json_document_route_answering_something_else_is_bad_response(text: str) -> None:
    guard, _ = answering(httpx.Response(200, text=text))

    with pytest.raises(BadResponse, match=r"not a JSON object|not JSON"):
        guard.forecast("acme")


def test_bad_arguments_and_missing_configuration_are_cost_guard_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COSTGUARD_URL", raising=False)
    monkeypatch.delenv("COSTGUARD_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="COSTGUARD_URL"):
        CostGuard()

    guard, seen = answering(httpx.Response(200, json={}))
    for bad in (
        lambda: guard.put_quota("acme", "tenant:llm:month", "abc"),
        lambda: guard.put_quota("acme", "tenant:llm:month", 1.5),  # type: ignore[arg-type]
        lambda: guard.reserve("acme", seconds="soon", resource="sandbox"),
        lambda: guard.record_usage("acme", {"tokens": 12}),
        lambda: guard.record_usage("acme", {"resource": "llm", "cost": "1"}),
    ):
        with pytest.raises(InvalidArgument) as refused:
            bad()
        assert refused.value.status is None and refused.value.detail
    assert seen == []  # refused before any call

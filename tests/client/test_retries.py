"""Retries: one Idempotency-Key per logical call, reused by its retries; connection errors and
5xx retried (bounded, jittered, Retry-After honoured); 4xx never. Against the real runner with
a dropped connection, and against a scripted transport for the policy itself."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from costguard_client import (
    AsyncCostGuard,
    CostGuard,
    CostGuardError,
    CostGuardUnavailable,
    QuotaExceeded,
    RetryPolicy,
)
from costguard_client.models import RecordRequest

from tests.client.conftest import TenantKey
from tests.client.conftest import quota as one
from tests.e2e.conftest import Server


class DropAfterSend(httpx.BaseTransport):
    """Delivers the request, then loses the answer: the server applied the call, the client
    saw a dropped connection (the case an Idempotency-Key exists for)."""

    def __init__(self, drop: Callable[[httpx.Request], bool], times: int = 1) -> None:
        self.inner = httpx.HTTPTransport()
        self.drop = drop
        self.times = times
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.drop(request):
            self.sent.append(request)
            if self.times > 0:
                self.times -= 1
                response.read()
                response.close()
                raise httpx.ReadError(
                    "connection reset after the request was sent", request=request
                )
        return response

    def close(self) -> None:
        self.inner.close()


def _client(server: Server, key: str, transport: httpx.BaseTransport) -> CostGuard:
    return CostGuard(server.url, key, transport=transport, sleep=lambda _: None)


def _keys(requests: list[httpx.Request]) -> set[str]:
    return {r.headers["Idempotency-Key"] for r in requests}


def test_a_commit_whose_answer_was_lost_is_retried_and_counted_once(
    server: Server, tenant: TenantKey
) -> None:
    # Given the first commit reaches the server but its answer is lost
    drops = DropAfterSend(lambda r: r.url.path.endswith("/commit"))
    with _client(server, tenant.api_key, drops) as guard:
        # When the guarded call commits
        with guard.reserve(
            tenant.tenant_id, model="gpt-4o", input_tokens=10_000, max_output_tokens=2_000
        ) as hold:
            record = hold.commit(input_tokens=10_000, output_tokens=1_000)

        # Then the commit was sent twice with one Idempotency-Key, and counted once
        assert len(drops.sent) == 2 and len(_keys(drops.sent)) == 1
        assert record.cost_usd == Decimal("0.035")
        report = guard.usage(tenant.tenant_id)
        assert (report.total_usd, report.calls) == (Decimal("0.035"), 1)
        quota = one(guard.quotas(tenant.tenant_id))
        assert (quota.spent_usd, quota.reserved_usd) == (Decimal("0.035"), Decimal(0))
        assert len(guard.usage_records(tenant.tenant_id).records) == 1


def test_recorded_usage_whose_answer_was_lost_is_counted_once(
    server: Server, tenant: TenantKey
) -> None:
    # Direct usage has no reservation to be idempotent by: only the reused key protects it.
    drops = DropAfterSend(lambda r: r.url.path.endswith("/usage") and r.method == "POST", times=2)
    body = RecordRequest(resource="llm", estimated_cost_usd=None, cost_usd=Decimal("0.25"))
    with _client(server, tenant.api_key, drops) as guard:
        record = guard.record_usage(tenant.tenant_id, body)

        assert len(drops.sent) == 3 and len(_keys(drops.sent)) == 1
        assert record.cost_usd == Decimal("0.25")
        report = guard.usage(tenant.tenant_id)
        assert (report.total_usd, report.calls) == (Decimal("0.25"), 1)


def test_a_reservation_whose_answer_was_lost_holds_once(server: Server, tenant: TenantKey) -> None:
    drops = DropAfterSend(lambda r: r.url.path.endswith("/reservations"))
    with _client(server, tenant.api_key, drops) as guard:
        with guard.reserve(tenant.tenant_id, estimated_cost_usd="0.40") as hold:
            quota = one(guard.quotas(tenant.tenant_id))
            assert quota.reserved_usd == Decimal("0.40")
        assert hold.state == "released"
        assert len(drops.sent) == 2 and len(_keys(drops.sent)) == 1
        quota = one(guard.quotas(tenant.tenant_id))
        assert (quota.spent_usd, quota.reserved_usd) == (Decimal(0), Decimal(0))


def test_two_logical_calls_carry_two_keys(server: Server, tenant: TenantKey) -> None:
    seen = DropAfterSend(lambda r: r.url.path.endswith("/usage") and r.method == "POST", times=0)
    body = RecordRequest(resource="llm", cost_usd=Decimal("0.01"))
    with _client(server, tenant.api_key, seen) as guard:
        guard.record_usage(tenant.tenant_id, body)
        guard.record_usage(tenant.tenant_id, body)
        assert len(_keys(seen.sent)) == 2
        assert guard.usage(tenant.tenant_id).total_usd == Decimal("0.02")


# ---------------------------------------------------------------------------- the policy
RECORD = {
    "record_id": "01JDXG7Z8Q4V5N6M7K8J9H0G1F",
    "tenant_id": "acme",
    "status": "recorded",
    "resource": "llm",
    "cost_usd": "0.250000",
    "occurred_at": "2026-11-25T12:00:00Z",
    "recorded_at": "2026-11-25T12:00:00Z",
}
ISSUED = {"key_id": "0123456789abcdef", "api_key": "cg.x", "role": "tenant", "tenant_id": "acme"}
Step = tuple[int, dict[str, str]] | type[httpx.TransportError]


class Script:
    """A transport that answers from a list: a status (with headers), or an error to raise."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, type):
            raise step("scripted", request=request)
        status, headers = step
        if status < 400:
            body = ISSUED if request.url.path.endswith("/api-keys") else RECORD
            return httpx.Response(status, json=body, headers=headers)
        problem = {"type": "about:blank", "title": "Refused", "status": status, "detail": "no"}
        if status == 429:
            problem |= {"quota_id": "tenant:llm:month", "remaining_usd": "0.000000"}
        return httpx.Response(status, json=problem, headers=headers)


def scripted(script: Script, sleeps: list[float], attempts: int = 4) -> CostGuard:
    guard = CostGuard(
        "http://costguard.test",
        "k",
        transport=httpx.MockTransport(script),
        sleep=sleeps.append,
        retry=RetryPolicy(attempts=attempts, backoff_seconds=0.25, max_backoff_seconds=4.0),
    )
    guard._rng = random.Random(7)
    return guard


BODY = RecordRequest(resource="llm", cost_usd=Decimal("0.25"))


def test_5xx_and_connection_errors_are_retried_under_one_key_with_bounded_jitter() -> None:
    # Given a 502, a refused connection and a read timeout before a success
    script = Script((502, {}), httpx.ConnectError, httpx.ReadTimeout, (201, {}))
    sleeps: list[float] = []

    # When usage is recorded
    record = scripted(script, sleeps).record_usage("acme", BODY)

    # Then four attempts carried one Idempotency-Key, each wait within its jitter cap
    assert record.cost_usd == Decimal("0.25")
    assert len(script.requests) == 4 and len(_keys(script.requests)) == 1
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, [0.25, 0.5, 1.0], strict=True))


def test_a_503_with_retry_after_waits_that_long() -> None:
    script = Script((503, {"Retry-After": "2"}), (201, {}))
    sleeps: list[float] = []

    scripted(script, sleeps).record_usage("acme", BODY)

    assert len(script.requests) == 2 and len(_keys(script.requests)) == 1
    (wait,) = sleeps
    assert 2 <= wait <= 2.25


def test_a_retry_after_longer_than_the_policy_allows_is_not_waited_for() -> None:
    script = Script((503, {"Retry-After": "120"}), (201, {}))
    sleeps: list[float] = []

    with pytest.raises(CostGuardUnavailable) as failed:
        scripted(script, sleeps).record_usage("acme", BODY)

    assert (failed.value.status, len(script.requests), sleeps) == (503, 1, [])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 423, 429])
def test_a_4xx_is_never_retried(status: int) -> None:
    script = Script((status, {"Retry-After": "1"}), (201, {}))
    sleeps: list[float] = []

    with pytest.raises(CostGuardError) as refused:
        scripted(script, sleeps).record_usage("acme", BODY)

    assert (refused.value.status, len(script.requests), sleeps) == (status, 1, [])
    assert isinstance(refused.value, QuotaExceeded) == (status == 429)


def test_retries_are_bounded_and_end_in_cost_guard_unavailable() -> None:
    script = Script(*([httpx.ConnectError] * 3))
    sleeps: list[float] = []

    with pytest.raises(CostGuardUnavailable, match="ConnectError") as failed:
        scripted(script, sleeps, attempts=3).record_usage("acme", BODY)

    assert failed.value.status is None
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    assert (len(script.requests), len(sleeps)) == (3, 2)


def test_the_last_5xx_is_raised_with_its_problem() -> None:
    script = Script((500, {}), (500, {}))

    with pytest.raises(CostGuardUnavailable) as failed:
        scripted(script, [], attempts=2).record_usage("acme", BODY)

    assert (failed.value.status, failed.value.title) == (500, "Refused")


def test_issuing_a_key_is_retried_only_when_the_request_never_left() -> None:
    # A key is shown once: a retry after the request may have arrived would issue another.
    refused = Script(httpx.ConnectError, (201, {}))
    assert scripted(refused, []).issue_key("acme").key_id == "0123456789abcdef"
    assert len(refused.requests) == 2

    lost = Script(httpx.ReadError, (201, {}))
    with pytest.raises(CostGuardUnavailable):
        scripted(lost, []).issue_key("acme")
    assert len(lost.requests) == 1


def test_reads_carry_no_idempotency_key() -> None:
    script = Script((200, {}))
    scripted(script, []).record_usage("acme", BODY)
    assert "Idempotency-Key" in script.requests[0].headers

    seen: list[httpx.Request] = []

    def health(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok", "version": "1"})

    with CostGuard("http://costguard.test", "k", transport=httpx.MockTransport(health)) as guard:
        assert guard.health().status == "ok"
    assert "Idempotency-Key" not in seen[0].headers
    assert seen[0].headers["Authorization"] == "Bearer k"


def test_the_async_client_retries_the_same_way() -> None:
    script = Script((502, {}), httpx.ConnectError, (503, {"Retry-After": "1"}), (201, {}))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> Decimal:
        async with AsyncCostGuard(
            "http://costguard.test", "k", transport=httpx.MockTransport(script), sleep=sleep
        ) as guard:
            return (await guard.record_usage("acme", BODY)).cost_usd

    assert asyncio.run(scenario()) == Decimal("0.25")
    assert len(script.requests) == 4 and len(_keys(script.requests)) == 1
    assert len(sleeps) == 3 and 1 <= sleeps[2] <= 1.25

    refused = Script((429, {}), (201, {}))

    async def over_quota() -> None:
        async with AsyncCostGuard(
            "http://costguard.test", "k", transport=httpx.MockTransport(refused), sleep=sleep
        ) as guard:
            await guard.record_usage("acme", BODY)

    with pytest.raises(QuotaExceeded):
        asyncio.run(over_quota())
    assert len(refused.requests) == 1

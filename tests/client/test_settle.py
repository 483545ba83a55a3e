"""How a hold settles, on the client's side (a fake costguard records what it was sent):
released only when the call surely never started, committed otherwise (the usage, or
`usage_unknown`); a commit retried under one Idempotency-Key until it lands or the hold
expires, then `CommitNotLanded` carrying what to record."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
from costguard_client import (
    AsyncCostGuard,
    CommitNotLanded,
    CostGuard,
    CostGuardUnavailable,
    InvalidRequest,
    OverrunRejected,
    RetryPolicy,
)
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion

from tests.client.fake import LOST, Clock, FakeCostGuard, reset, status

ESTIMATE: dict[str, Any] = {"model": "gpt-4o", "input_tokens": 10_000, "max_output_tokens": 2_000}
GATEWAY_THROTTLE = {"message": "Too Many Requests"}


def client(fake: FakeCostGuard, clock: Clock | None = None) -> CostGuard:
    clock = clock or Clock()
    guard = CostGuard(
        "http://costguard.test",
        "k",
        transport=fake.transport(),
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(attempts=3, backoff_seconds=0.25, max_backoff_seconds=4.0),
    )
    guard._rng = random.Random(7)
    return guard


def completion(usage: dict[str, Any] | None) -> ChatCompletion:
    """An OpenAI chat completion, the SDK's own type."""
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1764590400,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Hello"},
                }
            ],
            "usage": usage,
        }
    )


USAGE = {"prompt_tokens": 9_000, "completion_tokens": 700, "total_tokens": 9_700}


class ProviderDown(Exception):
    pass


def commit_keys(fake: FakeCostGuard) -> set[str]:
    return {r.headers["Idempotency-Key"] for r in fake.requests if fake.kind(r) == "commit"}


# ---------------------------------------------------------------------------- release or commit
def test_a_block_that_never_started_the_call_releases_on_any_exit() -> None:
    fake = FakeCostGuard()
    guard = client(fake)

    with guard.reserve("acme", **ESTIMATE):
        pass  # a cached answer
    with pytest.raises(ProviderDown), guard.reserve("acme", **ESTIMATE):
        raise ProviderDown("failed while building the prompt")

    assert fake.settlements == [("released",), ("released",)]


def test_a_started_call_that_fails_charges_the_whole_hold_and_the_error_propagates() -> None:
    fake = FakeCostGuard()
    guard = client(fake)

    with pytest.raises(ProviderDown) as raised, guard.reserve("acme", **ESTIMATE) as hold:
        hold.started()
        raise ProviderDown("502 from the provider after the request was sent")

    assert str(raised.value) == "502 from the provider after the request was sent"
    assert fake.settlements == [("unknown",)]
    assert hold.state == "committed" and hold.record is not None and hold.record.usage_unknown


def test_call_commits_the_responses_usage_or_unknown_when_it_has_none() -> None:
    fake = FakeCostGuard()
    guard = client(fake)

    with guard.reserve("acme", **ESTIMATE) as hold:
        answer = hold.call(completion, USAGE)
    with guard.reserve("acme", **ESTIMATE) as bare:
        bare.call(completion, None)  # a proxy that strips the usage
    with pytest.raises(ProviderDown), guard.reserve("acme", **ESTIMATE) as failed:

        def down() -> ChatCompletion:
            raise ProviderDown("connection reset")

        failed.call(down)

    assert answer.choices[0].message.content == "Hello"
    assert fake.settlements == [("usage", 9_000, 0, 700), ("unknown",), ("unknown",)]
    assert (hold.state, bare.state, failed.state) == ("committed",) * 3


def test_commit_with_no_usage_or_a_response_without_usage_is_unknown_usage() -> None:
    fake = FakeCostGuard()
    guard = client(fake)

    for usage in (None, completion(None), {"id": "x", "usage": None}):
        with guard.reserve("acme", **ESTIMATE) as hold:
            hold.commit(usage)
    with guard.reserve("acme", **ESTIMATE) as hold:
        hold.commit_unknown()
    with guard.reserve("acme", **ESTIMATE) as hold:
        hold.commit(completion(USAGE).usage)  # the SDK's CompletionUsage

    assert fake.settlements == [("unknown",)] * 4 + [("usage", 9_000, 0, 700)]
    (unknown_body, *_) = [r.content for r in fake.requests if fake.kind(r) == "commit"]
    assert unknown_body == b'{"resource":"llm","usage_unknown":true}'


# ---------------------------------------------------------------------------- never dropped
def test_a_commit_is_retried_under_one_key_until_it_lands_past_the_retry_policy() -> None:
    # Given five failures in a row (more than the policy's 3 attempts): a 502, a refused
    # connection, a gateway throttle asking for 2 s, a 503, and an answer lost after applying
    fake = FakeCostGuard(
        faults={
            "commit": [
                status(502),
                reset,
                status(429, GATEWAY_THROTTLE, {"Retry-After": "2"}),
                status(503),
                LOST,
            ]
        }
    )
    clock = Clock()
    guard = client(fake, clock)

    with guard.reserve("acme", **ESTIMATE) as hold:
        record = hold.commit(input_tokens=9_000, output_tokens=700)

    # Then it landed once, every try carried the same key, and the throttle's wait was kept
    assert fake.settlements == [("usage", 9_000, 0, 700)]
    assert len(commit_keys(fake)) == 1
    assert sum(1 for r in fake.requests if fake.kind(r) == "commit") == 6
    assert 2 <= clock.sleeps[2] <= 2.25
    assert all(s <= 4.0 for i, s in enumerate(clock.sleeps) if i != 2)
    assert record.reservation_id == hold.reservation_id


def test_a_commit_that_cannot_land_before_expiry_raises_commit_not_landed_with_the_usage() -> None:
    # Given a costguard that answers 503 to every commit, and a 30 s hold
    fake = FakeCostGuard(ttl_seconds=30, faults={"commit": [status(503)] * 1000})
    clock = Clock()
    guard = client(fake, clock)

    with pytest.raises(CommitNotLanded) as failed, guard.reserve("acme", **ESTIMATE) as hold:
        hold.commit(completion(USAGE))

    # Then the retries stopped at the hold's expiry, never past it
    error = failed.value
    assert clock.now - 1000.0 < 30
    assert len(clock.sleeps) > 3  # well past the policy's attempts
    assert (error.reservation_id, error.tenant_id) == (hold.reservation_id, "acme")
    assert (error.usage.input_tokens, error.usage.output_tokens) == (9_000, 700)
    assert error.reserved_usd == Decimal("0.045")
    assert isinstance(error.__cause__, Exception) and error.status == 503
    assert hold.state == "unsettled"
    # And nothing else was sent on leaving the block (no release of a hold that ran)
    assert fake.settlements == [None]

    # When the app records what the error carries
    fake.faults.clear()
    record = guard.record_usage("acme", error.record())
    body = fake.requests[-1].content
    assert b'"enforce":false' in body and b'"input_tokens":9000' in body
    assert record.status == "recorded"


def test_unknown_usage_that_cannot_land_is_recorded_as_the_hold() -> None:
    fake = FakeCostGuard(ttl_seconds=10, faults={"commit": [reset] * 1000})
    guard = client(fake)

    with pytest.raises(CommitNotLanded) as failed, guard.reserve("acme", **ESTIMATE) as hold:
        hold.started()
    # A clean exit whose settlement never landed raises: the spend is not silently lost.

    request = failed.value.record()
    assert failed.value.usage.usage_unknown and hold.state == "unsettled"
    assert (request.cost_usd, request.input_tokens, request.enforce) == (
        Decimal("0.045"),
        None,
        False,
    )
    assert request.metadata == {"reservation_id": hold.reservation_id}


def test_a_commit_on_an_expired_hold_raises_commit_not_landed_at_once() -> None:
    expired = {
        "type": "https://costguard.dev/problems/reservation-not-held",
        "title": "Reservation not held",
        "status": 409,
        "reservation_status": "expired",
    }
    fake = FakeCostGuard(faults={"commit": [status(409, expired)]})
    clock = Clock()
    guard = client(fake, clock)

    with pytest.raises(CommitNotLanded) as failed, guard.reserve("acme", **ESTIMATE) as hold:
        hold.commit(input_tokens=1, output_tokens=1)

    assert failed.value.status == 409 and clock.sleeps == []
    assert failed.value.problem["cause"]["reservation_status"] == "expired"


def test_a_retry_after_beyond_the_holds_expiry_is_not_waited_for() -> None:
    fake = FakeCostGuard(
        ttl_seconds=60, faults={"commit": [status(503, {}, {"Retry-After": "120"})]}
    )
    clock = Clock()
    guard = client(fake, clock)

    with pytest.raises(CommitNotLanded), guard.reserve("acme", **ESTIMATE) as hold:
        hold.commit(input_tokens=1, output_tokens=1)

    assert clock.sleeps == []


def test_a_failed_settlement_never_masks_the_blocks_own_exception() -> None:
    fake = FakeCostGuard(ttl_seconds=5, faults={"commit": [status(503)] * 1000})
    guard = client(fake)

    with pytest.raises(ProviderDown) as raised, guard.reserve("acme", **ESTIMATE) as hold:
        hold.started()
        raise ProviderDown("upstream 500")

    assert hold.state == "unsettled"
    assert any(hold.reservation_id in note for note in raised.value.__notes__)


def test_an_overrun_refused_by_the_tenants_setting_is_typed_and_settles_the_hold() -> None:
    rejected = {
        "type": "https://costguard.dev/problems/overrun-rejected",
        "title": "Overrun rejected",
        "status": 409,
        "reservation_id": "r1",
        "charged_usd": "0.045000",
        "actual_usd": "0.100000",
    }
    fake = FakeCostGuard(faults={"commit": [status(409, rejected)]})
    guard = client(fake)

    with pytest.raises(OverrunRejected) as refused, guard.reserve("acme", **ESTIMATE) as hold:
        hold.commit(input_tokens=10_000, output_tokens=7_500)

    error = refused.value
    assert (error.reservation_id, error.charged_usd, error.actual_usd) == (
        "r1",
        Decimal("0.045"),
        Decimal("0.1"),
    )
    assert hold.state == "committed"
    assert sum(1 for r in fake.requests if fake.kind(r) == "commit") == 1  # nothing more sent


def test_a_commit_the_server_refuses_as_invalid_is_then_charged_as_unknown() -> None:
    invalid = {
        "type": "https://costguard.dev/problems/unknown-price",
        "title": "Unknown price",
        "status": 422,
        "invalid_params": [{"name": "model", "reason": "no price"}],
    }
    fake = FakeCostGuard(faults={"commit": [status(422, invalid)]})
    guard = client(fake)

    with pytest.raises(InvalidRequest) as refused, guard.reserve("acme", **ESTIMATE) as hold:
        hold.commit(input_tokens=1, output_tokens=1, model="no-such-model")

    assert refused.value.invalid_params[0]["name"] == "model"
    # The call ran: leaving the block charged the hold rather than dropping the spend.
    assert fake.settlements == [("unknown",)] and hold.state == "committed"


# ---------------------------------------------------------------------------- async
def test_the_async_hold_retries_and_settles_the_same_way() -> None:
    fake = FakeCostGuard(
        ttl_seconds=20,
        faults={"commit": [status(502), LOST, status(429, GATEWAY_THROTTLE)]},
    )
    clock = Clock()

    async def scenario() -> tuple[str, str, str]:
        async with AsyncCostGuard(
            "http://costguard.test",
            "k",
            transport=fake.transport(),
            sleep=clock.asleep,
            clock=clock,
            retry=RetryPolicy(attempts=2),
        ) as guard:
            async with guard.reserve("acme", **ESTIMATE) as landed:
                await landed.commit(completion(USAGE))
            with pytest.raises(ProviderDown):
                async with guard.reserve("acme", **ESTIMATE) as failed:
                    failed.started()
                    raise ProviderDown("reset")
            async with guard.reserve("acme", **ESTIMATE):
                pass  # never started: released
            fake.faults["commit"] = [status(503)] * 1000
            with pytest.raises(CommitNotLanded):
                async with guard.reserve("acme", **ESTIMATE) as lost:
                    await lost.call(_acompletion)
            return landed.state, failed.state, lost.state

    states = asyncio.run(scenario())
    assert states == ("committed", "committed", "unsettled")
    assert fake.settlements == [("usage", 9_000, 0, 700), ("unknown",), ("released",), None]


async def _acompletion() -> ChatCompletion:
    return completion(USAGE)


def test_record_usage_takes_the_provider_usage_objects_commit_takes() -> None:
    fake = FakeCostGuard()
    guard = client(fake)

    guard.record_usage("acme", CompletionUsage(**USAGE), model="gpt-4o", user_id="u-1")
    guard.record_usage("acme", completion(USAGE))  # the whole response: its model prices it

    first, second = (r.content for r in fake.requests if fake.kind(r) == "usage")
    assert b'"model":"gpt-4o"' in first and b'"user_id":"u-1"' in first
    assert b'"input_tokens":9000' in first and b'"output_tokens":700' in first
    assert b'"model":"gpt-4o-2024-08-06"' in second


def test_a_reserve_that_cannot_reach_costguard_raises_before_the_block_runs() -> None:
    fake = FakeCostGuard(faults={"reserve": [reset] * 10})
    guard = client(fake)

    with pytest.raises(CostGuardUnavailable) as failed, guard.reserve("acme", **ESTIMATE):
        pytest.fail("the block must not run")

    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    assert fake.settlements == []


def test_call_with_a_streaming_response_guards_the_stream() -> None:
    from tests.client.vendors import EVENTS, Script, aopen_stream, open_stream

    fake = FakeCostGuard()
    guard = client(fake)

    with guard.reserve("acme", **ESTIMATE) as hold:
        chunks = list(hold.call(open_stream, Script("openai_chat", EVENTS["openai_chat"])))
    with guard.reserve("acme", **ESTIMATE) as cut:
        stream = cut.call(open_stream, Script("anthropic", EVENTS["anthropic"]))
        next(iter(stream))

    async def scenario() -> int:
        async with (
            AsyncCostGuard("http://costguard.test", "k", transport=fake.transport()) as aguard,
            aguard.reserve("acme", **ESTIMATE) as ahold,
        ):
            events = await ahold.call(aopen_stream, Script("gemini", EVENTS["gemini"]))
            return len([e async for e in events])

    assert len(chunks) == 4 and asyncio.run(scenario()) == 3
    assert fake.settlements == [("usage", 1117, 1024, 46), ("unknown",), ("usage", 2100, 2048, 830)]

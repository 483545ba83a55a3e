"""Streaming guards on the vendors' own SDKs (openai chat completions and responses,
anthropic messages, google-genai), sync and async: a complete stream commits the usage it
reported; a consumer that stops early, an upstream failure or a stream without usage commits
unknown usage (the whole hold is charged), unless the final usage had already been seen.

Each case runs against the fake (what the client sends) and the real runner (what the
ledger then holds: nothing left reserved, the hold spent when the usage is unknown)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from costguard_client import AsyncCostGuard, AsyncHold, CostGuard, Hold
from costguard_client import adapters as read

from tests.client.conftest import TenantKey, new_tenant
from tests.client.conftest import quota as one
from tests.client.fake import FakeCostGuard
from tests.client.vendors import (
    EVENTS,
    FINAL_USAGE,
    MODEL,
    PROVIDERS,
    UPSTREAM_ERRORS,
    Provider,
    Script,
    aopen_stream,
    before_final_usage,
    open_stream,
    without_usage,
)
from tests.e2e.conftest import Server

ESTIMATE: dict[str, Any] = {"input_tokens": 10_000, "max_output_tokens": 2_000}
Settled = tuple[Any, ...]


def expected(provider: Provider) -> Settled:
    """The commit a complete stream makes: the adapters' reading of the provider's final
    usage (input includes cached, output includes reasoning and thinking)."""
    kind, usage = FINAL_USAGE[provider]
    adapter: Callable[[Any], read.TokenUsage] = {
        "openai_chat": read.from_openai_chat,
        "openai_responses": read.from_openai_responses,
        "anthropic": read.from_anthropic,
        "gemini": read.from_gemini,
    }[kind]
    counts = adapter(usage)
    return ("usage", counts.input_tokens, counts.cached_input_tokens, counts.output_tokens)


def settled(hold: Hold | AsyncHold) -> Settled:
    """How the hold ended, from the record the server answered."""
    if hold.state == "released":
        return ("released",)
    assert hold.state == "committed" and hold.record is not None, hold.state
    record = hold.record
    if record.usage_unknown:
        assert record.cost_usd == hold.reserved_usd  # the whole hold
        return ("unknown",)
    return ("usage", record.input_tokens, record.cached_input_tokens, record.output_tokens)


@dataclass
class Backend:
    name: str
    sync: Callable[[], AbstractContextManager[CostGuard]]
    make_async: Callable[[], AbstractAsyncContextManager[AsyncCostGuard]]
    tenant_id: str
    check: Callable[[], None]
    """After a case: the ledger holds nothing reserved (every hold settled)."""


@pytest.fixture(params=["fake", "server"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        fake = FakeCostGuard()

        def make_fake() -> CostGuard:
            return CostGuard("http://costguard.test", "k", transport=fake.transport())

        def make_afake() -> AsyncCostGuard:
            return AsyncCostGuard("http://costguard.test", "k", transport=fake.transport())

        def nothing_held() -> None:
            assert all(r.status != "held" for r in fake.reservations.values())

        return Backend("fake", make_fake, make_afake, "acme", nothing_held)
    server: Server = request.getfixturevalue("server")
    admin: CostGuard = request.getfixturevalue("admin")
    tenant: TenantKey = new_tenant(admin, "10.00")

    def nothing_reserved() -> None:
        with CostGuard(server.url, tenant.api_key) as guard:
            assert one(guard.quotas(tenant.tenant_id)).reserved_usd == Decimal(0)

    return Backend(
        "server",
        lambda: CostGuard(server.url, tenant.api_key),
        lambda: AsyncCostGuard(server.url, tenant.api_key),
        tenant.tenant_id,
        nothing_reserved,
    )


@contextmanager
def reserved(backend: Backend, provider: Provider) -> Iterator[Hold]:
    with (
        backend.sync() as guard,
        guard.reserve(backend.tenant_id, model=MODEL[provider], **ESTIMATE) as hold,
    ):
        yield hold
    backend.check()


def run_async(backend: Backend, provider: Provider, body: Callable[[AsyncHold], Any]) -> AsyncHold:
    async def scenario() -> AsyncHold:
        async with backend.make_async() as guard:
            async with guard.reserve(backend.tenant_id, model=MODEL[provider], **ESTIMATE) as hold:
                await body(hold)
            return hold

    hold = asyncio.run(scenario())
    backend.check()
    return hold


# ---------------------------------------------------------------------------- sync
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_complete_stream_commits_the_usage_it_reported(
    backend: Backend, provider: Provider
) -> None:
    script = Script(provider, EVENTS[provider])
    with reserved(backend, provider) as hold:
        events = list(hold.stream(open_stream, script))

    assert len(events) == len(EVENTS[provider])
    assert settled(hold) == expected(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_already_opened_is_guarded_the_same_way(
    backend: Backend, provider: Provider
) -> None:
    with reserved(backend, provider) as hold:
        stream = open_stream(Script(provider, EVENTS[provider]))
        for _ in hold.stream(stream):
            pass

    assert settled(hold) == expected(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("how", ["close", "break"])
def test_a_consumer_that_stops_before_the_usage_charges_the_whole_hold(
    backend: Backend, provider: Provider, how: str
) -> None:
    with reserved(backend, provider) as hold:
        stream = hold.stream(open_stream, Script(provider, EVENTS[provider]))
        next(stream)
        if how == "close":
            stream.close()  # what a web server does when the browser goes away
        # "break": the generator is left suspended; leaving the block settles it

    assert settled(hold) == ("unknown",)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_upstream_failure_mid_stream_charges_the_whole_hold_and_propagates(
    backend: Backend, provider: Provider
) -> None:
    script = Script(provider, EVENTS[provider], fail_after=2)
    with pytest.raises(UPSTREAM_ERRORS), reserved(backend, provider) as hold:
        for _ in hold.stream(open_stream, script):
            pass

    assert settled(hold) == ("unknown",)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failure_after_the_final_usage_commits_that_usage(
    backend: Backend, provider: Provider
) -> None:
    script = Script(provider, EVENTS[provider], fail_after=before_final_usage(provider) + 1)
    with pytest.raises(UPSTREAM_ERRORS), reserved(backend, provider) as hold:
        for _ in hold.stream(open_stream, script):
            pass

    assert settled(hold) == expected(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_without_usage_charges_the_whole_hold(
    backend: Backend, provider: Provider
) -> None:
    with reserved(backend, provider) as hold:
        events = list(hold.stream(open_stream, Script(provider, without_usage(provider))))

    assert events and settled(hold) == ("unknown",)


def test_an_error_while_opening_the_stream_counts_as_a_started_call(backend: Backend) -> None:
    def refused(_: Script) -> Iterator[Any]:
        raise ConnectionResetError("reset while sending the request")

    with pytest.raises(ConnectionResetError), reserved(backend, "openai_chat") as hold:
        for _ in hold.stream(refused, Script("openai_chat", EVENTS["openai_chat"])):
            pass

    assert settled(hold) == ("unknown",)


def test_a_stream_never_iterated_from_a_function_never_started(backend: Backend) -> None:
    with reserved(backend, "openai_chat") as hold:
        hold.stream(open_stream, Script("openai_chat", EVENTS["openai_chat"]))

    assert settled(hold) == ("released",)


# ---------------------------------------------------------------------------- async
@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_a_complete_stream_commits_the_usage_it_reported(
    backend: Backend, provider: Provider
) -> None:
    seen: list[Any] = []

    async def body(hold: AsyncHold) -> None:
        async for event in hold.stream(aopen_stream, Script(provider, EVENTS[provider])):
            seen.append(event)

    hold = run_async(backend, provider, body)
    assert len(seen) == len(EVENTS[provider])
    assert settled(hold) == expected(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("how", ["aclose", "break"])
def test_async_a_consumer_that_stops_before_the_usage_charges_the_whole_hold(
    backend: Backend, provider: Provider, how: str
) -> None:
    async def body(hold: AsyncHold) -> None:
        stream = await aopen_stream(Script(provider, EVENTS[provider]))
        guarded = hold.stream(stream)
        await anext(guarded)
        if how == "aclose":
            await guarded.aclose()

    assert settled(run_async(backend, provider, body)) == ("unknown",)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_an_upstream_failure_mid_stream_charges_the_whole_hold(
    backend: Backend, provider: Provider
) -> None:
    async def body(hold: AsyncHold) -> None:
        with pytest.raises(UPSTREAM_ERRORS):
            async for _ in hold.stream(
                aopen_stream, Script(provider, EVENTS[provider], fail_after=2)
            ):
                pass

    assert settled(run_async(backend, provider, body)) == ("unknown",)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_a_failure_after_the_final_usage_commits_that_usage(
    backend: Backend, provider: Provider
) -> None:
    script = Script(provider, EVENTS[provider], fail_after=before_final_usage(provider) + 1)

    async def body(hold: AsyncHold) -> None:
        with pytest.raises(UPSTREAM_ERRORS):
            async for _ in hold.stream(aopen_stream, script):
                pass

    assert settled(run_async(backend, provider, body)) == expected(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_a_stream_without_usage_charges_the_whole_hold(
    backend: Backend, provider: Provider
) -> None:
    async def body(hold: AsyncHold) -> None:
        async for _ in hold.stream(aopen_stream, Script(provider, without_usage(provider))):
            pass

    assert settled(run_async(backend, provider, body)) == ("unknown",)

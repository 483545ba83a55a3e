"""The SSE helper: a streamed answer is guarded like any call, and a refusal reaches the
browser as the same `event: error` + `event: done` the API itself streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
from costguard_client import AsyncCostGuard, CostGuard, Hold, aguarded_stream, guarded_stream
from costguard_client.aio import AsyncHold
from costguard_client.sse import sse_event

from tests.client.conftest import TenantKey
from tests.client.conftest import quota as one
from tests.e2e.conftest import Server

ESTIMATE: dict[str, Any] = {"model": "gpt-4o", "input_tokens": 10_000, "max_output_tokens": 2_000}


def frames(stream: str) -> list[tuple[str, Any]]:
    """(event, data) of each frame of an SSE stream."""
    out = []
    for block in stream.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def reserved(guard: CostGuard, tenant_id: str) -> tuple[Decimal, Decimal]:
    quota = one(guard.quotas(tenant_id))
    return quota.spent_usd, quota.reserved_usd


def answer(hold: Hold) -> Iterator[str]:
    for word in ("Hello", "world"):
        yield sse_event("token", {"text": word})
    hold.commit(input_tokens=10_000, output_tokens=1_000)
    yield sse_event("done", {"status": "ok"})


def test_a_guarded_stream_passes_the_answer_through_and_commits(
    guard: CostGuard, tenant: TenantKey
) -> None:
    stream = "".join(guarded_stream(guard, tenant.tenant_id, answer, **ESTIMATE))

    assert frames(stream) == [
        ("token", {"text": "Hello"}),
        ("token", {"text": "world"}),
        ("done", {"status": "ok"}),
    ]
    assert reserved(guard, tenant.tenant_id) == (Decimal("0.035"), Decimal(0))


def test_a_refusal_is_streamed_as_the_apis_own_error_and_done_events(
    server: Server, guard: CostGuard, tenant: TenantKey
) -> None:
    # Given the API's own SSE refusal of a $5 estimate against $1.00
    body = {"resource": "llm", "estimated_cost_usd": "5"}
    api = httpx.post(
        f"{server.url}/v1/tenants/{tenant.tenant_id}/reservations",
        json=body,
        headers={"Authorization": f"Bearer {tenant.api_key}", "Accept": "text/event-stream"},
    )
    assert (api.status_code, api.headers["content-type"]) == (429, "text/event-stream")

    # When the app streams through the helper with the same estimate
    produced: list[str] = []

    def never(hold: Hold) -> Iterator[str]:
        produced.append(hold.reservation_id)
        yield "unreachable"

    stream = "".join(guarded_stream(guard, tenant.tenant_id, never, estimated_cost_usd="5"))

    # Then it forwards the same two events, carrying the same problem, and ran nothing
    ours, theirs = frames(stream), frames(api.text)
    assert [e for e, _ in ours] == [e for e, _ in theirs] == ["error", "done"]
    assert ours[1][1] == theirs[1][1] == {"status": "quota_exceeded"}

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "retry_after_seconds"}

    assert strip(ours[0][1]) == strip(theirs[0][1])
    assert ours[0][1]["quota_id"] == "tenant:llm:month"
    assert ours[0][1]["remaining_usd"] == "1.000000"
    assert produced == []


def test_a_client_that_goes_away_mid_stream_charges_the_whole_hold(
    guard: CostGuard, tenant: TenantKey
) -> None:
    stream = guarded_stream(guard, tenant.tenant_id, answer, **ESTIMATE)
    assert frames(next(stream)) == [("token", {"text": "Hello"})]
    assert reserved(guard, tenant.tenant_id) == (Decimal(0), Decimal("0.045"))

    stream.close()  # what a server does when the browser disconnects

    # The answer was being generated: what it used is unknown, so the hold is spent.
    assert reserved(guard, tenant.tenant_id) == (Decimal("0.045"), Decimal(0))
    (record,) = guard.usage_records(tenant.tenant_id).records
    assert (record.usage_unknown, record.cost_usd) == (True, Decimal("0.045"))


def test_a_produce_that_serves_a_cached_answer_releases_first(
    guard: CostGuard, tenant: TenantKey
) -> None:
    def cached(hold: Hold) -> Iterator[str]:
        hold.release()
        yield sse_event("token", {"text": "from the cache"})

    stream = "".join(guarded_stream(guard, tenant.tenant_id, cached, **ESTIMATE))

    assert frames(stream) == [("token", {"text": "from the cache"})]
    assert reserved(guard, tenant.tenant_id) == (Decimal(0), Decimal(0))


def test_the_async_stream_guards_the_same_way(server: Server, tenant: TenantKey) -> None:
    async def answer_async(hold: AsyncHold) -> AsyncIterator[str]:
        yield sse_event("token", {"text": "Hi"})
        await hold.commit(input_tokens=10_000, output_tokens=1_000)

    async def scenario() -> tuple[list[str], list[str], Decimal]:
        async with AsyncCostGuard(server.url, tenant.api_key) as guard:
            ok = [
                f async for f in aguarded_stream(guard, tenant.tenant_id, answer_async, **ESTIMATE)
            ]
            refused = [
                f
                async for f in aguarded_stream(
                    guard, tenant.tenant_id, answer_async, estimated_cost_usd="5"
                )
            ]
            quota = one(await guard.quotas(tenant.tenant_id))
            return ok, refused, quota.spent_usd

    ok, refused, spent = asyncio.run(scenario())
    assert [e for e, _ in frames("".join(ok))] == ["token"]
    assert [e for e, _ in frames("".join(refused))] == ["error", "done"]
    assert spent == Decimal("0.035")


def test_a_multi_line_data_is_framed_line_by_line() -> None:
    assert sse_event("note", "a\nb") == "event: note\ndata: a\ndata: b\n\n"

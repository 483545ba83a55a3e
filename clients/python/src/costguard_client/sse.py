"""Server-sent events: guard a streamed answer and forward a refusal as `event: error`.

The events are the ones the costguard API itself sends to `Accept: text/event-stream`:

    event: error
    data: {"type": ".../quota-exceeded", "status": 429, "quota_id": ..., ...}

    event: done
    data: {"status": "quota_exceeded"}

so a browser that already handles costguard's stream handles the app's the same way.
"""

from __future__ import annotations

import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Generator,
    Iterable,
)
from contextlib import AsyncExitStack, ExitStack
from typing import Any

from costguard_client.aio import AsyncCostGuard, AsyncHold
from costguard_client.client import CostGuard, Hold
from costguard_client.errors import QuotaExceeded, TenantPaused


def sse_event(event: str, data: Any) -> str:
    """One SSE frame; `data` is written as compact JSON (a str is sent as it is)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {event}\n{lines}\n"


def refusal_events(error: QuotaExceeded | TenantPaused) -> list[str]:
    """The `error` and `done` frames for a refusal, carrying the server's problem body."""
    status = "quota_exceeded" if isinstance(error, QuotaExceeded) else "paused"
    return [sse_event("error", error.problem), sse_event("done", {"status": status})]


def guarded_stream(
    guard: CostGuard,
    tenant_id: str,
    produce: Callable[[Hold], Iterable[str]],
    **estimate: Any,
) -> Generator[str, None, None]:
    """Reserve, then yield what `produce(hold)` yields; a refusal becomes `event: error`.

    `produce` is the guarded call: it streams the answer (SSE frames, e.g. via `sse_event`),
    best through `hold.stream(provider_stream)`, which commits the usage the provider reports.
    The call counts as started when `produce` starts, so if the client goes away (the
    generator is closed) or `produce` fails before the usage was known, the whole hold is
    charged (unknown usage); a `produce` that serves a cached answer calls `hold.release()`
    first. `estimate` is passed to `guard.reserve`.
    """
    with ExitStack() as stack:
        try:
            hold = stack.enter_context(guard.reserve(tenant_id, **estimate))
        except (QuotaExceeded, TenantPaused) as refused:
            yield from refusal_events(refused)
            return
        hold.started()
        yield from produce(hold)


async def aguarded_stream(
    guard: AsyncCostGuard,
    tenant_id: str,
    produce: Callable[[AsyncHold], AsyncIterable[str]],
    **estimate: Any,
) -> AsyncGenerator[str, None]:
    """`guarded_stream` for asyncio (`StreamingResponse(aguarded_stream(...))`)."""
    async with AsyncExitStack() as stack:
        try:
            hold = await stack.enter_async_context(guard.reserve(tenant_id, **estimate))
        except (QuotaExceeded, TenantPaused) as refused:
            for frame in refusal_events(refused):
                yield frame
            return
        hold.started()
        async for frame in produce(hold):
            yield frame

"""An in-memory costguard behind an `httpx.MockTransport`, for what the client does on its
own side: which settlement it sends (usage, unknown usage, release), how it retries, what it
raises. It keeps reservations, commits (`usage_unknown` charges the hold), releases and
Idempotency-Key replays like the API, and lets a test script failures in front of any call.
The money rules themselves are the real server's: the client suite checks them there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

PER_MILLION = Decimal(1_000_000)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

Fault = Callable[[httpx.Request], httpx.Response | None]
"""Runs before the fake handles a request: a response to send instead, None to go on, or it
raises an `httpx.TransportError` (then nothing was applied), or see `lost_answer`."""


def status(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Fault:
    """Answer `code` instead (nothing applied)."""

    def fault(_: httpx.Request) -> httpx.Response:
        content = body if isinstance(body, bytes | str) else json.dumps(body or {})
        return httpx.Response(code, content=content, headers=headers or {})

    return fault


def reset(_: httpx.Request) -> httpx.Response:
    """The connection is refused before anything is applied."""
    raise httpx.ConnectError("connection refused")


LOST = "lost"
"""A fault that applies the call, then loses its answer (ReadError)."""


@dataclass
class Reservation:
    reservation_id: str
    hold_usd: Decimal
    status: str = "held"
    settlement: tuple[Any, ...] | None = None
    """("usage", input, cached, output) | ("unknown",) | ("released",)."""


@dataclass
class FakeCostGuard:
    hold_usd: Decimal = Decimal("0.045")
    ttl_seconds: int = 300
    faults: dict[str, list[Fault | str]] = field(default_factory=dict)
    """Per route kind ("reserve", "commit", "release", "usage"): faults used in order."""
    reservations: dict[str, Reservation] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    _replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def settlements(self) -> list[tuple[Any, ...] | None]:
        return [r.settlement for r in self.reservations.values()]

    def kind(self, request: httpx.Request) -> str:
        path = request.url.path
        if path.endswith("/commit"):
            return "commit"
        if request.method == "DELETE" and "/reservations/" in path:
            return "release"
        if path.endswith("/reservations"):
            return "reserve"
        if path.endswith("/usage") and request.method == "POST":
            return "usage"
        return "other"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        kind = self.kind(request)
        queue = self.faults.get(kind) or []
        lose = False
        if queue:
            fault = queue.pop(0)
            if fault == LOST:
                lose = True
            else:
                assert callable(fault)
                answer = fault(request)
                if answer is not None:
                    return answer
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self._replies:
            code, body = self._replies[key]
        else:
            code, body = self.handle(kind, request)
            if key is not None:
                self._replies[key] = (code, body)
        if lose:
            raise httpx.ReadError("the answer was lost", request=request)
        ctype = "application/problem+json" if code >= 400 else "application/json"
        return httpx.Response(code, json=body, headers={"content-type": ctype})

    # ------------------------------------------------------------------------ routes
    def handle(self, kind: str, request: httpx.Request) -> tuple[int, dict[str, Any]]:
        body = json.loads(request.content) if request.content else {}
        if kind == "reserve":
            rid = f"r{len(self.reservations) + 1}"
            hold = Decimal(body.get("estimated_cost_usd") or self.hold_usd)
            self.reservations[rid] = Reservation(rid, hold)
            return 201, {
                "reservation_id": rid,
                "tenant_id": "acme",
                "resource": body.get("resource", "llm"),
                "reserved_usd": str(hold),
                "created_at": NOW.isoformat(),
                "expires_at": (NOW + timedelta(seconds=self.ttl_seconds)).isoformat(),
            }
        if kind in ("commit", "release"):
            rid = request.url.path.split("/reservations/")[1].split("/")[0]
            found = self.reservations.get(rid)
            if found is None:
                return 404, {"type": "https://costguard.dev/problems/not-found", "status": 404}
            if found.status != "held":
                return 409, {
                    "type": "https://costguard.dev/problems/reservation-not-held",
                    "title": "Reservation not held",
                    "status": 409,
                    "reservation_status": found.status,
                }
            if kind == "release":
                found.status, found.settlement = "released", ("released",)
                return 200, {
                    "reservation_id": rid,
                    "status": "released",
                    "released_usd": str(found.hold_usd),
                }
            found.status = "committed"
            if body.get("usage_unknown"):
                found.settlement = ("unknown",)
                return 200, self.record(rid, found.hold_usd, usage_unknown=True)
            counts = (
                body.get("input_tokens", 0),
                body.get("cached_input_tokens", 0),
                body.get("output_tokens", 0),
            )
            found.settlement = ("usage", *counts)
            return 200, self.record(rid, found.hold_usd, **body)
        if kind == "usage":
            return 201, self.record(None, Decimal(body.get("cost_usd") or "0.01"), **body)
        return 404, {"type": "https://costguard.dev/problems/not-found", "status": 404}

    def record(self, rid: str | None, cost: Decimal, **fields: Any) -> dict[str, Any]:
        record = {
            "record_id": f"rec{len(self.records) + 1}",
            "tenant_id": "acme",
            "reservation_id": rid,
            "status": "committed" if rid else "recorded",
            "resource": fields.get("resource") or "llm",
            "cost_usd": str(cost),
            "usage_unknown": bool(fields.get("usage_unknown")),
            "input_tokens": fields.get("input_tokens"),
            "output_tokens": fields.get("output_tokens"),
            "cached_input_tokens": fields.get("cached_input_tokens"),
            "model": fields.get("model"),
            "occurred_at": NOW.isoformat(),
            "recorded_at": NOW.isoformat(),
        }
        self.records.append(record)
        return record


class Clock:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

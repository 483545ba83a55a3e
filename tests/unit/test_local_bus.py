"""The local EventBridge bus of `make run`: real envelopes, routes, Lambda-like delivery."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.onboarding.handler import TenantCreatedEvent
from local.bus import ATTEMPTS, LocalBus, LocalDeadLetters


def quiet_bus(**kw: Any) -> tuple[LocalBus, io.StringIO]:
    out = io.StringIO()
    return LocalBus(out=out, retry_delay_seconds=0, **kw), out


def test_an_event_is_a_real_eventbridge_envelope_routed_by_detail_type() -> None:
    bus, out = quiet_bus(source="costguard")
    got: list[dict[str, Any]] = []
    bus.route("TenantCreated", "onboarding", got.append)

    bus.put("TenantCreated", {"tenant_id": "acme", "plan": "pro"})
    assert bus.drain()

    [event] = got
    parsed = TenantCreatedEvent.model_validate(event)  # what the Lambda handler parses
    assert (parsed.source, parsed.detail.tenant_id, parsed.detail.plan) == (
        "costguard",
        "acme",
        "pro",
    )
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    [listed] = bus.events()
    assert listed["deliveries"] == {"onboarding": "ok"} and listed["id"] == event["id"]
    assert out.getvalue().splitlines() == [
        'event TenantCreated from costguard → onboarding: {"tenant_id":"acme","plan":"pro"}'
    ]
    bus.close()


def test_events_without_a_route_are_kept_in_a_bounded_list_and_printed_one_line_each() -> None:
    bus, out = quiet_bus(keep=3)

    for n in range(5):
        bus.put(
            "QuotaThresholdCrossed", {"tenant_id": "acme", "threshold_pct": n, "note": "x" * 300}
        )

    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert all(
        line.startswith("event QuotaThresholdCrossed from costguard → no local route: {")
        for line in lines
    )
    assert all(len(line) < 250 for line in lines)
    assert [e["detail"]["threshold_pct"] for e in bus.events()] == [4, 3, 2]  # newest first
    assert all(e["deliveries"] == {} for e in bus.events())


def test_the_caller_does_not_wait_and_a_failing_target_is_retried_then_dead_lettered() -> None:
    bus, out = quiet_bus()
    calls: list[str] = []
    release = threading.Event()

    def broken(event: dict[str, Any]) -> None:
        release.wait(5)
        calls.append(event["id"])
        raise RuntimeError("ledger unavailable")

    bus.route("TenantCreated", "onboarding", broken)
    started = time.monotonic()
    bus.put("TenantCreated", {"tenant_id": "acme"})
    assert time.monotonic() - started < 1  # asynchronous, as EventBridge → Lambda is
    release.set()
    assert bus.drain()

    assert len(calls) == ATTEMPTS == 3
    [dead] = bus.dead_letters
    assert dead["target"] == "onboarding" and dead["event"]["detail"] == {"tenant_id": "acme"}
    assert bus.events()[0]["deliveries"] == {"onboarding": "dead-lettered"}
    assert (
        "invocation 3/3" in out.getvalue()
        and "RuntimeError('ledger unavailable')" in out.getvalue()
    )
    bus.close()


def test_one_invocation_at_a_time_per_target() -> None:
    bus, _ = quiet_bus()
    running, most = [0], [0]
    lock = threading.Lock()

    def target(_: dict[str, Any]) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002)
        with lock:
            running[0] -= 1

    bus.route("TenantCreated", "onboarding", target)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: bus.put("TenantCreated", {"tenant_id": f"t-{n:03}"}), range(40)))
    assert bus.drain()

    assert most[0] == 1
    assert all(e["deliveries"] == {"onboarding": "ok"} for e in bus.events())
    bus.close()


def test_a_handler_that_dead_letters_itself_reports_it_and_the_reason_is_kept() -> None:
    bus, out = quiet_bus()
    dead = LocalDeadLetters(bus, "onboarding")

    def handler(event: dict[str, Any]) -> dict[str, str]:
        dead.send(event, "detail.tenant_id: Field required")
        return {"status": "dead-lettered"}

    bus.route("TenantCreated", "onboarding", handler)
    bus.put("TenantCreated", {"name": "Nameless"})
    assert bus.drain()

    assert bus.events()[0]["deliveries"] == {"onboarding": "dead-lettered"}
    [kept] = bus.dead_letters
    assert kept["reason"] == "detail.tenant_id: Field required"
    assert "onboarding: dead-lettered event" in out.getvalue()
    bus.close()


def test_a_route_can_be_limited_to_sources() -> None:
    bus, _ = quiet_bus()
    got: list[str] = []
    bus.route(
        "TenantCreated",
        "onboarding",
        lambda e: got.append(e["source"]),
        sources=frozenset({"costguard"}),
    )

    bus.put("TenantCreated", {"tenant_id": "acme"})
    from local.bus import envelope

    bus.put_event(envelope("TenantCreated", {"tenant_id": "globex"}, "someone.else"))
    assert bus.drain()

    assert got == ["costguard"]
    bus.close()

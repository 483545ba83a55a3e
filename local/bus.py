"""The deployment's EventBridge bus on one machine, for `make run`.

`LocalBus` is an `EventSink`: each `put` becomes a real EventBridge envelope (`version`, `id`,
`detail-type`, `source`, `account`, `time`, `region`, `resources`, `detail`) and goes to the
handlers routed for its detail-type — as a rule and its Lambda target would: asynchronously
(the caller does not wait), one invocation at a time per target, an invocation that raises
retried twice (Lambda's async retries, without the minutes between them) and then kept in
`dead_letters` (the target's DLQ). Errors are printed; they never reach the caller or stop the
server. Every event, routed or not, is kept in a bounded recent list (`GET /local/events`) and
printed as one line.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from costguard.notify import SOURCE

Target = Callable[[dict[str, Any]], Any]
ACCOUNT = "000000000000"
REGION = "us-east-1"
ATTEMPTS = 3
"""An async Lambda invocation is tried once and retried twice before its DLQ."""


def envelope(
    detail_type: str, detail: Mapping[str, Any], source: str, bus_name: str = "costguard"
) -> dict[str, Any]:
    """The event EventBridge hands a rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [],
        "detail": json.loads(json.dumps(dict(detail), default=str)),
    }


@dataclass
class _Route:
    name: str
    target: Target
    sources: frozenset[str] | None
    attempts: int = ATTEMPTS
    inbox: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)


class LocalBus:
    """An in-process EventSink that routes events by detail-type to Lambda-like targets."""

    def __init__(
        self,
        source: str = SOURCE,
        keep: int = 200,
        out: TextIO | None = None,
        retry_delay_seconds: float = 0.05,
    ) -> None:
        self.source = source
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.dead_letters: deque[dict[str, Any]] = deque(maxlen=keep)
        self._routes: dict[str, list[_Route]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._out = out
        self._retry_delay = retry_delay_seconds

    # ------------------------------------------------------------------ wiring
    def route(
        self,
        detail_type: str,
        name: str,
        target: Target,
        sources: frozenset[str] | None = None,
        attempts: int = ATTEMPTS,
    ) -> None:
        """Send events of `detail_type` (and, if given, one of `sources`) to `target`, tried
        `attempts` times before the dead-letter list."""
        r = _Route(name, target, sources, attempts)
        self._routes.setdefault(detail_type, []).append(r)
        thread = threading.Thread(target=self._work, args=(r,), daemon=True, name=f"bus-{name}")
        self._threads.append(thread)
        thread.start()

    def close(self, timeout: float = 5) -> None:
        for routes in self._routes.values():
            for r in routes:
                r.inbox.put(None)
        for thread in self._threads:
            thread.join(timeout)

    # ------------------------------------------------------------------ EventSink
    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.put_event(envelope(detail_type, detail, self.source))

    def put_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Accept one whole envelope (what PutEvents would build, or a test's sample)."""
        routes = [
            r
            for r in self._routes.get(str(event.get("detail-type")), [])
            if r.sources is None or event.get("source") in r.sources
        ]
        record = {"event": event, "deliveries": {r.name: "pending" for r in routes}}
        with self._lock:
            self.recent.append(record)
        summary = json.dumps(event.get("detail"), separators=(",", ":"), default=str)
        if len(summary) > 160:
            summary = summary[:157] + "..."
        where = ", ".join(r.name for r in routes) or "no local route"
        self.say(
            f"event {event.get('detail-type')} from {event.get('source')} → {where}: {summary}"
        )
        for r in routes:
            r.inbox.put(record)
        return record

    # ------------------------------------------------------------------ reading
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**r["event"], "deliveries": dict(r["deliveries"])} for r in reversed(self.recent)
            ]

    def drain(self, timeout: float = 10) -> bool:
        """Wait until every routed event was handled (tests); False on timeout."""
        deadline = time.monotonic() + timeout
        for routes in self._routes.values():
            for r in routes:
                while r.inbox.unfinished_tasks:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.01)
        return True

    # ------------------------------------------------------------------ delivery
    def _work(self, r: _Route) -> None:
        while True:
            record = r.inbox.get()
            try:
                if record is None:
                    return
                record["deliveries"][r.name] = self._invoke(r, record["event"])
            finally:
                r.inbox.task_done()

    def _invoke(self, r: _Route, event: dict[str, Any]) -> str:
        for attempt in range(1, r.attempts + 1):
            try:
                answer = r.target(event)
            except Exception as exc:  # what Lambda would log; the next attempt or the DLQ follows
                self.say(
                    f"{r.name}: invocation {attempt}/{r.attempts} for event {event.get('id')} "
                    f"failed: {exc!r}",
                    err=True,
                )
                time.sleep(self._retry_delay * attempt)
                continue
            status = answer.get("status") if isinstance(answer, dict) else None
            return str(status or "ok")
        self.dead_letters.append({"target": r.name, "event": event})
        self.say(f"{r.name}: event {event.get('id')} sent to the dead-letter list", err=True)
        return "dead-lettered"

    def say(self, line: str, err: bool = False) -> None:
        stream = self._out or (sys.stderr if err else sys.stdout)
        print(line, file=stream, flush=True)


class LocalDeadLetters:
    """The onboarding function's DLQ for `make run`: kept on the bus, printed."""

    def __init__(self, bus: LocalBus, name: str) -> None:
        self.bus = bus
        self.name = name

    def send(self, event: Mapping[str, Any], reason: str) -> None:
        self.bus.dead_letters.append({"target": self.name, "event": dict(event), "reason": reason})
        self.bus.say(f"{self.name}: dead-lettered event {event.get('id')}: {reason}", err=True)

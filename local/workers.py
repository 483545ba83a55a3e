"""A pool of API handler processes, like warm Lambda containers behind API Gateway.

Each worker is a process with its own handler instance (its own module-level resolver, ledger,
key cache and boto3 client), and runs one invocation at a time, as one Lambda execution
environment does. The runner's HTTP front end turns each request into an API Gateway event and
hands it to an idle worker; with every worker busy the request waits for one (Lambda would start
another container). Events the handler puts on the bus (`TenantCreated`…) come back with the
result and go onto the runner's one bus, in order. Schedules, the stream poller and the bus run
once, in the runner; only API invocations are spread over the pool.

Workers are started with `spawn` (a fresh interpreter each, nothing inherited from the runner's
threads), ignore Ctrl-C (the runner stops them, in order) and exit when the runner's end of their
pipe closes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costguard.ledger import Ledger
    from costguard.notify import EventSink
    from costguard.settings import Settings

Emitted = list[tuple[str, dict[str, Any]]]


def default_count() -> int:
    """The CPU count this process may use (the default of `COSTGUARD_WORKERS`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


class CollectingSink:
    """The worker's EventSink: keeps what the handler puts, for the runner's bus."""

    def __init__(self) -> None:
        self.emitted: Emitted = []

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.emitted.append((detail_type, dict(detail)))

    def take(self) -> Emitted:
        taken, self.emitted = self.emitted, []
        return taken


def serve_api_on(ledger: Ledger, settings: Settings, events: EventSink) -> None:
    """This process's API handler on the runner's store and bus: what the handler's composition
    root (functions/api/deps.py) builds from the settings in AWS, given instead."""
    from functions.api.deps import get_events, get_keys, get_ledger, keys_for
    from functions.api.handler import app

    keys = keys_for(ledger, settings)
    app.dependency_overrides[get_ledger] = lambda: ledger
    app.dependency_overrides[get_keys] = lambda: keys
    app.dependency_overrides[get_events] = lambda: events


def _serve(conn: Connection, endpoint: str, table_name: str, admin_key: str) -> None:
    """A worker's life: build one handler instance, then answer invocations until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from costguard.ledger import ledger_from_settings
    from costguard.settings import Settings
    from costguard.topology import API

    from functions.api.handler import lambda_handler
    from local.events import lambda_context
    from local.store import client_for, floor_update

    settings = Settings(admin_key=admin_key, table_name=table_name)
    client = client_for(endpoint)
    sink = CollectingSink()
    serve_api_on(ledger_from_settings(settings, client), settings, sink)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            if kind == "api":
                result = lambda_handler(payload, lambda_context(API))
            else:  # "floor"
                floor_update(client, table_name)
                result = {"statusCode": 200, "body": '{"floor":"ok"}'}
            reply: tuple[str, Any, Emitted] = ("ok", result, sink.take())
        except Exception as exc:  # what Lambda reports as an unhandled error: a 502 at the gateway
            print(f"api worker {os.getpid()}: invocation failed: {exc!r}", file=sys.stderr)
            reply = ("error", repr(exc), sink.take())
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


@dataclass
class Worker:
    process: BaseProcess
    conn: Connection


@dataclass
class Pool:
    """`size` API handler processes; `invoke` takes an idle one for one invocation."""

    endpoint: str
    table_name: str
    admin_key: str
    size: int
    idle: queue.Queue[Worker] = field(default_factory=queue.Queue)
    workers: list[Worker] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _spawn(self) -> Worker:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(theirs, self.endpoint, self.table_name, self.admin_key),
            name="costguard-api",
            daemon=True,
        )
        process.start()
        theirs.close()
        worker = Worker(process, ours)
        with self.lock:
            self.workers.append(worker)
        return worker

    def start(self) -> None:
        """Start every worker (they import the handler in parallel); `ready` waits for them."""
        self._starting = [self._spawn() for _ in range(self.size)]

    def ready(self, timeout: float = 120) -> None:
        for worker in self._starting:
            if not worker.conn.poll(timeout):
                raise RuntimeError("an API worker did not start in time")
            try:
                worker.conn.recv()
            except EOFError as exc:
                raise RuntimeError(
                    f"an API worker exited at start ({worker.process.exitcode})"
                ) from exc
            self.idle.put(worker)

    def invoke(self, kind: str, payload: Any) -> tuple[dict[str, Any], Emitted]:
        """One invocation on an idle worker: the Lambda result and the events it put.

        A worker that dies mid-invocation answers 502 (as API Gateway does for a crashed
        function) and is replaced."""
        while True:
            if self.closing.is_set():
                return _gateway_error(503, "the runner is stopping"), []
            try:
                worker = self.idle.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        try:
            worker.conn.send((kind, payload))
            status, result, emitted = worker.conn.recv()
        except (EOFError, OSError):
            if self.closing.is_set():  # stopped mid-invocation: the answer is lost, say so
                return _gateway_error(503, "the runner is stopping"), []
            self._replace(worker)
            return _gateway_error(502, "the API worker died during the invocation"), []
        self.idle.put(worker)
        if status != "ok":
            return _gateway_error(502, f"the API handler raised {result}"), emitted
        return dict(result), emitted

    def _replace(self, dead: Worker) -> None:
        with self.lock:
            if dead in self.workers:
                self.workers.remove(dead)
        print(f"api worker {dead.process.pid} died; starting another", file=sys.stderr)

        def start_one() -> None:
            worker = self._spawn()
            if worker.conn.poll(120):
                try:
                    worker.conn.recv()
                    self.idle.put(worker)
                except EOFError:
                    pass

        threading.Thread(target=start_one, daemon=True, name="api-worker-replace").start()

    def close(self, timeout: float = 0.5) -> None:
        """Stop every worker: SIGTERM (busy or not), SIGKILL after `timeout` seconds."""
        self.closing.set()
        with self.lock:
            workers = list(self.workers)
        for worker in workers:
            worker.conn.close()
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in workers:
            worker.process.join(timeout)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)


def _gateway_error(status: int, message: str) -> dict[str, Any]:
    import json

    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": message}),
    }

"""`make run`: the whole product on one machine, through the same handlers as in AWS.

The front end (this process) is API Gateway, EventBridge (bus and schedules) and the stream's
event source mapping; the API handler runs in a pool of worker processes (local.workers), like
warm Lambda containers; the store is DynamoDB Local, persistent in a data folder (local.ddblocal).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from costguard import topology
from costguard.alerts import Publisher
from costguard.ledger import Ledger, ledger_from_settings
from costguard.settings import Settings
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from local import alerting, ddblocal
from local.bus import LocalBus
from local.events import lambda_context, to_event, to_response
from local.store import floor_update, open_store
from local.streams import Poller
from local.workers import Pool, default_count, serve_api_on

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / ".data"
"""Where `make run` keeps DynamoDB Local's file unless `COSTGUARD_DATA_DIR` says otherwise
(git-ignored)."""


@dataclass
class Schedule:
    """A function EventBridge would run on a rate; here a timer (and `POST /local/schedules/x`)."""

    name: str
    every_seconds: float
    run: Callable[[], Any]


@dataclass
class Runner:
    ledger: Ledger
    schedules: dict[str, Schedule] = field(default_factory=dict)
    bus: LocalBus | None = None
    """The deployment's event bus (TenantCreated → onboarding); `GET /local/events` lists it."""
    stream: Poller | None = None
    """The ledger's stream → the alerts handler (a thread; `POST /local/schedules/stream`)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    pool: Pool | None = None
    """The API handler processes (`make run`); None: the handler runs in this process."""
    invocation: threading.Lock = field(default_factory=threading.Lock)
    """In process, one handler invocation at a time, as in one warm Lambda container: the
    resolver keeps per-request state on a module-level object, which Lambda never shares
    between requests."""

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/local/schedules/") and request.method == "POST":
            response = self._run_schedule(request.path.rsplit("/", 1)[1])
        elif request.path == "/local/events" and self.bus is not None:
            response = self._events(request, self.bus)
        elif request.path == "/local/floor" and request.method == "POST":
            response = to_response(self.invoke("floor", None))
        else:
            response = to_response(self.invoke("api", to_event(request)))
        return response(environ, start_response)

    def invoke(self, kind: str, payload: Any) -> dict[str, Any]:
        """An API invocation ("api", with its event) or the floor ("floor"), on a worker of the
        pool or in this process; events the handler put go onto this runner's bus."""
        if self.pool is not None:
            result, emitted = self.pool.invoke(kind, payload)
            for detail_type, detail in emitted:
                if self.bus is not None:
                    self.bus.put(detail_type, detail)
            return result
        with self.invocation:
            if kind == "floor":
                floor_update(self.ledger.table.client, self.ledger.table.name)
                return {"statusCode": 200, "body": '{"floor":"ok"}'}
            from functions.api.handler import lambda_handler

            return dict(lambda_handler(payload, lambda_context(topology.API)))

    def _run_schedule(self, name: str) -> Response:
        schedule = self.schedules.get(name)
        if schedule is None:
            return Response(
                json.dumps({"error": f"no schedule {name!r}", "schedules": sorted(self.schedules)}),
                status=404,
                content_type="application/json",
            )
        return Response(
            json.dumps({"schedule": name, "result": schedule.run()}, default=str),
            content_type="application/json",
        )

    @staticmethod
    def _events(request: Request, bus: LocalBus) -> Response:
        """GET: recent events (newest first) and dead letters. POST: put one event, as
        `aws events put-events` would (`{"detail-type", "source", "detail"}`)."""
        if request.method == "POST":
            from local.bus import envelope

            try:
                body = json.loads(request.get_data() or b"{}")
                event = envelope(
                    str(body["detail-type"]), dict(body["detail"]), str(body["source"])
                )
            except (ValueError, KeyError, TypeError) as exc:
                return Response(
                    json.dumps({"error": f"need detail-type, source, detail: {exc!r}"}),
                    status=400,
                    content_type="application/json",
                )
            record = bus.put_event(event)
            return Response(
                json.dumps(record["event"]), status=202, content_type="application/json"
            )
        answer = {"events": bus.events(), "dead_letters": list(bus.dead_letters)}
        return Response(json.dumps(answer, default=str), content_type="application/json")

    def start_timers(self) -> None:
        if self.stream is not None:
            threading.Thread(
                target=self.stream.run, args=(self.stopping,), daemon=True, name="stream"
            ).start()
        for schedule in self.schedules.values():
            threading.Thread(
                target=self._tick, args=(schedule,), daemon=True, name=f"schedule-{schedule.name}"
            ).start()

    def _tick(self, schedule: Schedule) -> None:
        while not self.stopping.wait(schedule.every_seconds):
            try:
                schedule.run()
            except Exception as exc:  # a failed run is reported, the timer goes on
                print(f"schedule {schedule.name} failed: {exc!r}", file=sys.stderr)


SCHEDULED_EVENT = {"detail-type": "Scheduled Event", "source": "aws.events"}
Target = Callable[[dict[str, Any], Any], Any]
"""A function as a trigger invokes it: (event, context) → its answer."""


def build(
    settings: Settings, endpoint: str | None, pool: Pool | None = None
) -> tuple[Runner, Callable[[], None]]:
    """Wire the real handlers to the chosen store, on the triggers the topology declares
    (costguard/topology.py, as infra/ does): its schedules on timers, its bus routes on the local
    bus, its stream consumer on the poller. Returns the runner and its closer.

    With a `pool` the API runs in the pool's processes; without one, in this process (the
    in-process tests: `tests/api`)."""
    store = open_store(settings.table_name, endpoint)
    ledger = ledger_from_settings(settings, store.client)
    bus = LocalBus(source=settings.event_source)
    if pool is None:
        serve_api_on(ledger, settings, bus)
    stream, publisher = alerting.wire(settings, ledger, store.changes, bus)
    functions = targets(ledger, publisher, bus)
    for route in topology.ROUTES:
        bus.route(
            route.detail_type,
            route.function.name,
            invoke_with(route.function, functions[route.function.name]),
            attempts=1 + route.retries,
        )
    runner = Runner(ledger, bus=bus, stream=stream, pool=pool)
    runner.schedules["stream"] = Schedule("stream", 3600, stream.once)
    for schedule in topology.SCHEDULES:
        function = schedule.function
        invoke = invoke_with(function, functions[function.name])
        runner.schedules[function.name] = Schedule(
            function.name,
            float(os.environ.get(schedule.local_variable, schedule.every_seconds)),
            lambda invoke=invoke: invoke(dict(SCHEDULED_EVENT)),  # type: ignore[misc]
        )

    def close_all() -> None:
        bus.close(timeout=0.3)
        store.close()

    return runner, close_all


def targets(ledger: Ledger, publisher: Publisher, bus: LocalBus) -> dict[str, Target]:
    """The scheduled and routed functions of the topology, each given the runner's store, bus
    and alerts topic where its composition root would build the deployment's."""
    from functions.anomaly import handler as anomaly
    from functions.forecast import handler as forecast
    from functions.onboarding import handler as onboarding
    from functions.recommendations import handler as recommendations
    from functions.sweeper import handler as sweeper
    from local.bus import LocalDeadLetters

    sweeping = sweeper.compose(ledger, publisher)
    dead = LocalDeadLetters(bus, topology.ONBOARDING.name)
    onboarder = onboarding.compose(ledger, lambda: dead)
    return {
        topology.SWEEPER.name: lambda event, context: sweeper.handler(
            event, context, sweep=sweeping.ledger, alerts=sweeping.outbox
        ),
        topology.ANOMALY.name: lambda event, context: anomaly.handler(event, context, run=ledger),
        topology.FORECAST.name: lambda event, context: forecast.handler(event, context, run=ledger),
        topology.RECOMMENDATIONS.name: lambda event, context: recommendations.handler(
            event, context, run=ledger
        ),
        topology.ONBOARDING.name: lambda event, context: onboarding.handler(
            event, context, onboard=onboarder.onboarding, dead=onboarder.dead_letters()
        ),
    }


def invoke_with(function: topology.Function, target: Target) -> Callable[[dict[str, Any]], Any]:
    """An invocation of `function` with a new Lambda context each time."""
    return lambda event: target(event, lambda_context(function))


class Stopped(Exception):
    """SIGTERM/SIGINT arrived while the runner was still starting."""


@dataclass
class Store:
    """Where `make run` keeps its data, and the emulator it started for it (if any)."""

    endpoint: str
    description: str
    emulator: ddblocal.DynamoDBLocal | None = None
    lock: IO[str] | None = None

    def close(self) -> None:
        if self.emulator is not None:
            self.emulator.stop(timeout=1.0)
        if self.lock is not None:
            self.lock.close()


class RunnerError(Exception):
    """A reason `make run` cannot start, said in one line, with the exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def data_dir() -> Path:
    return Path(os.environ.get("COSTGUARD_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def launch_store() -> Store:
    """DynamoDB Local, persistent in `COSTGUARD_DATA_DIR`, its JVM launched (not yet ready); or,
    with `AWS_ENDPOINT_URL_DYNAMODB` set, that endpoint (nothing started).

    There is no in-memory store: moto grew without bound, and DynamoDB Local in memory was not
    flat either (bench/results/soak-memory.md); a throwaway run takes a temporary data folder.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if endpoint:
        return Store(endpoint, f"{endpoint} (AWS_ENDPOINT_URL_DYNAMODB)")
    port = ddb_port()
    folder = data_dir().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    lock = (folder / "runner.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise RunnerError(
            f"the data folder {folder} is in use by another `make run`: stop that one, "
            "or set COSTGUARD_DATA_DIR to another folder"
        ) from None
    try:
        emulator, _ = ddblocal.launch(folder, port)
    except ddblocal.Unavailable as exc:
        lock.close()
        raise RunnerError(f"{exc}", code=1) from None
    return Store(
        emulator.endpoint,
        f"DynamoDB Local, persistent in {folder} (wipe: stop the runner, delete the folder)",
        emulator,
        lock,
    )


def ddb_port() -> int | None:
    """`COSTGUARD_DDB_PORT`: DynamoDB Local on a fixed port (for `sam local`); a free one if unset."""
    raw = os.environ.get("COSTGUARD_DDB_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise RunnerError(f"COSTGUARD_DDB_PORT={raw!r}: a port number")
    return int(raw)


def worker_count() -> int:
    raw = os.environ.get("COSTGUARD_WORKERS", "").strip()
    if not raw:
        return default_count()
    if not raw.isdigit() or int(raw) < 1:
        raise RunnerError(f"COSTGUARD_WORKERS={raw!r}: a whole number ≥ 1")
    return int(raw)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (werkzeug then serves on it)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve(argv: list[str] | None = None) -> int:
    """`make run`: bind the port, start the store and the workers, serve until SIGTERM/Ctrl-C."""
    del argv  # `--ddblocal` (the old opt-in) is the default now and needs no flag
    host = os.environ.get("COSTGUARD_HOST", DEFAULT_HOST)
    port = int(os.environ.get("COSTGUARD_PORT", str(DEFAULT_PORT)))
    admin_key = os.environ.get("COSTGUARD_ADMIN_KEY") or f"cg-admin-{secrets.token_urlsafe(24)}"
    front: dict[str, Callable[..., Iterable[bytes]]] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return front["wsgi"](environ, start_response)

    # The port first: a taken port is one line and exit 2, before anything is started.
    try:
        listener = listen(host, port)
    except OSError as exc:
        print(
            f"costguard: cannot listen on {host}:{port}: {exc.strerror or exc}. "
            "Set COSTGUARD_PORT to a free port.",
            file=sys.stderr,
        )
        return 2
    server: BaseWSGIServer = make_server(host, port, app, threaded=True, fd=listener.fileno())
    listener.close()  # werkzeug serves on its own duplicate of the descriptor

    stopping = threading.Event()
    serving = threading.Event()

    def stop(*_: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        if not serving.is_set():
            raise Stopped
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # EMF metrics are for CloudWatch; locally they would only flood the console (the workers
    # inherit this environment)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # SLACK_WEBHOOK_URL too (the name the issue gives): alerts go to that webhook as well
    slack = os.environ.get("COSTGUARD_SLACK_WEBHOOK_URL") or os.environ.get("SLACK_WEBHOOK_URL")
    store: Store | None = None
    pool: Pool | None = None
    close: Callable[[], None] = lambda: None  # noqa: E731
    runner: Runner | None = None
    try:
        try:
            count = worker_count()
            store = launch_store()
        except RunnerError as exc:
            print(f"costguard: {exc}", file=sys.stderr)
            return exc.code
        settings = Settings(admin_key=admin_key, slack_webhook_url=slack)
        # The JVM and the workers' imports take a few seconds each: side by side.
        pool = Pool(store.endpoint, settings.table_name, admin_key, count)
        pool.start()
        if store.emulator is not None:
            try:
                ddblocal.wait_ready(store.emulator)
            except ddblocal.Unavailable as exc:
                print(f"costguard: {exc}", file=sys.stderr)
                return 1
        runner, close = build(settings, store.endpoint, pool)
        runner.stopping = stopping
        pool.ready()
        front["wsgi"] = runner.wsgi
        serving.set()
        if stopping.is_set():
            raise Stopped
        url = f"http://{host}:{server.port}"
        routes = ", ".join(f"{r.detail_type} → {r.function.name}" for r in topology.ROUTES)
        print(
            f"costguard is serving on {url}\n"
            f"  API docs:   {url}/v1/docs\n"
            f"  console:    {url}/console\n"
            f"  health:     {url}/v1/health\n"
            f"  admin key:  {admin_key}\n"
            f"  store:      {store.description}\n"
            f"  workers:    {count} API handler processes (COSTGUARD_WORKERS)\n"
            f"  schedules:  {', '.join(sorted(runner.schedules))} "
            f"(run now: POST {url}/local/schedules/<name>)\n"
            f"  events:     {routes} (recent: GET {url}/local/events)\n"
            f"  alerts:     ledger stream → alerts handler → printed here"
            f"{' and posted to Slack' if slack else ' (Slack: set COSTGUARD_SLACK_WEBHOOK_URL)'}\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        runner.start_timers()
        server.serve_forever(poll_interval=0.1)
    except Stopped:
        pass
    finally:
        # Stop taking requests, then the workers (in-flight invocations end with them), the
        # timers, the bus, and last the store, so nothing writes to a store that is going away.
        stopping.set()
        server.server_close()
        if pool is not None:
            pool.close()
        close()
        if store is not None:
            store.close()
    print("costguard stopped.", flush=True)
    return 0

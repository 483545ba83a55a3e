"""`make run`: the whole product on one machine, through the same handlers as in AWS."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from costguard.auth import ApiKeys
from costguard.ledger import Ledger, LedgerTable
from costguard.settings import Settings
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from local import alerting
from local.bus import LocalBus
from local.events import lambda_context, to_event, to_response
from local.store import open_store
from local.streams import Poller

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"


@dataclass
class Schedule:
    """A function EventBridge would run on a rate; here a timer (and `POST /local/schedules/x`)."""

    name: str
    every_seconds: float
    run: Callable[[], Any]


@dataclass
class Runner:
    ledger: Ledger
    keys: ApiKeys
    schedules: dict[str, Schedule] = field(default_factory=dict)
    bus: LocalBus | None = None
    """The deployment's event bus (TenantCreated → onboarding); `GET /local/events` lists it."""
    stream: Poller | None = None
    """The ledger's stream → the alerts handler (a thread; `POST /local/schedules/stream`)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    invocation: threading.Lock = field(default_factory=threading.Lock)
    """One handler invocation at a time, as in one warm Lambda container: the resolver keeps
    per-request state on a module-level object, which Lambda never shares between requests."""

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/local/schedules/") and request.method == "POST":
            response = self._run_schedule(request.path.rsplit("/", 1)[1])
        elif request.path == "/local/events" and self.bus is not None:
            response = self._events(request, self.bus)
        elif request.path == "/local/floor" and request.method == "POST":
            response = self._floor()
        else:
            from functions.api.handler import lambda_handler

            event = to_event(request)
            with self.invocation:
                result = lambda_handler(event, lambda_context("api"))
            response = to_response(result)
        return response(environ, start_response)

    def _floor(self) -> Response:
        """One bare conditional UpdateItem on this runner's store, serialized like an API call
        but without any costguard code: the floor `python -m bench load` compares with."""
        table = self.ledger.table
        with self.invocation:
            table.client.update_item(
                TableName=table.name,
                Key={"pk": {"S": "LOCAL#FLOOR"}, "sk": {"S": "MONTH#0000-00"}},
                UpdateExpression="SET #a = if_not_exists(#a, :l) - :v, #l = if_not_exists(#l, :l) "
                "ADD #h :v",
                ConditionExpression="attribute_not_exists(#a) OR #a >= :v",
                ExpressionAttributeNames={
                    "#a": "q_llm_avail",
                    "#l": "q_llm_limit",
                    "#h": "q_llm_held",
                },
                ExpressionAttributeValues={":l": {"N": "1000000000000"}, ":v": {"N": "0.01"}},
            )
        return Response(b'{"floor":"ok"}', content_type="application/json")

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


def build(settings: Settings, endpoint: str | None) -> tuple[Runner, Callable[[], None]]:
    """Wire the real handlers to the chosen store; returns the runner and its closer."""
    from functions.api.deps import admin_fingerprints, get_events, get_keys, get_ledger
    from functions.api.handler import app
    from functions.sweeper import handler as sweeper

    store = open_store(settings.table_name, endpoint)
    ledger = Ledger(LedgerTable(store.client, settings.table_name, settings), settings)
    keys = ApiKeys(ledger.table, admin_fingerprints(settings), settings.api_key_cache_seconds)
    app.dependency_overrides[get_ledger] = lambda: ledger
    app.dependency_overrides[get_keys] = lambda: keys
    bus = local_bus(settings, ledger)
    app.dependency_overrides[get_events] = lambda: bus
    stream, outbox, _ = alerting.wire(settings, ledger, store.changes, bus)
    runner = Runner(ledger, keys, bus=bus, stream=stream)
    runner.schedules["stream"] = Schedule("stream", 3600, stream.once)
    every = float(os.environ.get("COSTGUARD_SWEEP_SECONDS", "60"))
    runner.schedules["sweeper"] = Schedule(
        "sweeper",
        every,
        lambda: sweeper.handler(
            {"detail-type": "Scheduled Event", "source": "aws.events"},
            lambda_context("sweeper"),
            sweep=ledger,
            alerts=outbox,
        ),
    )
    from functions.anomaly import handler as anomaly
    from functions.forecast import handler as forecast
    from functions.recommendations import handler as digests

    for name, module, default in (
        ("anomaly", anomaly, "3600"),
        ("forecast", forecast, "21600"),
        ("recommendations", digests, "604800"),  # the weekly digest
    ):
        context = lambda_context(name)
        context.get_remaining_time_in_millis = lambda: 300_000  # as a 5-minute Lambda
        runner.schedules[name] = Schedule(
            name,
            float(os.environ.get(f"COSTGUARD_{name.upper()}_SECONDS", default)),
            lambda m=module, c=context: m.handler(  # type: ignore[misc]
                {"detail-type": "Scheduled Event", "source": "aws.events"}, c, run=ledger
            ),
        )

    def close_all() -> None:
        bus.close()
        store.close()

    return runner, close_all


def local_bus(settings: Settings, ledger: Ledger) -> LocalBus:
    """The bus with the rules of the stack: TenantCreated → the onboarding function."""
    from costguard.onboarding import Onboarding, plans_from_settings

    from functions.onboarding import handler as onboarding
    from local.bus import LocalDeadLetters

    bus = LocalBus(source=settings.event_source)
    seeder = Onboarding(ledger, plans_from_settings())
    dead = LocalDeadLetters(bus, "onboarding")
    bus.route(
        "TenantCreated",
        "onboarding",
        lambda event: onboarding.handler(
            event, lambda_context("onboarding"), onboard=seeder, dead=dead
        ),
    )
    return bus


def serve(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    host = os.environ.get("COSTGUARD_HOST", DEFAULT_HOST)
    port = int(os.environ.get("COSTGUARD_PORT", str(DEFAULT_PORT)))
    admin_key = os.environ.get("COSTGUARD_ADMIN_KEY") or f"cg-admin-{secrets.token_urlsafe(24)}"
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    ddblocal = None
    if "--ddblocal" in args and not endpoint:
        from local import ddblocal as emulator

        ddblocal = emulator.start()
        endpoint = ddblocal.endpoint
    if os.environ.get("COSTGUARD_DATA_DIR"):
        print(
            "note: COSTGUARD_DATA_DIR is not supported yet; the embedded store lives in memory "
            "(use --ddblocal or AWS_ENDPOINT_URL_DYNAMODB for another store)",
            file=sys.stderr,
        )
    # EMF metrics are for CloudWatch; locally they would only flood the console
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # SLACK_WEBHOOK_URL too (the name the issue gives): alerts go to that webhook as well
    slack = os.environ.get("COSTGUARD_SLACK_WEBHOOK_URL") or os.environ.get("SLACK_WEBHOOK_URL")
    settings = Settings(admin_key=admin_key, slack_webhook_url=slack)  # type: ignore[arg-type]
    runner, close = build(settings, endpoint)
    try:
        server: BaseWSGIServer = make_server(host, port, runner.wsgi, threaded=True)
    except (OSError, SystemExit) as exc:  # werkzeug reports a taken port with SystemExit
        reason = exc.strerror if isinstance(exc, OSError) else "address already in use"
        print(
            f"costguard: cannot listen on {host}:{port}: {reason}. "
            "Set COSTGUARD_PORT to a free port.",
            file=sys.stderr,
        )
        close()
        if ddblocal:
            ddblocal.stop()
        return 2

    def stop(*_: Any) -> None:
        runner.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = f"http://{host}:{server.server_port}"
    store = endpoint or "embedded (moto, in memory, calls serialized)"
    print(
        f"costguard is serving on {url}\n"
        f"  API docs:   {url}/v1/docs\n"
        f"  console:    {url}/console\n"
        f"  health:     {url}/v1/health\n"
        f"  admin key:  {admin_key}\n"
        f"  store:      {store}\n"
        f"  schedules:  {', '.join(sorted(runner.schedules))} "
        f"(run now: POST {url}/local/schedules/<name>)\n"
        f"  events:     TenantCreated → onboarding (recent: GET {url}/local/events)\n"
        f"  alerts:     ledger stream → alerts handler → printed here"
        f"{' and posted to Slack' if slack else ' (Slack: set COSTGUARD_SLACK_WEBHOOK_URL)'}\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    runner.start_timers()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        close()
        if ddblocal:
            ddblocal.stop()
    print("costguard stopped.", flush=True)
    return 0

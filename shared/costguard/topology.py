"""The deployment's shape, declared once: its functions, what runs each (a schedule, a rule on the
bus, the ledger's stream, the HTTP API), and how often.

Two readers: `infra/` builds the CDK stack from it, and `make run` (`local/server.py`) starts the
same handlers on the same triggers from it — timers for the schedules, the local bus's routes,
the stream poller. `tests/infra/test_topology.py` fails when the synthesized template and the
local runner disagree with this module or with each other. Plain data: no CDK import (the
functions import this package, the CDK is not in their assets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from costguard import services
from costguard.onboarding import TENANT_CREATED
from costguard.settings import HELD_SWEEP_MINUTES

# ---------------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class Function:
    """One Lambda function: `functions/<name>/handler.py`, its `entry` the handler."""

    name: str
    """The folder under functions/ (and the asset's `functions/<name>/`)."""
    memory_mb: int
    """A starting point, to be tuned by measurement (Lambda Power Tuning) once deployed."""
    timeout_seconds: int
    description: str
    entry: str = "handler"

    @property
    def handler(self) -> str:
        """The Lambda handler setting: `functions.<name>.handler.<entry>`."""
        return f"functions.{self.name}.handler.{self.entry}"

    @property
    def service(self) -> str:
        """POWERTOOLS_SERVICE_NAME: the `service` of its logs, metrics and alarms."""
        return services.service(self.name)


# One full vCPU, chosen from the measured curve (`python -m bench costmodel`, D69): the
# cheapest memory whose projected reserve p50 is within 20 ms with 10% to spare.
API = Function("api", 1769, 10, "costguard HTTP API (every route)", entry="lambda_handler")
SWEEPER = Function(
    "sweeper", 256, 50, "costguard sweeper: returns the holds of expired reservations"
)
ALERTS = Function(
    "alerts",
    256,
    60,
    "costguard alerts: threshold crossings from the ledger stream, published once",
)
SLACK = Function("slack", 128, 60, "costguard Slack notifier: alerts topic → incoming webhook")
"""Deployed only with a webhook (`costguard:slack_webhook_secret_name`; `make run`:
COSTGUARD_SLACK_WEBHOOK_URL): it subscribes to the alerts topic."""
ONBOARDING = Function(
    "onboarding", 256, 30, "costguard onboarding: TenantCreated → the tenant's default quotas"
)
ANOMALY = Function(
    "anomaly", 1024, 300, "costguard anomalies: each active tenant's day against its own history"
)
FORECAST = Function(
    "forecast", 1024, 600, "costguard forecasts: each quota's projected period-end spend and risk"
)
RECOMMENDATIONS = Function(
    "recommendations", 1024, 600, "costguard recommendations: each active tenant's weekly digest"
)
FUNCTIONS = (API, SWEEPER, ALERTS, SLACK, ONBOARDING, ANOMALY, FORECAST, RECOMMENDATIONS)

# ---------------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Weekly:
    """An EventBridge cron on one day of the week, at hh:mm UTC."""

    day: str
    hour: int
    minute: int


@dataclass(frozen=True)
class Schedule:
    """A function EventBridge runs on a rate or a weekly cron; `make run` runs it on a timer
    of the same period (and on `POST /local/schedules/<function>`)."""

    function: Function
    description: str
    knob: str
    """Its period's setting: CDK context `costguard:<knob>_rate_minutes` for a rate, and
    `COSTGUARD_<KNOB>_SECONDS` for `make run`'s timer."""
    rate_minutes: int | None = None
    """The default rate (a deployment's context may change it)."""
    weekly: Weekly | None = None

    @property
    def context_key(self) -> str | None:
        """The CDK context key (without `costguard:`) of a rate's minutes; a cron has none."""
        return f"{self.knob}_rate_minutes" if self.rate_minutes is not None else None

    @property
    def local_variable(self) -> str:
        return f"COSTGUARD_{self.knob.upper()}_SECONDS"

    @property
    def every_seconds(self) -> int:
        """The default period: the rate's, or a week for a weekly cron."""
        if self.rate_minutes is not None:
            return self.rate_minutes * 60
        return 7 * 24 * 3600


SWEEP = Schedule(SWEEPER, "return expired holds", "sweep", rate_minutes=1)
HELD_SWEEP = HELD_SWEEP_MINUTES
"""The sweeper walks the counters listed with in-item holds (D83) on the runs whose minute
(since 1970, UTC) is a multiple of this: each walk reads every listed counter (0.5 RRU each).
A deployment's CDK context `costguard:held_sweep_minutes` (infra passes it to the sweeper as
`COSTGUARD_HELD_SWEEP_MINUTES`, which `make run` reads too) changes it (D104); a refused
reserve still walks its own tenant's counters."""
ANOMALY_SCHEDULE = Schedule(ANOMALY, "detect spend anomalies", "anomaly", rate_minutes=60)
FORECAST_SCHEDULE = Schedule(FORECAST, "forecast quota breaches", "forecast", rate_minutes=360)
DIGEST_SCHEDULE = Schedule(
    RECOMMENDATIONS,
    "the weekly recommendations digest",
    "recommendations",
    # Monday morning in Europe, before the working day in the Americas
    weekly=Weekly("MON", 7, 0),
)
SCHEDULES = (SWEEP, ANOMALY_SCHEDULE, FORECAST_SCHEDULE, DIGEST_SCHEDULE)

# ---------------------------------------------------------------------------------- the bus


@dataclass(frozen=True)
class Route:
    """A rule on the deployment's bus: events of `detail_type` → `function`, asynchronously."""

    detail_type: str
    function: Function
    description: str
    retries: int = 2
    """Lambda's async retries of a failed invocation (the most it allows), then the DLQ."""


TENANT_CREATED_ROUTE = Route(TENANT_CREATED, ONBOARDING, "seed a new tenant's default quotas")
ROUTES = (TENANT_CREATED_ROUTE,)

# ---------------------------------------------------------------------------------- the stream


@dataclass(frozen=True)
class StreamConsumer:
    """The function the ledger table's stream invokes, in batches, with the records it acts on."""

    function: Function
    batch_size: int
    changed_prefixes: tuple[str, ...]
    """Items whose every change is delivered (sort-key prefixes): the period counters."""
    inserted_prefixes: tuple[str, ...]
    """Items delivered when they are written the first time: alert records."""
    flags: tuple[str, ...] = ()
    """Items delivered when a write leaves this boolean attribute true: a reservation's record
    committed beyond its hold (`overrun`), which the overrun alert comes from."""
    batching_window_seconds: int = 1
    """How long the event source mapping gathers records before it invokes (a batch is sent
    sooner when full); `make run`'s stream poller reads the stream at this interval."""

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether a stream record (Lambda's shape) passes the event source mapping's filters."""
        change = record.get("dynamodb") or {}
        sort_key = str((change.get("Keys") or {}).get("sk", {}).get("S"))
        if sort_key.startswith(self.changed_prefixes):
            return True
        new = change.get("NewImage") or {}
        if any((new.get(flag) or {}).get("BOOL") is True for flag in self.flags):
            return True
        return record.get("eventName") == "INSERT" and sort_key.startswith(self.inserted_prefixes)


LEDGER_STREAM = StreamConsumer(
    ALERTS,
    batch_size=100,
    # Only what the alerts function acts on: counters (crossings; a sliced quota's slices,
    # `<pk>#S<ii>`, have the same period sort keys), new alert records (delivery) and records
    # committed beyond their hold (overruns). Other reservations, policies, prices and TTL
    # deletions never invoke it.
    changed_prefixes=("DAY#", "WEEK#", "MONTH#"),
    inserted_prefixes=("A#",),
    flags=("overrun",),
)

"""What every scheduled function does around its domain run: one place, used by the anomaly,
forecast and recommendations handlers (the sweeper's run is a single call and needs none of
it). `scheduled_function` builds such a handler and its composition root; `run_scheduled` is
one invocation."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.alerts import AlertBook
from costguard.ledger import Ledger, ledger_from_settings
from costguard.schedules import RunReport
from costguard.settings import Settings, get_settings

Run = Callable[..., RunReport]


Handler = Callable[..., Any]
"""A scheduled function's Lambda handler: `(event, context, run: Ledger | None = None)`."""


def scheduled_function(
    name: str,
    work: Run,
    rules: Callable[[Settings], Any],
    recorded_metric: str,
) -> tuple[Callable[[], Ledger], Handler]:
    """The composition root and the Lambda handler of the scheduled function
    `functions/<name>`: its logger and metrics under its service name, tracing configured at
    cold start, `rules` read from the settings on each run; `run=` swaps the ledger (tests,
    `make run`)."""
    service = services.service(name)
    logger = Logger(service=service)
    telemetry.configure_tracing()
    metrics = telemetry.function_metrics(service)

    @cache
    def root() -> Ledger:
        """The ledger this function runs over, built once per container from its settings
        (the rules are read per run, the alert book is the run's)."""
        return ledger_from_settings()

    @metrics.log_metrics
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext, run: Ledger | None = None) -> Any:
        return run_scheduled(
            name,
            work,
            rules(get_settings()),
            run or root(),
            event,
            context,
            logger,
            metrics,
            recorded_metric,
        )

    return root, handler


def run_scheduled(
    name: str,
    run: Run,
    rules: Any,
    ledger: Ledger,
    event: dict[str, Any],
    context: LambdaContext,
    logger: Logger,
    metrics: Metrics,
    recorded_metric: str,
) -> dict[str, Any]:
    """Run `run` over the tenants inside a `schedule.<name>` span, stopping before the
    function's deadline; report tenants examined/skipped/failed and alerts recorded."""
    settings = get_settings()
    reserve = settings.schedule_time_reserve_seconds * 1000
    with telemetry.invocation(f"schedule.{name}") as span:
        # the EventBridge event's id: the correlation id of everything this run logs
        logger.set_correlation_id(str(event.get("id") or context.aws_request_id))
        report = run(
            ledger,
            AlertBook(ledger.table, ledger.now),
            rules,
            time_left=lambda: (context.get_remaining_time_in_millis() - reserve) / 1000,
            workers=settings.schedule_workers,
        )
        span.set_attribute("costguard.tenants", report.tenants)
        span.set_attribute("costguard.recorded", report.recorded)
    for metric, value in (
        ("TenantsExamined", report.examined),
        ("TenantsSkipped", report.skipped),
        ("TenantsFailed", report.failed),
        (recorded_metric, report.recorded),
    ):
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
    answer = report.as_dict()
    logger.info("scheduled run", extra=answer)
    return answer

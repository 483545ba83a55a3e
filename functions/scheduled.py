"""What every scheduled function does around its domain run: one place, used by the anomaly
and forecast handlers (the sweeper's run is a single call and needs none of it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import telemetry
from costguard.alerts import AlertBook
from costguard.ledger import Ledger
from costguard.schedules import RunReport
from costguard.settings import get_settings

Run = Callable[..., RunReport]


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

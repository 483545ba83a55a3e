"""Every 6 hours (EventBridge schedule): each quota with spend in its period projected to the
period's end, stored, and alerted once per rise of its risk. See costguard.forecasts."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import telemetry
from costguard.alerts import AlertBook
from costguard.forecasts import ForecastRules, run_forecasts
from costguard.ledger import Ledger, ledger_from_settings
from costguard.settings import get_settings

logger = Logger(service="costguard-forecast")
telemetry.configure_tracing()
metrics = Metrics(namespace="costguard", service="forecast")


@cache
def ledger() -> Ledger:
    return ledger_from_settings()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext, run: Ledger | None = None) -> Any:
    settings = get_settings()
    source = run or ledger()
    reserve = settings.schedule_time_reserve_seconds * 1000
    with telemetry.tracer.start_as_current_span(
        "schedule.forecast", context=telemetry.lambda_parent()
    ) as span:
        # the EventBridge event's id: the correlation id of everything this run logs
        logger.set_correlation_id(str(event.get("id") or context.aws_request_id))
        report = run_forecasts(
            source,
            AlertBook(source.table, source.now),
            ForecastRules.from_settings(settings),
            time_left=lambda: (context.get_remaining_time_in_millis() - reserve) / 1000,
            workers=settings.schedule_workers,
        )
        span.set_attribute("costguard.tenants", report.tenants)
        span.set_attribute("costguard.recorded", report.recorded)
    telemetry.flush()
    for name, value in (
        ("TenantsExamined", report.examined),
        ("TenantsSkipped", report.skipped),
        ("TenantsFailed", report.failed),
        ("ForecastsRecorded", report.recorded),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    answer = report.as_dict()
    logger.info("scheduled run", extra=answer)
    return answer

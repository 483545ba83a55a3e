"""Every 6 hours (EventBridge schedule): each quota with spend in its period projected to the
period's end, stored, and alerted once per rise of its risk. See costguard.forecasts."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard.alerts import AlertBook
from costguard.forecasts import ForecastRules, run_forecasts
from costguard.ledger import Ledger, ledger_from_settings
from costguard.settings import get_settings

logger = Logger(service="costguard-forecast")
metrics = Metrics(namespace="costguard", service="forecast")


@cache
def ledger() -> Ledger:
    return ledger_from_settings()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext, run: Ledger | None = None) -> Any:
    settings = get_settings()
    source = run or ledger()
    reserve = settings.schedule_time_reserve_seconds * 1000
    report = run_forecasts(
        source,
        AlertBook(source.table, source.now),
        ForecastRules.from_settings(settings),
        time_left=lambda: (context.get_remaining_time_in_millis() - reserve) / 1000,
        workers=settings.schedule_workers,
    )
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

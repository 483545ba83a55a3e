"""Every 6 hours (EventBridge schedule): each quota with spend in its period projected to the
period's end, stored, and alerted once per rise of its risk. See costguard.forecasts."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.forecasts import ForecastRules, run_forecasts
from costguard.ledger import Ledger, ledger_from_settings
from costguard.settings import get_settings

from functions.scheduled import run_scheduled

logger = Logger(service=services.FORECAST)
telemetry.configure_tracing()
metrics = telemetry.function_metrics(services.FORECAST)


@cache
def root() -> Ledger:
    """The composition root: the ledger this function runs over, built once per container
    from its settings (the rules are read per run, the alert book is the run's)."""
    return ledger_from_settings()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext, run: Ledger | None = None) -> Any:
    rules = ForecastRules.from_settings(get_settings())
    return run_scheduled(
        "forecast",
        run_forecasts,
        rules,
        run or root(),
        event,
        context,
        logger,
        metrics,
        "ForecastsRecorded",
    )

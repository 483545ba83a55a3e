"""Every hour (EventBridge schedule): each tenant with spend today or yesterday, judged against
its own history; anomalies recorded as alerts once (the stream delivers them). See
costguard.anomalies."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.anomalies import AnomalyRules, run_anomalies
from costguard.ledger import Ledger, ledger_from_settings
from costguard.settings import get_settings

from functions.scheduled import run_scheduled

logger = Logger(service=services.ANOMALY)
telemetry.configure_tracing()
metrics = telemetry.function_metrics(services.ANOMALY)


@cache
def root() -> Ledger:
    """The composition root: the ledger this function runs over, built once per container
    from its settings (the rules are read per run, the alert book is the run's)."""
    return ledger_from_settings()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext, run: Ledger | None = None) -> Any:
    rules = AnomalyRules.from_settings(get_settings())
    return run_scheduled(
        "anomaly",
        run_anomalies,
        rules,
        run or root(),
        event,
        context,
        logger,
        metrics,
        "AnomaliesRecorded",
    )

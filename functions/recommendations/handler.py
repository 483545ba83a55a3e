"""Every Monday (EventBridge schedule): each tenant with spend in the last 7 days gets the
week's digest of its recommendations, recorded once per tenant and ISO week as an alert (the
stream delivers it to SNS, Slack, e-mail and EventBridge). See costguard.recommendations."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.ledger import Ledger, ledger_from_settings
from costguard.recommendations import RecommendationRules, run_digests

from functions.scheduled import run_scheduled

logger = Logger(service=services.RECOMMENDATIONS)
telemetry.configure_tracing()
metrics = telemetry.function_metrics(services.RECOMMENDATIONS)


@cache
def root() -> Ledger:
    """The composition root: the ledger this function runs over, built once per container
    from its settings (the rules are read per run, the alert book is the run's)."""
    return ledger_from_settings()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext, run: Ledger | None = None) -> Any:
    return run_scheduled(
        "recommendations",
        run_digests,
        RecommendationRules(),
        run or root(),
        event,
        context,
        logger,
        metrics,
        "DigestsRecorded",
    )

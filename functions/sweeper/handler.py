"""Every minute (EventBridge schedule): return the holds of reservations past their expiry.

Refused reserves already expire a tenant's due holds lazily; this keeps figures and alerts
honest for tenants that are not asking right now.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard.ledger import Ledger, ledger_from_settings

logger = Logger(service="costguard-sweeper")
metrics = Metrics(namespace="costguard", service="sweeper")


@cache
def ledger() -> Ledger:
    return ledger_from_settings()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(
    event: dict[str, Any], context: LambdaContext, sweep: Ledger | None = None
) -> dict[str, int]:
    returned = (sweep or ledger()).expire_due(limit=1000)
    metrics.add_metric(name="HoldsExpired", unit=MetricUnit.Count, value=returned)
    logger.info("swept expired holds", extra={"returned": returned})
    return {"returned": returned}

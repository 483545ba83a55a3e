"""Every minute (EventBridge schedule): return the holds of reservations past their expiry, and
redeliver alerts whose publication the stream gave up on (SNS or EventBridge was down).

Refused reserves already expire a tenant's due holds lazily; this keeps figures and alerts
honest for tenants that are not asking right now.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.alerts import Outbox, outbox_from_settings
from costguard.ledger import Ledger, ledger_from_settings

logger = Logger(service=services.SWEEPER)
metrics = telemetry.function_metrics(services.SWEEPER)


@cache
def ledger() -> Ledger:
    return ledger_from_settings()


@cache
def outbox() -> Outbox:
    return outbox_from_settings(ledger().table)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    sweep: Ledger | None = None,
    alerts: Outbox | None = None,
) -> dict[str, int]:
    returned = (sweep or ledger()).expire_due(limit=1000)
    metrics.add_metric(name="HoldsExpired", unit=MetricUnit.Count, value=returned)
    sent, failed = (alerts or outbox()).redrive()
    if sent or failed:
        metrics.add_metric(name="AlertsRedelivered", unit=MetricUnit.Count, value=sent)
        metrics.add_metric(name="AlertPublishFailures", unit=MetricUnit.Count, value=failed)
    logger.info("swept", extra={"returned": returned, "alerts_sent": sent, "alerts_failed": failed})
    return {"returned": returned, "alerts_redelivered": sent, "alerts_failed": failed}

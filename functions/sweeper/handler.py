"""Every minute (EventBridge schedule): return the holds of reservations past their expiry, and
redeliver alerts whose publication the stream gave up on (SNS or EventBridge was down).

Refused reserves already expire a tenant's due holds lazily; this keeps figures and alerts
honest for tenants that are not asking right now.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.alerts import AlertBook, Outbox, Publisher, publisher_from_settings
from costguard.ledger import Ledger, ledger_from_settings

logger = Logger(service=services.SWEEPER)
metrics = telemetry.function_metrics(services.SWEEPER)
telemetry.configure_tracing()


@dataclass(frozen=True)
class Sweeper:
    ledger: Ledger
    """Whose due holds are returned."""
    outbox: Outbox
    """The alerts whose publication the stream gave up on, and where they go."""


def compose(ledger: Ledger, publisher: Publisher) -> Sweeper:
    """The sweeper on a ledger, publishing to `publisher` (the deployment's topic and bus; the
    local runner's under `make run`)."""
    return Sweeper(ledger, Outbox(AlertBook(ledger.table, ledger.now), publisher))


@cache
def root() -> Sweeper:
    """The composition root: everything this function uses, built once per container from
    its settings."""
    return compose(ledger_from_settings(), publisher_from_settings())


@metrics.log_metrics
@logger.inject_lambda_context
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    sweep: Ledger | None = None,
    alerts: Outbox | None = None,
) -> dict[str, int]:
    with telemetry.invocation("sweeper.run") as span:
        returned = (sweep or root().ledger).expire_due(limit=1000)
        sent, failed = (alerts or root().outbox).redrive()
        span.set_attribute("costguard.holds_expired", returned)
        span.set_attribute("costguard.alerts_redelivered", sent)
    metrics.add_metric(name="HoldsExpired", unit=MetricUnit.Count, value=returned)
    if sent or failed:
        metrics.add_metric(name="AlertsRedelivered", unit=MetricUnit.Count, value=sent)
        metrics.add_metric(name="AlertPublishFailures", unit=MetricUnit.Count, value=failed)
    logger.info("swept", extra={"returned": returned, "alerts_sent": sent, "alerts_failed": failed})
    return {"returned": returned, "alerts_redelivered": sent, "alerts_failed": failed}

"""`TenantCreated` on the bus (EventBridge rule → async Lambda): seed the default quotas.

A malformed event (no or bad tenant id, unknown plan with no fallback) fails the same way on
every retry, so it is not retried: it is logged with its reason, sent to the dead-letter queue
from here, and the invocation succeeds. Anything else (the ledger unreachable) raises: Lambda
retries the event twice, then its dead-letter queue (the same queue) keeps it. See D-entries
in docs/decisions.md.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.ledger import Ledger, ledger_from_settings
from costguard.onboarding import (
    DeadLetters,
    MalformedEvent,
    Onboarding,
    TenantCreatedDetail,
    dead_letters_from_settings,
    malformed_reason,
    plans_from_settings,
)
from pydantic import Field, ValidationError

logger = Logger(service=services.ONBOARDING)
metrics = telemetry.function_metrics(services.ONBOARDING)
telemetry.configure_tracing()


class TenantCreatedEvent(EventBridgeModel):
    detail_type: Literal["TenantCreated"] = Field(alias="detail-type")
    detail: TenantCreatedDetail


class Onboarder:
    def __init__(
        self, onboarding: Onboarding, dead_letters: Callable[[], DeadLetters | None]
    ) -> None:
        self.onboarding = onboarding
        self._dead_letters = cache(dead_letters)  # only a malformed event needs its client

    def dead_letters(self) -> DeadLetters | None:
        """Where an event no retry can fix goes; None: it is raised (Lambda's DLQ keeps it)."""
        return self._dead_letters()


def compose(ledger: Ledger, dead_letters: Callable[[], DeadLetters | None]) -> Onboarder:
    """Onboarding on a ledger with this deployment's plans, refusing into `dead_letters()` (the
    deployment's queue; the local bus's list under `make run`)."""
    return Onboarder(Onboarding(ledger, plans_from_settings()), dead_letters)


@cache
def root() -> Onboarder:
    """The composition root: everything this function uses, built once per container from
    its settings."""
    return compose(ledger_from_settings(), dead_letters_from_settings)


def count(name: str) -> None:
    telemetry.dimensional(name, MetricUnit.Count, 1)


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="id")
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    onboard: Onboarding | None = None,
    dead: DeadLetters | None = None,
) -> dict[str, Any]:
    try:
        with telemetry.invocation("onboarding.event"):
            parsed = TenantCreatedEvent.model_validate(event)
            done = (onboard or root().onboarding).seed(parsed.detail, event_id=parsed.id)
    except ValidationError as exc:
        return refuse(event, malformed_reason(exc), dead)
    except MalformedEvent as exc:
        return refuse(event, exc.reason, dead)
    logger.info(
        "tenant onboarded" if done.result.first else "tenant already onboarded",
        extra=done.summary(),
    )
    count("TenantsOnboarded" if done.result.first else "TenantCreatedRepeats")
    return done.summary()


def refuse(event: Any, reason: str, dead: DeadLetters | None) -> dict[str, Any]:
    """Log, count and dead-letter an event no retry can fix; raise if there is no queue."""
    logger.error("malformed TenantCreated event", extra={"reason": reason})
    count("TenantCreatedRejected")
    queue = dead or root().dead_letters()
    if queue is None:
        raise MalformedEvent(reason)
    queue.send(event if isinstance(event, dict) else {"event": event}, reason)
    return {"status": "dead-lettered", "reason": reason}

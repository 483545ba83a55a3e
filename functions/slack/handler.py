"""SNS (the alerts topic) → a Slack incoming webhook, as a readable Block Kit message.

The webhook URL lives in Secrets Manager, read with Powertools Parameters and cached. A post
that Slack keeps refusing raises: Lambda retries the asynchronous invocation, then sends it to
the dead-letter queue (an alarm watches it), so no alert is lost silently.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.settings import get_settings
from costguard.slack import SlackWebhook, message

logger = Logger(service=services.SLACK)
metrics = telemetry.function_metrics(services.SLACK)
telemetry.configure_tracing()
SECRET_MAX_AGE = 300


def webhook() -> SlackWebhook:
    """The composition root: the webhook from the settings, per invocation (not cached: the
    secret's value is, for SECRET_MAX_AGE, so a rotated URL is picked up)."""
    settings = get_settings()
    if settings.slack_webhook_url is not None:
        url = settings.slack_webhook_url.get_secret_value()
    elif settings.slack_webhook_secret:
        from aws_lambda_powertools.utilities.parameters import get_secret

        url = str(get_secret(settings.slack_webhook_secret, max_age=SECRET_MAX_AGE)).strip()
    else:
        raise RuntimeError("no Slack webhook configured (COSTGUARD_SLACK_WEBHOOK_SECRET)")
    return SlackWebhook(
        url, attempts=settings.slack_attempts, max_wait_seconds=settings.slack_max_wait_seconds
    )


@metrics.log_metrics
@logger.inject_lambda_context
def handler(
    event: dict[str, Any], context: LambdaContext, slack: SlackWebhook | None = None
) -> dict[str, Any]:
    with telemetry.invocation("slack.deliver"):
        return deliver(event, slack or webhook())


def deliver(event: dict[str, Any], poster: SlackWebhook) -> dict[str, Any]:
    """Post every alert of an SNS batch; the first failure raises (SNS retries the batch)."""
    posted = 0
    for record in SNSEvent(event).records:
        alert = json.loads(record.sns.message)
        logger.append_keys(tenant_id=alert.get("tenant_id"), alert_id=alert.get("alert_id"))
        try:
            attempts = poster.post(message(alert))
        except Exception:
            metrics.add_metric("SlackPostFailures", MetricUnit.Count, 1)
            logger.exception("Slack did not take the alert")
            raise
        metrics.add_metric("SlackPosts", MetricUnit.Count, 1)
        logger.info("posted to Slack", extra={"attempts": attempts})
        posted += 1
    return {"posted": posted}

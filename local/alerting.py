"""Alerts in `make run`: the ledger's stream → the alerts handler → a console "topic" → Slack.

The same handler as in AWS reads the stream in batches (local.streams). The SNS topic is
replaced by `ConsoleTopic`: each alert is printed on one line, and, when
`COSTGUARD_SLACK_WEBHOOK_URL` is set, handed to the Slack notifier's handler in the SNS event
shape, as the topic's Lambda subscription would. Events (`QuotaThresholdCrossed`…) go to the
local bus like every other event.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from costguard.alerts import Publisher
from costguard.ledger import Ledger
from costguard.notify import EventSink, PublishFailed
from costguard.settings import Settings
from costguard.topology import LEDGER_STREAM, SLACK

from local.streams import Delivery, Poller

TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:costguard-alerts"


def sns_event(subject: str, message: str, attributes: Mapping[str, str]) -> dict[str, Any]:
    """One SNS notification as a Lambda subscription receives it."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC_ARN}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": TOPIC_ARN,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
                    "SignatureVersion": "1",
                    "Signature": "local",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {
                        k: {"Type": "String", "Value": v} for k, v in attributes.items() if v
                    },
                },
            }
        ]
    }


class ConsoleTopic:
    """The alerts topic of a local run: prints each alert, forwards it to Slack if configured."""

    def __init__(self, slack: bool) -> None:
        self.slack = slack
        self.messages: deque[dict[str, Any]] = deque(maxlen=200)
        self.lock = threading.Lock()

    def publish(self, subject: str, message: str, attributes: Mapping[str, str]) -> None:
        alert = json.loads(message)
        with self.lock:
            self.messages.append(alert)
        print(f"ALERT {subject} — {alert.get('message', '')}", flush=True)
        if not self.slack:
            return
        from functions.slack import handler as slack
        from local.events import lambda_context

        try:
            slack.handler(sns_event(subject, message, attributes), lambda_context(SLACK))
        except Exception as exc:  # in AWS: Lambda's async retries, then the Slack queue
            print(f"slack: could not post alert {alert.get('alert_id')}: {exc}", file=sys.stderr)
            raise PublishFailed(f"Slack notifier failed: {exc}") from exc


def wire(
    settings: Settings, ledger: Ledger, take: Callable[[], list[dict[str, Any]]], bus: EventSink
) -> tuple[Poller, Publisher]:
    """The ledger stream's consumer (the topology's LEDGER_STREAM: its function, batch size and
    filters) on the runner's store, and where alerts go: the console topic and the bus."""
    from functions.alerts import handler as alerts_handler
    from local.events import lambda_context

    publisher = Publisher(ConsoleTopic(slack=settings.slack_webhook_url is not None), bus)
    watch = alerts_handler.compose(ledger, publisher)
    delivery = Delivery(
        lambda event: alerts_handler.handler(
            event, lambda_context(LEDGER_STREAM.function), watch=watch
        ),
        batch_size=LEDGER_STREAM.batch_size,
        name=LEDGER_STREAM.function.name,
        accepts=LEDGER_STREAM.accepts,
    )
    return Poller(take, delivery, every=LEDGER_STREAM.batching_window_seconds), publisher

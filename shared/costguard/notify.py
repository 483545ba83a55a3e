"""Where costguard tells the world: an EventBridge bus and an SNS topic, behind two small ports.

The domain publishes through `EventSink` and `Topic`; in AWS they are `EventBridgeBus` and
`SnsTopic` (boto3), in `make run` the local runner's in-process versions that route events to
the same handlers Lambda would run, and in tests whatever records the calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from costguard.errors import CostguardError, Problem, Stage

SOURCE = "costguard"
"""The default `source` of the events costguard puts on the bus."""


class PublishFailed(CostguardError):
    """SNS or EventBridge refused or could not be reached; the caller decides to retry."""

    code = "publish_failed"
    problem = Problem(503, "publish-failed", "Publish failed", Stage.PUBLISH)


class EventSink(Protocol):
    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        """Put one event on the bus; raises PublishFailed when it was not accepted."""


class Topic(Protocol):
    def publish(self, subject: str, message: str, attributes: Mapping[str, str]) -> None:
        """Publish one message with string message attributes; raises PublishFailed."""


class EventBridgeBus:
    """`PutEvents` on one bus. A partially failed PutEvents (FailedEntryCount) is a failure."""

    def __init__(self, client: Any, bus_name: str, source: str = SOURCE) -> None:
        self.client = client
        self.bus_name = bus_name
        self.source = source

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        entry = {
            "EventBusName": self.bus_name,
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=str, separators=(",", ":")),
        }
        try:
            answer = self.client.put_events(Entries=[entry])
        except Exception as exc:  # botocore's errors: no domain meaning beyond "not sent"
            raise PublishFailed(f"EventBridge put_events failed: {type(exc).__name__}") from exc
        if answer.get("FailedEntryCount"):
            reason = answer["Entries"][0].get("ErrorCode", "unknown")
            raise PublishFailed(f"EventBridge refused the event: {reason}")


class SnsTopic:
    """`Publish` to one topic, with message attributes subscribers can filter on."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def publish(self, subject: str, message: str, attributes: Mapping[str, str]) -> None:
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=subject[:100],  # SNS: at most 100 printable ASCII characters
                Message=message,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in attributes.items()
                    if value
                },
            )
        except Exception as exc:
            raise PublishFailed(f"SNS publish failed: {type(exc).__name__}") from exc


class NoSink:
    """A deployment without a bus (or a test that does not care): events go nowhere."""

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        return None


def event_sink_from_settings() -> EventSink:
    """The bus of this deployment (COSTGUARD_EVENT_BUS_NAME), or NoSink when none is set."""
    from costguard.settings import get_settings

    settings = get_settings()
    if not settings.event_bus_name:
        return NoSink()
    import boto3

    return EventBridgeBus(
        boto3.client("events"), settings.event_bus_name, settings.event_source or SOURCE
    )


def topic_from_settings() -> Topic | None:
    """The alerts topic of this deployment (COSTGUARD_ALERTS_TOPIC_ARN), or None."""
    from costguard.settings import get_settings

    settings = get_settings()
    if not settings.alerts_topic_arn:
        return None
    import boto3

    return SnsTopic(boto3.client("sns"), settings.alerts_topic_arn)

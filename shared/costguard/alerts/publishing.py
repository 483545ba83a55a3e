"""Publishing: an alert's public shape and its delivery to SNS and EventBridge."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costguard.money import format_usd
from costguard.notify import EventSink, Topic
from costguard.store.items import AlertItem
from costguard.store.schema import HOLDS_PK, HOLDS_SK


def message_attributes(alert: AlertItem) -> dict[str, str]:
    """SNS message attributes subscribers filter on (a platform alert has no tenant_id)."""
    details = alert.details or {}
    return {
        "tenant_id": alert.tenant_id or "",
        "severity": alert.severity,
        "alert_type": alert.alert_type,
        "event": alert.event,
        "quota_id": alert.quota_id or "",
        "scope": details.get("scope", "tenant" if alert.tenant_id else "platform"),
    }


INTERNAL = frozenset(
    {
        "pk",
        "sk",
        HOLDS_PK,
        HOLDS_SK,
        "lease_until",
        "channels_sent",
        "dedup_key",
        "attempts",
        "redrives",
    }
)


DELIVERY = frozenset({"delivery", "delivered_at", "last_error", "failed_at"})


def public_alert(alert: AlertItem, for_subscribers: bool = False) -> dict[str, Any]:
    """The alert as the API (or, without delivery bookkeeping, a subscriber) sees it: its
    stored attributes but the internal ones, amounts as decimal strings."""
    hidden = INTERNAL | DELIVERY if for_subscribers else INTERNAL
    out: dict[str, Any] = {}
    for key, value in alert.to_item().items():
        if key in hidden:
            continue
        if key.endswith("_usd") and isinstance(value, Decimal):
            out[key] = format_usd(value)
        elif isinstance(value, Decimal):
            out[key] = str(value) if key == "utilization" else int(value)
        elif isinstance(value, set):
            out[key] = sorted(value)
        elif isinstance(value, list):
            out[key] = [int(v) if isinstance(v, Decimal) else v for v in value]
        else:
            out[key] = value
    return out


@dataclass
class Publisher:
    """Sends an alert record to the SNS topic and the EventBridge bus (each optional)."""

    topic: Topic | None
    bus: EventSink | None

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(
            name for name, sink in (("sns", self.topic), ("events", self.bus)) if sink is not None
        )

    def send(self, channel: str, item: AlertItem) -> None:
        alert = public_alert(item, for_subscribers=True)
        if channel == "sns":
            assert self.topic is not None
            self.topic.publish(
                f"[costguard {alert['severity']}] {alert['title']}",
                json.dumps(alert, separators=(",", ":")),
                message_attributes(item),
            )
        elif channel == "events":
            assert self.bus is not None
            self.bus.put(alert["event"], alert)


def publisher_from_settings() -> Publisher:
    """SNS topic and EventBridge bus of this deployment (either may be unset)."""
    from costguard.notify import NoSink, event_sink_from_settings, topic_from_settings

    bus = event_sink_from_settings()
    return Publisher(topic_from_settings(), None if isinstance(bus, NoSink) else bus)

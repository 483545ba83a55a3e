"""Alerts: recorded exactly once, listed per tenant, delivered through an outbox.

Three kinds share one store: threshold crossings (read from the ledger's stream, see
`crossings`), anomalies and forecasts (issue 9's schedules). Recording writes, per alert, a
dedup marker `K#<dedup key>` (condition `attribute_not_exists`) and the alert record
`A#<ulid>` in one transaction: whoever's transaction succeeds owns the alert, and a replayed or
concurrent stream record finds the markers and records nothing (FACTS: stream delivery is at
least once; the conditional write decides who sends).

Delivery is an outbox: a notifying record is written `delivery = pending` and carries the
sparse `holds` index keys `OUTBOX / <created_at>#<ulid>`. Its INSERT on the stream triggers
`deliver`: claim with a conditional lease, publish to each channel (SNS, EventBridge) not yet
done, mark it sent. A failed publish leaves it pending (the stream retries it; the sweeper
redrives what is still pending after `REDRIVE_AFTER`), so an alert is never lost while SNS or
EventBridge is down, and each channel is marked as soon as it accepted the message. The
sweeper's redrives back off (`redrive_delay`) and stop after `MAX_REDRIVES`: the alert is then
marked `failed`, leaves the outbox, and counts in `AlertsUndeliverable` (alarmed).

The package: `kinds` (types, severities), `detection` (crossings, drafts), `book` (the alert
book), `publishing` (public shape, channels), `outbox` (delivery, redrives), `stream` (the
ledger stream's alerts). Callers import from here.
"""

from __future__ import annotations

from costguard.alerts.book import (
    LEASE,
    MAX_REDRIVE_DELAY,
    MAX_REDRIVES,
    REDRIVE_AFTER,
    AlertBook,
    outbox_key,
    redrive_delay,
)
from costguard.alerts.detection import (
    AlertDraft,
    Counter,
    Crossing,
    QuotaRules,
    Rule,
    crossings,
    overrun_draft,
    sliced_changes,
    threshold_drafts,
    threshold_key,
    utilization,
    whole_crossing,
)
from costguard.alerts.kinds import RECORD_PREFIX, AlertType, Severity, threshold_severity
from costguard.alerts.outbox import Outbox
from costguard.alerts.publishing import (
    DELIVERY,
    INTERNAL,
    Publisher,
    message_attributes,
    public_alert,
    publisher_from_settings,
)
from costguard.alerts.stream import POLICY_CACHE, StreamAlerts, may_alert, request_of

__all__ = [
    "DELIVERY",
    "INTERNAL",
    "LEASE",
    "MAX_REDRIVES",
    "MAX_REDRIVE_DELAY",
    "POLICY_CACHE",
    "RECORD_PREFIX",
    "REDRIVE_AFTER",
    "AlertBook",
    "AlertDraft",
    "AlertType",
    "Counter",
    "Crossing",
    "Outbox",
    "Publisher",
    "QuotaRules",
    "Rule",
    "Severity",
    "StreamAlerts",
    "crossings",
    "may_alert",
    "message_attributes",
    "outbox_key",
    "overrun_draft",
    "public_alert",
    "publisher_from_settings",
    "redrive_delay",
    "request_of",
    "sliced_changes",
    "threshold_drafts",
    "threshold_key",
    "threshold_severity",
    "utilization",
    "whole_crossing",
]

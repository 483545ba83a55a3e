"""The ledger stream's alerts: which records may alert, and the handler's work per
record (detect, record, deliver)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from costguard import telemetry
from costguard.alerts.book import AlertBook
from costguard.alerts.detection import (
    Counter,
    crossings,
    overrun_draft,
    threshold_drafts,
)
from costguard.alerts.kinds import RECORD_PREFIX
from costguard.alerts.publishing import Publisher
from costguard.quotas import DEFAULT_THRESHOLDS, Policy, QuotaId, Resource
from costguard.store.dynamo import LedgerTable
from costguard.store.items import zone_fields
from costguard.store.keys import (
    POLICY_SK,
    is_alerts_pk,
    policy_pk,
)

POLICY_CACHE = timedelta(seconds=60)


def may_alert(record: Mapping[str, Any]) -> bool:
    """Whether a stream record, as the stream delivers it (DynamoDB JSON), can lead
    `StreamAlerts.handle` anywhere but "ignored"; read from the raw attributes, before any
    image is deserialized. A guarded call causes six records and at most two can matter (the
    commit's counter change and an overrun): the others cost nothing more than this test.

    Conservative: True for an alert's INSERT, a reservation turning committed with an
    overrun, and a counter whose `spent` or `limit` of some quota changed (the only way a
    utilization moves); the full checks follow in `handle`.
    """
    event = record.get("eventName")
    if event not in ("INSERT", "MODIFY"):
        return False
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    pk, sk = (keys.get("pk") or {}).get("S", ""), (keys.get("sk") or {}).get("S", "")
    new, old = change.get("NewImage") or {}, change.get("OldImage") or {}
    if pk.endswith("ALERT"):
        return bool(event == "INSERT" and sk.startswith(RECORD_PREFIX))
    if pk.endswith("#REC"):
        if (new.get("status") or {}).get("S") != "committed":
            return False
        overrun = (new.get("overrun_usd") or {}).get("N")
        return overrun is None or Decimal(overrun) != 0  # an odd image: let `handle` judge
    if Counter.from_key(pk, sk) is None:
        return False
    return any(
        new.get(f"q_{r.value}_{field}") != old.get(f"q_{r.value}_{field}")
        for r in Resource
        for field in ("spent", "limit")
        if f"q_{r.value}_limit" in new
    )


class StreamAlerts:
    """What the alerts function does with each ledger stream record.

    A counter change that crosses thresholds → alert records (exactly once); the INSERT of a
    notifying alert record → its delivery. Every other record (reservations, policies, the
    rollup fields of the day item, TTL deletions of released holds) is none of its business:
    expired holds are returned by the sweeper and the lazy path, never by TTL (FACTS).
    """

    def __init__(self, table: LedgerTable, book: AlertBook, publisher: Publisher) -> None:
        self.table = table
        self.book = book
        self.publisher = publisher
        self._policies: dict[str, tuple[datetime, dict[str, tuple[str, tuple[int, ...]]]]] = {}
        self._zones: dict[str, Policy] = {}

    def handle(
        self,
        event_name: str,
        keys: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
    ) -> str:
        """Process one stream record; returns what it did (for logs and metrics)."""
        pk, sk = str(keys.get("pk", "")), str(keys.get("sk", ""))
        if is_alerts_pk(pk) and sk.startswith(RECORD_PREFIX):
            if event_name == "INSERT" and new and new.get("delivery") == "pending":
                with telemetry.span(
                    "alerts.deliver", tenant_id=new.get("tenant_id"), alert_id=new.get("alert_id")
                ):
                    return self.book.deliver(pk, sk, self.publisher)
            return "ignored"
        if event_name not in ("INSERT", "MODIFY"):
            return "ignored"
        overrun = overrun_draft(keys, old, new)
        if overrun is not None:
            with telemetry.span("alerts.record", tenant_id=overrun.tenant_id, kind="overrun"):
                created = self.book.record([overrun])
            if created:
                telemetry.count("AlertsRecorded", len(created))
            return f"recorded {len(created)}"
        with telemetry.span("alerts.detect", counter=f"{pk}/{sk}") as span:
            found = crossings(pk, sk, old, new, self.rules)
            telemetry.set_attributes(
                span,
                {
                    "quota_ids": [str(c.quota_id) for c in found],
                    "thresholds": [t for c in found for t in c.thresholds],
                },
            )
        recorded = 0
        for crossing in found:
            with telemetry.span(
                "alerts.record",
                tenant_id=crossing.counter.tenant_id,
                quota_id=str(crossing.quota_id),
                thresholds=list(crossing.thresholds),
                spent_usd=crossing.spent_usd,
                limit_usd=crossing.limit_usd,
            ) as span:
                drafts = threshold_drafts(crossing, self.zone(crossing.counter.tenant_id))
                request = (new or {}).get("last_request_id")
                if request:
                    drafts = [replace(d, caused_by_request=str(request)) for d in drafts]
                created = self.book.record(drafts)
                telemetry.set_attributes(span, {"recorded": len(created)})
                recorded += len(created)
        if recorded:
            telemetry.count("AlertsRecorded", recorded)
        return f"recorded {recorded}" if found else "ignored"

    def rules(self, tenant_id: str | None, quota_id: QuotaId) -> tuple[str, tuple[int, ...]] | None:
        """(mode, thresholds) of a quota from its policy item; re-read when it is unknown."""
        pk = policy_pk(tenant_id)
        now = self.book.clock()
        for fresh in (False, True):
            cached = self._policies.get(pk)
            if fresh or cached is None or now - cached[0] > POLICY_CACHE:
                cached = (now, self._read_policy(pk))
                self._policies[pk] = cached
            rule = cached[1].get(str(quota_id))
            if rule is not None:
                return rule
        return None

    def zone(self, tenant_id: str | None) -> str:
        """The zone the tenant counts its periods in now, from the policy `rules` just read."""
        if tenant_id is None:
            return "UTC"
        policy = self._zones.get(policy_pk(tenant_id))
        return policy.zone_at(self.book.clock()) if policy else "UTC"

    def _read_policy(self, pk: str) -> dict[str, tuple[str, tuple[int, ...]]]:
        item = self.table.get((pk, POLICY_SK), consistent=False) or {}
        try:
            self._zones[pk] = Policy(**zone_fields(item))
        except ValueError:
            self._zones.pop(pk, None)  # a malformed zone: the alert says UTC, nothing is lost
        rules: dict[str, tuple[str, tuple[int, ...]]] = {}
        for quota_id, spec in (item.get("quotas") or {}).items():
            thresholds = tuple(int(t) for t in spec.get("thresholds") or DEFAULT_THRESHOLDS)
            rules[quota_id] = (str(spec.get("mode", "hard")), thresholds)
        return rules

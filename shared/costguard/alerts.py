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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import ClientError
from ulid import ULID

from costguard import telemetry
from costguard.money import ZERO, format_usd
from costguard.notify import EventSink, PublishFailed, Topic
from costguard.periods import parse_period_key, period_end, zone
from costguard.quotas import DEFAULT_THRESHOLDS, Policy, QuotaId, Resource, Scope, stored_zone
from costguard.store.codec import iso
from costguard.store.dynamo import Cancelled, LedgerTable
from costguard.store.keys import (
    ALERT_RECORD_PREFIX,
    OUTBOX,
    POLICY_SK,
    alert_marker_key,
    alert_sk,
    alerts_pk,
    is_alerts_pk,
    is_records_pk,
    outbox_sk,
    policy_pk,
    principal_of,
    tenant_of_records_pk,
)
from costguard.store.schema import HOLDS_INDEX, HOLDS_PK, HOLDS_SK
from costguard.store.writes import ItemWrite, TransactionBuilder

LEASE = timedelta(seconds=60)
REDRIVE_AFTER = timedelta(minutes=2)
"""The sweeper redelivers alerts still pending this long after they were recorded."""
MAX_REDRIVES = 8
"""Redrives of one alert before it is given up (`failed`): with `redrive_delay`, about three
hours after the stream's own bounded retries; then an alarm calls someone."""
MAX_REDRIVE_DELAY = timedelta(hours=1)


def redrive_delay(redrives: int) -> timedelta:
    """How long after its `redrives`-th failed redrive an alert is tried again: 2, 4, 8, 16,
    32 minutes, then hourly."""
    return min(REDRIVE_AFTER * (1 << max(redrives - 1, 0)), MAX_REDRIVE_DELAY)


def outbox_key(due: datetime, alert_id: str) -> str:
    """The outbox index's sort key: when the sweeper may next redrive the alert."""
    return outbox_sk(iso(due), alert_id)


RECORD_PREFIX = ALERT_RECORD_PREFIX


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return ("info", "warning", "critical").index(self.value)


class AlertType(StrEnum):
    THRESHOLD = "threshold"
    ANOMALY = "anomaly"
    FORECAST = "forecast"
    OVERRUN = "overrun"
    RECOMMENDATION = "recommendation"
    """The weekly digest of a tenant's recommendations (costguard.recommendations)."""

    @property
    def event(self) -> str:
        """The detail-type on EventBridge and the `event` of the SNS message."""
        return {
            "threshold": "QuotaThresholdCrossed",
            "anomaly": "CostAnomalyDetected",
            "forecast": "QuotaBreachForecast",
            "overrun": "SpendOverrun",
            "recommendation": "RecommendationsDigest",
        }[self.value]


def threshold_severity(threshold_pct: int) -> Severity:
    """100 % and above is critical (a hard quota now refuses), 80 % and above a warning."""
    if threshold_pct >= 100:
        return Severity.CRITICAL
    if threshold_pct >= 80:
        return Severity.WARNING
    return Severity.INFO


# --------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class Counter:
    """Whose counter a ledger item is: `TENANT#acme#USER#u-1 / MONTH#2026-11`."""

    scope: Scope
    tenant_id: str | None
    user_id: str | None
    period_key: str
    period_start: datetime

    @classmethod
    def from_key(cls, pk: str, sk: str) -> Counter | None:
        try:
            _, start = parse_period_key(sk)
        except ValueError:
            return None
        principal = principal_of(pk)
        if principal is None:
            return None
        scope, tenant_id, user_id = principal
        return cls(scope, tenant_id, user_id, sk, start)

    def quota_id(self, resource: Resource) -> QuotaId:
        period, _ = parse_period_key(self.period_key)
        return QuotaId(self.scope, resource, period, self.user_id)


@dataclass(frozen=True)
class Crossing:
    """One quota's utilization moved across one or more of its thresholds (upwards)."""

    counter: Counter
    quota_id: QuotaId
    mode: str
    thresholds: tuple[int, ...]
    """Every threshold crossed by this change, ascending."""
    spent_usd: Decimal
    limit_usd: Decimal

    @property
    def utilization(self) -> Decimal:
        return utilization(self.spent_usd, self.limit_usd)


def utilization(spent: Decimal, limit: Decimal) -> Decimal:
    """spent / limit; a zero limit with any spend is fully used (and beyond)."""
    if limit > 0:
        return spent / limit
    return Decimal(0) if spent <= 0 else Decimal("Infinity")


class QuotaRules(Protocol):
    def __call__(
        self, tenant_id: str | None, quota_id: QuotaId
    ) -> tuple[str, tuple[int, ...]] | None:
        """(mode, thresholds) of a quota that exists now, or None."""


def crossings(
    pk: str,
    sk: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    rules: QuotaRules,
) -> list[Crossing]:
    """The thresholds a counter item's change crossed, per quota (field group) in it.

    Utilization is spent / limit: money actually spent, not holds that may be released (a
    hard quota at its limit by holds already refuses, with a 429 naming it). A limit lowered
    below the spend crosses thresholds too; a period's threshold alerts only once however
    often utilization goes down and up again (the dedup marker sees to that).
    """
    counter = Counter.from_key(pk, sk)
    if counter is None or not new:
        return []
    old = old or {}
    found: list[Crossing] = []
    for resource in Resource:
        p = f"q_{resource.value}_"
        if p + "limit" not in new:
            continue
        limit = Decimal(new[p + "limit"])
        spent = Decimal(new.get(p + "spent", ZERO))
        before = utilization(
            Decimal(old.get(p + "spent", ZERO)), Decimal(old.get(p + "limit", limit))
        )
        after = utilization(spent, limit)
        if after <= before:
            continue
        quota_id = counter.quota_id(resource)
        rule = rules(counter.tenant_id, quota_id)
        if rule is None:
            continue
        mode, thresholds = rule
        crossed = tuple(t for t in sorted(set(thresholds)) if before * 100 < t <= after * 100)
        if crossed:
            found.append(Crossing(counter, quota_id, mode, crossed, spent, limit))
    return found


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class AlertDraft:
    """An alert about to be recorded; `dedup_key` makes it happen once."""

    alert_type: AlertType
    severity: Severity
    dedup_key: str
    tenant_id: str | None
    title: str
    message: str
    quota_id: str | None = None
    period_key: str | None = None
    threshold_pct: int | None = None
    spent_usd: Decimal | None = None
    limit_usd: Decimal | None = None
    utilization: Decimal | None = None
    resets_at: datetime | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    caused_by_request: str | None = None
    """The API request whose write crossed the threshold (correlation across the stream)."""


def threshold_drafts(crossing: Crossing, tz: str = "UTC") -> list[AlertDraft]:
    """One draft per crossed threshold, ascending (the last is the one to notify); the period
    ends at midnight in `tz`, the tenant's zone (platform quotas: UTC)."""
    c, qid = crossing.counter, crossing.quota_id
    who = c.tenant_id or "platform"
    tz = "UTC" if qid.scope is Scope.PLATFORM else tz
    period, start = parse_period_key(c.period_key, zone(tz))
    resets = period_end(period, start, zone(tz))
    local = "" if tz == "UTC" else f" ({resets.astimezone(zone(tz)):%Y-%m-%d %H:%M} {tz})"
    spent, limit = crossing.spent_usd, crossing.limit_usd
    used = crossing.utilization
    pct = "∞" if not used.is_finite() else f"{(used * 100).quantize(Decimal(1))}"
    drafts = []
    for threshold in crossing.thresholds:
        severity = threshold_severity(threshold)
        drafts.append(
            AlertDraft(
                alert_type=AlertType.THRESHOLD,
                severity=severity,
                dedup_key=f"threshold#{qid}#{c.period_key}#{threshold}",
                tenant_id=c.tenant_id,
                title=f"{who}: {qid} passed {threshold}%",
                message=(
                    f"{who} has spent ${format_usd(spent)} of its ${format_usd(limit)} "
                    f"{qid.period} {qid.resource} limit ({pct}%, {crossing.mode} quota "
                    f"{qid}); the period resets at {resets:%Y-%m-%d %H:%M} UTC{local}."
                ),
                quota_id=str(qid),
                period_key=c.period_key,
                threshold_pct=threshold,
                spent_usd=spent,
                limit_usd=limit,
                utilization=used.quantize(Decimal("0.0001")) if used.is_finite() else None,
                resets_at=resets,
                details={"mode": crossing.mode, "scope": qid.scope.value}
                | ({"user_id": qid.user_id} if qid.user_id else {}),
            )
        )
    return drafts


def overrun_draft(
    keys: Mapping[str, Any], old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> AlertDraft | None:
    """The alert of a commit that spent beyond its hold (once per reservation), if this
    stream record is one: a reservation's record turning from held to committed with
    `overrun_usd` > 0."""
    pk, sk = str(keys.get("pk", "")), str(keys.get("sk", ""))
    if not is_records_pk(pk) or not new or new.get("status") != "committed":
        return None
    if old is not None and old.get("status") == "committed":
        return None
    overrun = Decimal(new.get("overrun_usd", ZERO) or ZERO)
    if overrun <= 0:
        return None
    tenant_id = str(new.get("tenant_id") or tenant_of_records_pk(pk))
    hold, cost = Decimal(new.get("estimate_usd", ZERO)), Decimal(new.get("cost_usd", ZERO))
    what = new.get("model") or new.get("tier") or new.get("resource")
    return AlertDraft(
        alert_type=AlertType.OVERRUN,
        severity=Severity.WARNING,
        dedup_key=f"overrun#{sk}",
        tenant_id=tenant_id,
        title=f"{tenant_id}: a {what} call spent ${format_usd(overrun)} beyond its hold",
        message=(
            f"{tenant_id} committed ${format_usd(cost)} on a reservation that held "
            f"${format_usd(hold)} ({what}). The whole cost is recorded and counted against "
            "every quota, past their limits if need be; new reserves are refused until there "
            "is headroom. Send the output cap your call uses as output_tokens on the reserve."
        ),
        spent_usd=cost,
        details={
            "reservation_id": f"{sk}~{new.get('plan', '')}",
            "hold_usd": format_usd(hold),
            "overrun_usd": format_usd(overrun),
        }
        | ({"user_id": str(new["user_id"])} if new.get("user_id") else {}),
        caused_by_request=str(new["last_request_id"]) if new.get("last_request_id") else None,
    )


class AlertBook:
    """The alert records of every tenant (and the platform), on the ledger table."""

    def __init__(self, table: LedgerTable, clock: Callable[[], datetime]) -> None:
        self.table = table
        self.clock = clock

    # ------------------------------------------------------------------ record
    def record(self, drafts: Iterable[AlertDraft]) -> list[dict[str, Any]]:
        """Record the drafts not recorded before; one of them (the most severe) notifies.

        Returns the records this call created (none when every draft existed already). Two
        callers racing with the same drafts: exactly one records them (DynamoDB cancels the
        other transaction on the markers).
        """
        pending = list(drafts)
        for _ in range(len(pending) + 1):
            if not pending:
                return []
            now = self.clock()
            items = self._items(pending, now)
            tx = TransactionBuilder()
            for draft, item in zip(pending, items, strict=True):
                pk = alerts_pk(draft.tenant_id)
                tx.put(
                    alert_marker_key(draft.tenant_id, draft.dedup_key),
                    {"alert_sk": item["sk"], "created_at": item["created_at"]},
                    "attribute_not_exists(pk)",
                )
                body = {k: v for k, v in item.items() if k not in ("pk", "sk")}
                tx.put((pk, item["sk"]), body)
            try:
                self.table.transact(tx.writes)
                return items
            except Cancelled as cancelled:
                # Markers sit at even positions; drop the drafts someone else recorded.
                taken = {index // 2 for index, _ in cancelled.failed()}
                pending = [d for i, d in enumerate(pending) if i not in taken]
        return []

    @staticmethod
    def _items(drafts: list[AlertDraft], now: datetime) -> list[dict[str, Any]]:
        leader = max(
            range(len(drafts)),
            key=lambda i: (drafts[i].severity.rank, drafts[i].threshold_pct or 0, i),
        )
        ids = [ULID.from_datetime(now) for _ in drafts]
        items = []
        for i, draft in enumerate(drafts):
            item: dict[str, Any] = {
                "pk": alerts_pk(draft.tenant_id),
                "sk": alert_sk(str(ids[i])),
                "alert_id": str(ids[i]),
                "alert_type": draft.alert_type.value,
                "event": draft.alert_type.event,
                "severity": draft.severity.value,
                "tenant_id": draft.tenant_id,
                "title": draft.title,
                "message": draft.message,
                "quota_id": draft.quota_id,
                "period_key": draft.period_key,
                "threshold_pct": draft.threshold_pct,
                "spent_usd": draft.spent_usd,
                "limit_usd": draft.limit_usd,
                "utilization": draft.utilization,
                "resets_at": iso(draft.resets_at) if draft.resets_at else None,
                "details": dict(draft.details) or None,
                "dedup_key": draft.dedup_key,
                "caused_by_request": draft.caused_by_request,
                "created_at": iso(now),
            }
            if i == leader:
                item["notify"] = True
                item["delivery"] = "pending"
                item["grouped"] = [d.threshold_pct for d in drafts if d.threshold_pct] or None
                item[HOLDS_PK] = OUTBOX
                item[HOLDS_SK] = outbox_key(now + REDRIVE_AFTER, str(ids[i]))
            else:
                item["notify"] = False
                item["delivery"] = "grouped"
                item["notified_in"] = str(ids[leader])
            items.append({k: v for k, v in item.items() if v is not None})
        return items

    # ------------------------------------------------------------------ read
    def recent(
        self,
        tenant_id: str | None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        alert_type: AlertType | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; `cursor` is the last alert id of the previous page."""
        pk = alerts_pk(tenant_id)
        upper = RECORD_PREFIX + cursor if cursor else RECORD_PREFIX + "\uffff"
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        values: dict[str, Any] = {":pk": pk, ":lo": RECORD_PREFIX, ":hi": upper}
        if alert_type:
            values[":t"] = alert_type.value
        while len(found) <= limit:
            page, start = self.table.query(
                "pk = :pk AND sk BETWEEN :lo AND :hi",
                values,
                forward=False,
                limit=limit + 1,
                start_key=start,
                filter_expression="alert_type = :t" if alert_type else None,
            )
            found.extend(i for i in page if i["sk"] != upper)
            if start is None:
                break
        more = len(found) > limit
        found = found[:limit]
        return found, (found[-1]["alert_id"] if more and found else None)

    # ------------------------------------------------------------------ deliver
    def deliver(self, pk: str, sk: str, publisher: Publisher, redrive: bool = False) -> str:
        """Publish one pending alert on every channel not yet done; 'sent' or why not.

        Raises PublishFailed (after putting the alert back to pending) so that the caller's
        retry — the stream's, or the sweeper's next run — tries again. A `redrive` (the
        sweeper's) that fails is due again after `redrive_delay`; the `MAX_REDRIVES`-th marks
        the alert `failed` instead and returns 'failed' (nothing retries it any more).
        """
        now = self.clock()
        until = iso(now + LEASE)
        claim = ItemWrite(key=(pk, sk))
        delivery, lease = claim.name("delivery"), claim.name("lease_until")
        claim.sets += [
            f"{delivery} = {claim.value('sending')}",
            f"{lease} = {claim.value(until)}",
        ]
        claim.add("attempts", 1)
        if redrive:
            claim.add("redrives", 1)
        claim.condition(
            f"{delivery} = {claim.value('pending')} OR "
            f"({delivery} = {claim.value('sending')} AND {lease} < {claim.value(iso(now))})"
        )
        try:
            item = self.table.update(claim)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return "not pending"
            raise
        done = set(item.get("channels_sent", ()))
        for channel in publisher.channels:
            if channel in done:
                continue
            try:
                with telemetry.span(
                    "alerts.publish", channel=channel, alert_id=item.get("alert_id")
                ):
                    publisher.send(channel, item)
                telemetry.count("AlertsPublished")
            except PublishFailed as exc:
                telemetry.failed(telemetry.Stage.PUBLISH, exc)
                telemetry.count("AlertPublishFailures")
                redrives = int(item.get("redrives", 0)) if redrive else 0
                if redrives >= MAX_REDRIVES:
                    self._give_up(pk, sk, until, exc)
                    return "failed"
                back = ItemWrite(key=(pk, sk))
                back.sets += [
                    f"{back.name('delivery')} = {back.value('pending')}",
                    f"{back.name('last_error')} = {back.value(str(exc)[:500])}",
                ]
                if redrives:
                    due = self.clock() + redrive_delay(redrives)
                    back.sets.append(
                        f"{back.name(HOLDS_SK)} = "
                        f"{back.value(outbox_key(due, str(item.get('alert_id'))))}"
                    )
                back.removes.append(back.name("lease_until"))
                back.condition(f"{back.name('lease_until')} = {back.value(until)}")
                self._quietly(back)
                raise
            mark = ItemWrite(key=(pk, sk))
            mark.adds.append(f"{mark.name('channels_sent')} {mark.value({channel})}")
            self._quietly(mark)
        sent = ItemWrite(key=(pk, sk))
        sent.sets += [
            f"{sent.name('delivery')} = {sent.value('sent')}",
            f"{sent.name('delivered_at')} = {sent.value(iso(self.clock()))}",
        ]
        sent.removes += [sent.name(HOLDS_PK), sent.name(HOLDS_SK), sent.name("lease_until")]
        sent.condition(f"{sent.name('lease_until')} = {sent.value(until)}")
        self._quietly(sent)
        return "sent"

    def _give_up(self, pk: str, sk: str, until: str, error: Exception) -> None:
        """The last redrive failed: `failed`, out of the outbox, counted (AlertsUndeliverable,
        alarmed); the record stays readable with its last error."""
        give_up = ItemWrite(key=(pk, sk))
        give_up.sets += [
            f"{give_up.name('delivery')} = {give_up.value('failed')}",
            f"{give_up.name('failed_at')} = {give_up.value(iso(self.clock()))}",
            f"{give_up.name('last_error')} = {give_up.value(str(error)[:500])}",
        ]
        give_up.removes += [
            give_up.name(HOLDS_PK),
            give_up.name(HOLDS_SK),
            give_up.name("lease_until"),
        ]
        give_up.condition(f"{give_up.name('lease_until')} = {give_up.value(until)}")
        self._quietly(give_up)
        telemetry.count("AlertsUndeliverable")

    def _quietly(self, write: ItemWrite) -> None:
        """A bookkeeping write whose condition may fail because another process took over."""
        try:
            self.table.update(write)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def pending(self, limit: int = 100) -> list[tuple[str, str]]:
        """Keys of notifying alerts due for a redrive: still undelivered `REDRIVE_AFTER` after
        being recorded, or `redrive_delay` after their last failed redrive."""
        bound = iso(self.clock()) + "$"  # keys are `<iso>#<ulid>`, "#" < "$": due by now
        items, _ = self.table.query(
            f"{HOLDS_PK} = :o AND {HOLDS_SK} < :bound",
            {":o": OUTBOX, ":bound": bound},
            index=HOLDS_INDEX,
            limit=limit,
        )
        return [(i["pk"], i["sk"]) for i in items]

    def redrive(self, publisher: Publisher, limit: int = 100) -> tuple[int, int]:
        """(sent, failed) for the alerts `pending` finds; failed includes those given up."""
        sent = failed = 0
        for pk, sk in self.pending(limit):
            try:
                outcome = self.deliver(pk, sk, publisher, redrive=True)
            except PublishFailed:
                failed += 1
            else:
                sent += outcome == "sent"
                failed += outcome == "failed"
        return sent, failed


# --------------------------------------------------------------------------- publishing
def message_attributes(item: Mapping[str, Any]) -> dict[str, str]:
    """SNS message attributes subscribers filter on (a platform alert has no tenant_id)."""
    details = item.get("details") or {}
    return {
        "tenant_id": item.get("tenant_id") or "",
        "severity": item["severity"],
        "alert_type": item["alert_type"],
        "event": item["event"],
        "quota_id": item.get("quota_id") or "",
        "scope": details.get("scope", "tenant" if item.get("tenant_id") else "platform"),
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


def public_alert(item: Mapping[str, Any], for_subscribers: bool = False) -> dict[str, Any]:
    """The alert as the API (or, without delivery bookkeeping, a subscriber) sees it."""
    hidden = INTERNAL | DELIVERY if for_subscribers else INTERNAL
    out: dict[str, Any] = {}
    for key, value in item.items():
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

    def send(self, channel: str, item: Mapping[str, Any]) -> None:
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


# --------------------------------------------------------------------------- the stream
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
            self._zones[pk] = Policy(**stored_zone(item))
        except ValueError:
            self._zones.pop(pk, None)  # a malformed zone: the alert says UTC, nothing is lost
        rules: dict[str, tuple[str, tuple[int, ...]]] = {}
        for quota_id, spec in (item.get("quotas") or {}).items():
            thresholds = tuple(int(t) for t in spec.get("thresholds") or DEFAULT_THRESHOLDS)
            rules[quota_id] = (str(spec.get("mode", "hard")), thresholds)
        return rules


def publisher_from_settings() -> Publisher:
    """SNS topic and EventBridge bus of this deployment (either may be unset)."""
    from costguard.notify import NoSink, event_sink_from_settings, topic_from_settings

    bus = event_sink_from_settings()
    return Publisher(topic_from_settings(), None if isinstance(bus, NoSink) else bus)


@dataclass
class Outbox:
    """What the sweeper redrives: the alert book and where its alerts go."""

    book: AlertBook
    publisher: Publisher

    def redrive(self, limit: int = 100) -> tuple[int, int]:
        return self.book.redrive(self.publisher, limit)

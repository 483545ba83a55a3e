"""The alert book: alerts recorded exactly once (a dedup marker and the record in one
transaction), listed per tenant, and delivered through the outbox entries they carry (claim,
publish to each channel not yet done, mark sent; redrives back off and give up)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from ulid import ULID

from costguard import telemetry
from costguard.alerts.detection import AlertDraft
from costguard.alerts.kinds import RECORD_PREFIX, AlertType
from costguard.alerts.publishing import Publisher
from costguard.notify import PublishFailed
from costguard.store.codec import iso
from costguard.store.dynamo import Cancelled, LedgerTable
from costguard.store.items import AlertItem
from costguard.store.keys import OUTBOX, alert_marker_key, alerts_pk, outbox_sk
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


class AlertBook:
    """The alert records of every tenant (and the platform), on the ledger table."""

    def __init__(self, table: LedgerTable, clock: Callable[[], datetime]) -> None:
        self.table = table
        self.clock = clock

    # ------------------------------------------------------------------ record
    def record(self, drafts: Iterable[AlertDraft]) -> list[AlertItem]:
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
            alerts = self._alerts(pending, now)
            tx = TransactionBuilder()
            for draft, alert in zip(pending, alerts, strict=True):
                tx.put(
                    alert_marker_key(draft.tenant_id, draft.dedup_key),
                    {"alert_sk": alert.sk, "created_at": iso(alert.created_at)},
                    "attribute_not_exists(pk)",
                )
                body = alert.to_item()
                tx.put((alerts_pk(draft.tenant_id), body.pop("sk")), body)
            try:
                self.table.transact(tx.writes)
                return alerts
            except Cancelled as cancelled:
                # Markers sit at even positions; drop the drafts someone else recorded.
                taken = {index // 2 for index, _ in cancelled.failed()}
                pending = [d for i, d in enumerate(pending) if i not in taken]
        return []

    @staticmethod
    def _alerts(drafts: list[AlertDraft], now: datetime) -> list[AlertItem]:
        leader = max(
            range(len(drafts)),
            key=lambda i: (drafts[i].severity.rank, drafts[i].threshold_pct or 0, i),
        )
        ids = [str(ULID.from_datetime(now)) for _ in drafts]
        alerts = []
        for i, draft in enumerate(drafts):
            lead = i == leader
            alerts.append(
                AlertItem(
                    alert_id=ids[i],
                    alert_type=draft.alert_type.value,
                    event=draft.alert_type.event,
                    severity=draft.severity.value,
                    tenant_id=draft.tenant_id,
                    title=draft.title,
                    message=draft.message,
                    quota_id=draft.quota_id,
                    period_key=draft.period_key,
                    threshold_pct=draft.threshold_pct,
                    spent_usd=draft.spent_usd,
                    limit_usd=draft.limit_usd,
                    utilization=draft.utilization,
                    resets_at=draft.resets_at,
                    details=dict(draft.details),
                    dedup_key=draft.dedup_key,
                    caused_by_request=draft.caused_by_request,
                    created_at=now,
                    notify=lead,
                    delivery="pending" if lead else "grouped",
                    grouped=([d.threshold_pct for d in drafts if d.threshold_pct] or None)
                    if lead
                    else None,
                    outbox=outbox_key(now + REDRIVE_AFTER, ids[i]) if lead else None,
                    notified_in=None if lead else ids[leader],
                )
            )
        return alerts

    # ------------------------------------------------------------------ read
    def recent(
        self,
        tenant_id: str | None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        alert_type: AlertType | None = None,
    ) -> tuple[list[AlertItem], str | None]:
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
        alerts = [AlertItem.from_item(i) for i in found[:limit]]
        return alerts, (alerts[-1].alert_id if more and alerts else None)

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
            alert = AlertItem.from_item(self.table.update(claim))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return "not pending"
            raise
        done = alert.channels_sent or frozenset()
        for channel in publisher.channels:
            if channel in done:
                continue
            try:
                with telemetry.span("alerts.publish", channel=channel, alert_id=alert.alert_id):
                    publisher.send(channel, alert)
                telemetry.count("AlertsPublished")
            except PublishFailed as exc:
                telemetry.failed(telemetry.Stage.PUBLISH, exc)
                telemetry.count("AlertPublishFailures")
                redrives = (alert.redrives or 0) if redrive else 0
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
                        f"{back.name(HOLDS_SK)} = {back.value(outbox_key(due, alert.alert_id))}"
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

"""The ledger stream's alerts: which records may alert, and the handler's work per
record (detect, record, deliver)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import costguard.ledger.escrow as escrow
from costguard import telemetry
from costguard.alerts.book import AlertBook
from costguard.alerts.detection import (
    Counter,
    Crossing,
    Rule,
    crossings,
    leased_changes,
    overrun_draft,
    sliced_changes,
    threshold_drafts,
    threshold_key,
    whole_crossing,
)
from costguard.alerts.kinds import RECORD_PREFIX
from costguard.alerts.publishing import Publisher
from costguard.money import ZERO
from costguard.quotas import DEFAULT_THRESHOLDS, Policy, QuotaId, Resource
from costguard.store.counters import CounterItem, figures_changed, lease_prefix, quota_prefix
from costguard.store.dynamo import LedgerTable
from costguard.store.items import zone_fields
from costguard.store.keys import (
    POLICY_SK,
    Key,
    alert_marker_key,
    is_alerts_pk,
    is_records_pk,
    policy_pk,
    tenant_pk,
)

POLICY_CACHE = timedelta(seconds=60)
RECORDED_CACHE = 4096
"""Threshold markers a container remembers as written: a sliced quota past a threshold reads
nothing more for it (its slices' changes keep coming)."""


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
    if is_records_pk(pk):
        if (new.get("status") or {}).get("S") != "committed":
            return False
        overrun = (new.get("overrun_usd") or {}).get("N")
        return overrun is None or Decimal(overrun) != 0  # an odd image: let `handle` judge
    if Counter.from_key(pk, sk) is None:
        return False
    # A quota's fields, or a tenant's lease of a platform quota (D78).
    return figures_changed(new, old)


def request_of(image: Mapping[str, Any] | None) -> str | None:
    """The API request behind a stream image, for one correlation id end to end: a counter's
    change names it (`last_request_id`), an alert the request that caused it."""
    request = CounterItem(image).last_request_id or (image or {}).get("caused_by_request")
    return None if request is None else str(request)


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
        self._policies: dict[str, tuple[datetime, dict[str, Rule]]] = {}
        self._zones: dict[str, Policy] = {}
        self._recorded: OrderedDict[tuple[str | None, str], None] = OrderedDict()
        self._batch = threading.local()
        self._lock = threading.Lock()  # `make run` and tests share one across threads

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One invocation's batch: every record in it was committed before the batch was
        read from the stream, so one read of a sliced quota's whole (after the first of its
        records) answers for all of them; the others read nothing. Per thread: concurrent
        invocations sharing this object each have their own."""
        self._batch.read = set()
        try:
            yield
        finally:
            del self._batch.read

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
            found = self.detect(pk, sk, old, new)
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
                request = CounterItem(new).last_request_id
                if request:
                    drafts = [replace(d, caused_by_request=request) for d in drafts]
                created = self.book.record(drafts)
                # Every draft's marker exists now: ours, or a concurrent handler's.
                self._remember(crossing.counter.tenant_id, [d.dedup_key for d in drafts])
                telemetry.set_attributes(span, {"recorded": len(created)})
                recorded += len(created)
        if recorded:
            telemetry.count("AlertsRecorded", recorded)
        return f"recorded {recorded}" if found else "ignored"

    def detect(
        self, pk: str, sk: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> list[Crossing]:
        """The crossings of a counter item's change: an unsliced quota's from the change
        itself, a sliced quota's from its whole (D77)."""
        counter = Counter.from_key(pk, sk)
        if counter is not None and new and self._stale(counter, new):
            self._policies.pop(policy_pk(counter.tenant_id), None)
        found = crossings(pk, sk, old, new, self.rules)
        if found:
            # Rare (a threshold crossed): make sure the quota was not sliced within the cache's
            # minute (slice 0 on its own share would alert early).
            self._policies.pop(policy_pk(found[0].counter.tenant_id), None)
            found = crossings(pk, sk, old, new, self.rules)
        for counter, quota_id, rule in sliced_changes(pk, sk, old, new, self.rules):
            crossing = self.whole(counter, quota_id, rule)
            if crossing is not None:
                found.append(crossing)
        for counter, quota_id, rule in leased_changes(pk, sk, old, new, self.rules):
            crossing = self.whole(counter, quota_id, rule)
            if crossing is not None:
                found.append(crossing)
        return found

    def _stale(self, counter: Counter, new: Mapping[str, Any]) -> bool:
        """Whether the cached policy may be older than this change: it says a quota of the
        counter is not sliced, but the counter's limit is not the quota's (an unsliced
        counter's limit moves with the policy, in the same transaction; slice 0 of a quota
        sliced since has its share). Reads nothing."""
        cached = self._policies.get(policy_pk(counter.tenant_id))
        if counter.slice or cached is None:
            return False  # nothing cached: the next read is fresh anyway
        item = CounterItem(new)
        for resource in Resource:
            p = quota_prefix(resource.value)
            if not item.has(p):
                continue
            rule = cached[1].get(str(counter.quota_id(resource)))
            if rule is None or rule.sliced or rule.leased:
                continue  # a slice's or the pool's grant is not the limit
            if item.fields(p).limit != rule.limit_usd:
                return True
        return False

    def whole(self, counter: Counter, quota_id: QuotaId, rule: Rule) -> Crossing | None:
        """The thresholds a sliced quota as a whole has reached and not yet recorded.

        A consistent read of the policy and every slice screens the change: it sees at least
        every write committed before this record's (so the last change of a period always
        finds the whole where it is, with the slices of a reshard that came first), and
        spend only grows, so it never shows more spend than there is. A borrow in flight may
        show a grant twice or not at all, so a threshold the screen finds reached is confirmed
        on a `TransactGetItems` snapshot of the policy and every slice (what borrows are
        decided on, D75) before it is recorded.
        """
        tenant = counter.tenant_id
        keys = {t: threshold_key(quota_id, counter.period_key, t) for t in rule.thresholds}
        done = {t for t, k in keys.items() if (tenant, k) in self._recorded}
        if len(done) == len(keys):
            return None
        read: set[tuple[str | None, str, str]] | None = getattr(self._batch, "read", None)
        whole_id = (tenant, str(quota_id), counter.period_key)
        if read is not None and whole_id in read:
            return None  # read once this batch, after every change in it
        crossing = self._whole(counter, quota_id, rule, keys, done)
        if read is not None:
            read.add(whole_id)
        return crossing

    def _whole(
        self,
        counter: Counter,
        quota_id: QuotaId,
        rule: Rule,
        keys: Mapping[int, str],
        done: set[int],
    ) -> Crossing | None:
        tenant = counter.tenant_id
        base = (counter.pk, counter.period_key)
        prefix = quota_prefix(quota_id.resource.value)
        crossing = None
        if rule.leased:
            return self._leased_whole(counter, quota_id, keys, done)
        for read in (self._screen, self._snapshot):
            found = self._read_whole(read, tenant, quota_id, base, rule)
            if found is None:
                return None  # the quota is gone
            rule, items = found
            spent, limit = _whole(items, base, prefix, rule)
            crossing = whole_crossing(counter, quota_id, rule, spent, limit, done)
            if crossing is None:
                return None
        assert crossing is not None
        markers = self.table.batch_get(
            [alert_marker_key(tenant, keys[t]) for t in crossing.thresholds], consistent=False
        )
        taken = {t for t in crossing.thresholds if alert_marker_key(tenant, keys[t]) in markers}
        self._remember(tenant, [keys[t] for t in taken])
        return whole_crossing(
            counter, quota_id, rule, crossing.spent_usd, crossing.limit_usd, done | taken
        )

    def _leased_whole(
        self, counter: Counter, quota_id: QuotaId, keys: Mapping[int, str], done: set[int]
    ) -> Crossing | None:
        """A leased quota's whole (D88): the policy and the pool read together, then every
        lease the pool lists. Spent only grows on each item and a lease is listed on the pool
        before anything is spent on it, so the sum never shows more spend than there is, and
        it sees every write committed before this record's; the limit is the policy's (the
        grants sum to it), so a renewal moving a grant changes nothing here."""
        base = (counter.pk, counter.period_key)
        prefix = quota_prefix(quota_id.resource.value)
        policy_key = (policy_pk(None), POLICY_SK)
        found = self.table.batch_get([policy_key, base], consistent=True)
        rules = _rules_of(found.get(policy_key) or {})
        self._policies[policy_key[0]] = (self.book.clock(), rules)
        rule = rules.get(str(quota_id))
        if rule is None or not rule.leased:
            return None  # gone, or no longer leased
        pool = CounterItem(found.get(base))
        lp = lease_prefix(prefix)
        names = sorted(pool.lease(lp).lessees)
        leases = self._screen([(tenant_pk(t), base[1]) for t in names]) if names else {}
        spent = pool.fields(prefix).spent + sum(
            (CounterItem(item).fields(lp).spent for item in leases.values()), ZERO
        )
        crossing = whole_crossing(counter, quota_id, rule, spent, rule.limit_usd, done)
        if crossing is None:
            return None
        markers = self.table.batch_get(
            [alert_marker_key(None, keys[t]) for t in crossing.thresholds], consistent=False
        )
        taken = {t for t in crossing.thresholds if alert_marker_key(None, keys[t]) in markers}
        self._remember(None, [keys[t] for t in taken])
        return whole_crossing(counter, quota_id, rule, spent, rule.limit_usd, done | taken)

    def _screen(self, keys: list[Key]) -> dict[Key, dict[str, Any]]:
        return self.table.batch_get(keys, consistent=True)

    def _snapshot(self, keys: list[Key]) -> dict[Key, dict[str, Any]]:
        return self.table.transact_get(keys)

    def _read_whole(
        self,
        read: Callable[[list[Key]], dict[Key, dict[str, Any]]],
        tenant_id: str | None,
        quota_id: QuotaId,
        base: Key,
        rule: Rule,
    ) -> tuple[Rule, dict[Key, dict[str, Any]]] | None:
        """The quota's rule and slices as the policy read with them says (read again with
        more slices when it names more than were read: a reshard since the cached rule)."""
        policy_key = (policy_pk(tenant_id), POLICY_SK)
        indices = rule.indices
        for _ in range(4):
            found = read([policy_key, *self._slice_keys(base, indices)])
            policy = found.get(policy_key) or {}
            rules = _rules_of(policy)
            self._policies[policy_key[0]] = (self.book.clock(), rules)
            fresh = rules.get(str(quota_id))
            if fresh is None:
                return None
            if fresh.indices.stop <= indices.stop:
                return fresh, found
            indices = fresh.indices
        raise RuntimeError(f"{quota_id}: resharded again and again while alerts read it")

    @staticmethod
    def _slice_keys(base: Key, rule: Rule | range) -> list[Key]:
        indices = rule.indices if isinstance(rule, Rule) else rule
        return [escrow.slice_key(base, i) for i in indices]

    def _remember(self, tenant_id: str | None, dedup_keys: list[str]) -> None:
        with self._lock:
            for key in dedup_keys:
                self._recorded[(tenant_id, key)] = None
                self._recorded.move_to_end((tenant_id, key))
            while len(self._recorded) > RECORDED_CACHE:
                self._recorded.popitem(last=False)

    def rules(self, tenant_id: str | None, quota_id: QuotaId) -> Rule | None:
        """A quota's rule from its policy item; re-read when it is unknown."""
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

    def _read_policy(self, pk: str) -> dict[str, Rule]:
        item = self.table.get((pk, POLICY_SK), consistent=True) or {}
        try:
            self._zones[pk] = Policy(**zone_fields(item))
        except ValueError:
            self._zones.pop(pk, None)  # a malformed zone: the alert says UTC, nothing is lost
        return _rules_of(item)


def _rules_of(item: Mapping[str, Any]) -> dict[str, Rule]:
    """Every quota's rule in a policy item."""
    rules: dict[str, Rule] = {}
    for quota_id, spec in (item.get("quotas") or {}).items():
        slices = int(spec.get("slices", 1))
        rules[quota_id] = Rule(
            mode=str(spec.get("mode", "hard")),
            thresholds=tuple(int(t) for t in spec.get("thresholds") or DEFAULT_THRESHOLDS),
            slices=slices,
            span=int(spec.get("span", slices)),
            limit_usd=Decimal(spec.get("limit_usd", ZERO)),
            leased=bool(spec.get("leased", False)),
        )
    return rules


def _whole(
    items: Mapping[Key, Mapping[str, Any]], base: Key, prefix: str, rule: Rule
) -> tuple[Decimal, Decimal]:
    """(spent, limit) of a sliced quota summed over its slices; a slice without fields in
    the period has its virtual grant (escrow)."""
    layout = escrow.Layout(rule.limit_usd, rule.slices, max(rule.span, rule.slices))
    whole = escrow.whole(escrow.states_of(items, base, prefix, layout))
    return whole.spent, whole.limit

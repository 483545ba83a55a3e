"""Detection: threshold crossings read from counter changes, and the drafts of
threshold and overrun alerts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from costguard.alerts.kinds import AlertType, Severity, threshold_severity
from costguard.money import ZERO, format_usd
from costguard.periods import parse_period_key, period_end, zone
from costguard.quotas import QuotaId, Resource, Scope
from costguard.store.counters import CounterItem, lease_prefix, quota_prefix
from costguard.store.keys import (
    is_records_pk,
    principal_of,
    split_slice,
    tenant_of_records_pk,
)


@dataclass(frozen=True)
class Counter:
    """Whose counter a ledger item is: `TENANT#acme#USER#u-1 / MONTH#2026-11`; the item of
    a sliced quota's slice i > 0 (`TENANT#acme#S03 / MONTH#2026-11`) is the same counter's."""

    scope: Scope
    tenant_id: str | None
    user_id: str | None
    period_key: str
    period_start: datetime
    pk: str = ""
    """The counter's partition: slice 0's."""
    slice: int = 0
    """Which slice of it the item is (0: the counter item itself)."""

    @classmethod
    def from_key(cls, pk: str, sk: str) -> Counter | None:
        try:
            _, start = parse_period_key(sk)
        except ValueError:
            return None
        base, index = split_slice(pk)
        principal = principal_of(base)
        if principal is None:
            return None
        scope, tenant_id, user_id = principal
        return cls(scope, tenant_id, user_id, sk, start, base, index)

    def quota_id(self, resource: Resource) -> QuotaId:
        period, _ = parse_period_key(self.period_key)
        return QuotaId(self.scope, resource, period, self.user_id)


@dataclass(frozen=True)
class Rule:
    """What alerts need of a quota's spec in its policy."""

    mode: str
    thresholds: tuple[int, ...]
    slices: int = 1
    span: int = 1
    """As the policy stores them (decisions D74): every slice index that may hold anything."""
    limit_usd: Decimal = ZERO
    leased: bool = False
    """A platform quota held through leases (D78): its whole is the pool and the leases."""

    @property
    def sliced(self) -> bool:
        return self.slices > 1 or self.span > 1

    @property
    def indices(self) -> range:
        return range(max(self.slices, self.span))


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
    def __call__(self, tenant_id: str | None, quota_id: QuotaId) -> Rule | None:
        """The rule of a quota that exists now, or None."""


def _groups(
    pk: str, sk: str, new: Mapping[str, Any] | None
) -> Iterator[tuple[Counter, Resource, str]]:
    """(counter, resource, field prefix) of each quota field group a counter item has."""
    counter = Counter.from_key(pk, sk)
    if counter is None or not new:
        return
    item = CounterItem(new)
    for resource in Resource:
        p = quota_prefix(resource.value)
        if item.has(p):
            yield counter, resource, p


def crossings(
    pk: str,
    sk: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    rules: QuotaRules,
) -> list[Crossing]:
    """The thresholds a counter item's change crossed, per quota (field group) in it, for
    quotas that are not sliced (a sliced quota's: `whole_crossing`).

    Utilization is spent / limit: money actually spent, not holds that may be released (a
    hard quota at its limit by holds already refuses, with a 429 naming it). A limit lowered
    below the spend crosses thresholds too; a period's threshold alerts only once however
    often utilization goes down and up again (the dedup marker sees to that).
    """
    was, now = CounterItem(old), CounterItem(new)
    found: list[Crossing] = []
    for counter, resource, p in _groups(pk, sk, new):
        if counter.slice:
            continue
        after_fields, before_fields = now.fields(p), was.fields(p)
        limit, spent = after_fields.limit_or(ZERO), after_fields.spent
        before = utilization(before_fields.spent, before_fields.limit_or(limit))
        after = utilization(spent, limit)
        if after <= before:
            continue
        quota_id = counter.quota_id(resource)
        rule = rules(counter.tenant_id, quota_id)
        if rule is None or rule.sliced or rule.leased:
            continue
        crossed = tuple(t for t in sorted(set(rule.thresholds)) if before * 100 < t <= after * 100)
        if crossed:
            found.append(Crossing(counter, quota_id, rule.mode, crossed, spent, limit))
    return found


def sliced_changes(
    pk: str,
    sk: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    rules: QuotaRules,
) -> list[tuple[Counter, QuotaId, Rule]]:
    """The sliced quotas whose whole this change of one of their slices may have moved up:
    its spent went up or its grant down (a borrow, a re-grant, a lower limit); the whole is
    read to know (`whole_crossing`). Only the relative sizes matter: a slice lent to or
    retired (grant 0) still counts what is spent on it."""
    was, now = CounterItem(old), CounterItem(new)
    found: list[tuple[Counter, QuotaId, Rule]] = []
    for counter, resource, p in _groups(pk, sk, new):
        after, before = now.fields(p), was.fields(p)
        grant = after.limit_or(ZERO)
        up = after.spent > before.spent or grant < before.limit_or(grant)
        if not up:
            continue
        quota_id = counter.quota_id(resource)
        rule = rules(counter.tenant_id, quota_id)
        if rule is not None and (rule.sliced or counter.slice):
            found.append((counter, quota_id, rule))
    return found


def leased_changes(
    pk: str,
    sk: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    rules: QuotaRules,
) -> list[tuple[Counter, QuotaId, Rule]]:
    """The leased platform quotas whose whole this change may have moved up (D78, D88): a
    tenant's lease spent more (`l_<r>_spent`, on the tenant's counter item of the platform
    period), or the pool (the platform counter) spent more or lost grant. The whole, read
    from the pool and every lease, says whether a threshold was reached."""
    counter = Counter.from_key(pk, sk)
    if counter is None or not new or counter.slice or counter.user_id:
        return []
    was, now = CounterItem(old), CounterItem(new)
    found: list[tuple[Counter, QuotaId, Rule]] = []
    platform = replace(counter, scope=Scope.PLATFORM, tenant_id=None, pk="PLATFORM")
    for resource in Resource:
        q = quota_prefix(resource.value)
        p = q if counter.scope is Scope.PLATFORM else lease_prefix(q)
        if not now.has(p):
            continue
        after, before = now.fields(p), was.fields(p)
        grant = after.limit_or(ZERO)
        up = after.spent > before.spent or (
            counter.scope is Scope.PLATFORM and grant < before.limit_or(grant)
        )
        if not up:
            continue
        quota_id = platform.quota_id(resource)
        rule = rules(None, quota_id)
        if rule is not None and rule.leased:
            found.append((platform, quota_id, rule))
    return found


def whole_crossing(
    counter: Counter,
    quota_id: QuotaId,
    rule: Rule,
    spent: Decimal,
    limit: Decimal,
    recorded: Iterable[int] = (),
) -> Crossing | None:
    """A sliced quota read as one (`spent` and `limit` summed over its slices): every
    threshold the whole has reached that is not `recorded` yet. Level-triggered: a change of
    one slice cannot tell where the whole was before it, so whichever change first finds the
    whole past a threshold records it (the dedup marker keeps it once, D77)."""
    used = utilization(spent, limit)
    done = set(recorded)
    reached = tuple(t for t in sorted(set(rule.thresholds)) if t <= used * 100 and t not in done)
    if not reached:
        return None
    base = replace(counter, slice=0)
    return Crossing(base, quota_id, rule.mode, reached, spent, limit)


def threshold_key(quota_id: QuotaId, period_key: str, threshold: int) -> str:
    """The dedup key of a quota's threshold in a period: once per period, ever."""
    return f"threshold#{quota_id}#{period_key}#{threshold}"


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
                dedup_key=threshold_key(qid, c.period_key, threshold),
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

"""Anomaly detection: a tenant's day against its own history, recorded as alerts once.

Every hour (EventBridge), for each tenant with spend today or yesterday (`activity`), two
days are judged: the last complete day, and today so far. Today's partial spend is compared
with a full day's expectation, so it only alarms once it is already beyond what a whole day
should cost (no false alarm from an uneven day; a runaway is caught within the hour it passes
the line, and the complete day is judged again tomorrow).

- spend: the tenant's total, and each resource (llm, sandbox) when the total is not already
  anomalous, against `stats.judge` over the previous `baseline_days` complete days (trend and
  weekday aware, mean + kσ or median + k·MAD);
- share: a model, a sandbox tier or a user bucket taking at least `share_min_pct` % of the
  day, `share_jump_pct` points above its share of the baseline's spend (a new model had 0 %).

A day under `min_usd` is never an anomaly. Fewer than `min_history_days` of history (days
since the tenant's first spend in the window) gives no verdict, reported as such.
Each finding is an `anomaly` alert deduplicated by tenant, day and dimension: reruns and the
today-then-yesterday double look record it once. Days are the tenant's local days (its zone):
today, yesterday and the baseline are read from the rollups of its own calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal

from costguard.activity import active_tenants, around, by_day, first_spend, local_now, series
from costguard.alerts import AlertBook, AlertDraft, AlertType, Severity
from costguard.ledger import Ledger
from costguard.money import ZERO, format_usd
from costguard.schedules import RunReport, TimeLeft, scheduled_run
from costguard.settings import Settings
from costguard.stats import judge, pct, usd
from costguard.store.items import DayRollup
from costguard.store.keys import day_sk


@dataclass(frozen=True)
class AnomalyRules:
    baseline_days: int = 30
    min_history_days: int = 7
    sigmas: Decimal = Decimal(2)
    method: str = "auto"
    min_usd: Decimal = Decimal("1.00")
    share_min_pct: int = 50
    share_jump_pct: int = 25

    @classmethod
    def from_settings(cls, s: Settings) -> AnomalyRules:
        return cls(
            s.anomaly_baseline_days,
            s.anomaly_min_history_days,
            s.anomaly_sigmas,
            s.anomaly_method.value,
            s.anomaly_min_usd,
            s.anomaly_share_min_pct,
            s.anomaly_share_jump_pct,
        )


@dataclass(frozen=True)
class Finding:
    """One anomaly: a tenant's day (or today so far) on one dimension."""

    tenant_id: str
    day: date
    partial: bool
    dimension: str
    """`all`, `resource:llm`, `model:openai/gpt-4o`, `tier:gpu`, `user:07` (a user bucket)."""
    kind: str
    """`spend` (above its expectation) or `share` (a jump in its share of the day)."""
    value_usd: Decimal
    severity: Severity
    summary: str
    details: dict[str, str]

    def draft(self) -> AlertDraft:
        when = f"{self.day} (so far)" if self.partial else str(self.day)
        return AlertDraft(
            alert_type=AlertType.ANOMALY,
            severity=self.severity,
            dedup_key=f"anomaly#{self.day}#{self.dimension}",
            tenant_id=self.tenant_id,
            title=f"{self.tenant_id}: {self.kind} anomaly on {when}, {self.dimension}",
            message=f"{self.tenant_id} {self.summary}",
            period_key=day_sk(self.day),
            spent_usd=self.value_usd,
            details={"dimension": self.dimension, "kind": self.kind, **self.details},
        )


@dataclass
class TenantVerdict:
    tenant_id: str
    findings: list[Finding] = field(default_factory=list)
    insufficient_history: list[str] = field(default_factory=list)
    """Days judged without a verdict, e.g. `2026-11-25: 3 days of history, 7 needed`."""


def _spend_finding(
    tenant_id: str,
    day: date,
    partial: bool,
    dimension: str,
    history: list[tuple[date, Decimal]],
    value: Decimal,
    rules: AnomalyRules,
) -> Finding | None:
    if value < rules.min_usd:
        return None
    verdict = judge(
        [(d, float(x)) for d, x in history], day, float(value), float(rules.sigmas), rules.method
    )
    if not verdict.exceeds:
        return None
    f = verdict.fit
    method = "median+k·MAD" if f.robust else "mean+k·σ"
    threshold = usd(verdict.threshold)
    severity = Severity.CRITICAL if value >= 2 * threshold else Severity.WARNING
    return Finding(
        tenant_id,
        day,
        partial,
        dimension,
        "spend",
        value,
        severity,
        (
            f"spent ${format_usd(value)} ({dimension}) on {day}{' so far' if partial else ''}, "
            f"above the ${format_usd(threshold)} its last {len(history)} days allow "
            f"(expected ${format_usd(usd(verdict.expected))}, {method}, k={rules.sigmas})."
        ),
        {
            "day": day.isoformat(),
            "partial": str(partial).lower(),
            "method": "mad" if f.robust else "stddev",
            "spiky": str(verdict.spiky).lower(),
            "sigmas": str(rules.sigmas),
            "history_days": str(len(history)),
            "expected_usd": format_usd(usd(verdict.expected)),
            "threshold_usd": format_usd(threshold),
            "scale_usd": format_usd(usd(verdict.scale)),
            "trend_usd_per_day": format_usd(usd(f.slope)),
            ("median_usd" if f.robust else "mean_usd"): format_usd(usd(f.center)),
            ("mad_usd" if f.robust else "stddev_usd"): format_usd(usd(f.deviation)),
        },
    )


def _shares(day: DayRollup | None) -> dict[str, Decimal]:
    """The parts of a day that can take over its spend: models, tiers, user buckets."""
    if day is None:
        return {}
    return (
        {f"model:{k}": v for k, v in day.by_model.items()}
        | {f"tier:{k}": v for k, v in day.by_tier.items()}
        | {f"user:{k}": v for k, v in day.by_bucket.items()}
    )


def _share_findings(
    tenant_id: str,
    day: date,
    partial: bool,
    days: dict[date, DayRollup],
    history: list[tuple[date, Decimal]],
    rules: AnomalyRules,
) -> list[Finding]:
    item = days.get(day)
    total = item.spent() if item else ZERO
    if total < rules.min_usd:
        return []
    base_total = sum((x for _, x in history), ZERO)
    base: dict[str, Decimal] = {}
    for d, _ in history:
        for dimension, amount in _shares(days.get(d)).items():
            base[dimension] = base.get(dimension, ZERO) + amount
    found = []
    for dimension, amount in sorted(_shares(item).items()):
        share = amount / total
        before = base.get(dimension, ZERO) / base_total if base_total > 0 else ZERO
        if amount < rules.min_usd or share * 100 < rules.share_min_pct:
            continue
        if (share - before) * 100 < rules.share_jump_pct:
            continue
        details = {
            "day": day.isoformat(),
            "partial": str(partial).lower(),
            "share_pct": str(pct(share)),
            "baseline_share_pct": str(pct(before)),
            "history_days": str(len(history)),
            "day_usd": format_usd(total),
        }
        who = dimension
        if dimension.startswith("user:"):
            bucket = dimension.removeprefix("user:")
            last = item.bucket_users.get(bucket, "?") if item else "?"
            details["last_user_id"] = last
            details["user_bucket"] = bucket
            who = f"users of bucket {bucket} (most recently {last})"
        found.append(
            Finding(
                tenant_id,
                day,
                partial,
                dimension,
                "share",
                amount,
                Severity.WARNING,
                (
                    f"spent ${format_usd(amount)} on {who} on {day}"
                    f"{' so far' if partial else ''}: {pct(share)} % of the day's "
                    f"${format_usd(total)}, against {pct(before)} % over its last "
                    f"{len(history)} days."
                ),
                details,
            )
        )
    return found


def examine(
    tenant_id: str, items: Iterable[DayRollup], today: date, rules: AnomalyRules
) -> TenantVerdict:
    """Judge the last complete day and today so far of one tenant from its day rollups."""
    days = by_day(items)
    verdict = TenantVerdict(tenant_id)
    first = first_spend(days)
    for day, partial in ((today - timedelta(days=1), False), (today, True)):
        if first is None or day not in days:
            continue
        start = max(first, day - timedelta(days=rules.baseline_days))
        end = day - timedelta(days=1)
        length = (end - start).days + 1 if start <= end else 0
        if length < rules.min_history_days:
            verdict.insufficient_history.append(
                f"{day}: {length} days of history, {rules.min_history_days} needed"
            )
            continue
        item = days[day]
        total = _spend_finding(
            tenant_id,
            day,
            partial,
            "all",
            series(days, "all", start, end),
            item.spent(),
            rules,
        )
        if total is not None:
            verdict.findings.append(total)
        else:
            # A resource is judged on its own only when the total is not anomalous already
            # (a spike of the only resource a tenant uses is one anomaly, not two).
            for resource in ("llm", "sandbox"):
                finding = _spend_finding(
                    tenant_id,
                    day,
                    partial,
                    f"resource:{resource}",
                    series(days, resource, start, end),
                    item.spent(resource),
                    rules,
                )
                if finding is not None:
                    verdict.findings.append(finding)
        history = series(days, "all", start, end)
        verdict.findings.extend(_share_findings(tenant_id, day, partial, days, history, rules))
    return verdict


def run_anomalies(
    ledger: Ledger,
    book: AlertBook,
    rules: AnomalyRules,
    *,
    time_left: TimeLeft | None = None,
    workers: int = 1,
) -> RunReport:
    """One scheduled run: every tenant with spend today or yesterday, judged and alerted."""
    now = ledger.now()

    def one(tenant: str) -> tuple[TenantVerdict, int]:
        local = local_now(ledger, tenant)
        today = local.date()
        first = today - timedelta(days=rules.baseline_days + 1)
        items = ledger.daily_rollups(
            tenant, datetime.combine(first, dt_time.min, local.tzinfo), local
        )
        verdict = examine(tenant, items, today, rules)
        recorded = book.record([f.draft() for f in verdict.findings]) if verdict.findings else []
        return verdict, len(recorded)

    def tally(report: RunReport, result: tuple[TenantVerdict, int]) -> None:
        v, recorded = result
        report.findings += len(v.findings)
        report.recorded += recorded
        report.insufficient_history += bool(v.insufficient_history)
        report.notes.extend(f"{v.tenant_id}: no verdict for {n}" for n in v.insufficient_history)

    return scheduled_run(
        now,
        lambda: active_tenants(ledger.table, around(now.date(), 1)),
        one,
        tally,
        time_left,
        workers,
    )

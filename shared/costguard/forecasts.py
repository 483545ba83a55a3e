"""Forecasts: each quota's spend at the end of its period, when it breaks, how risky that is.

Every 6 hours (EventBridge), for each tenant with spend in the last `active_days`, each of its
tenant and user quotas with spend in the current period is projected:

- **profile** (the tenant has ≥ 7 complete days of history, tenant-scope quotas): the daily
  model of `stats.fit` over the last 28 complete days (4 whole weeks) — a least-squares trend
  from 14 days on, plus a weekday effect — gives each remaining day's expected spend; the rest
  of today is its expected day × the fraction of the day left. On day 1 of a period this is
  what makes the forecast sane: it does not depend on the period's first hours at all.
- **run rate** (shorter history, and user quotas, whose days are not rolled up per user): the
  period's spend so far over the time it took, counted from the later of the period's start and
  the tenant's first spend, and never less than a day (a quarter of a day for a day quota), so
  $5 in the first minutes of a month projects $5 a day, not $7,000 a day.

Projected = spent now (the counter) + expected rest of the period. The breach day is the
first day whose cumulative expected spend reaches the limit. Risk: `critical` when spent ≥
limit or the breach is less than `critical_hours` away (whole days: breach day − today);
`high` when a breach is predicted before the period ends; `medium` from `medium_pct` % of the
limit projected; `low` otherwise. A platform quota is not forecast (its spend is every
tenant's; its threshold alerts cover it).

The latest forecast per quota is stored (`TENANT#t / FORECAST#<quota_id>`) and served by
`GET /v1/tenants/{t}/forecast`. A rise of the risk above the stored one (same period) to
medium or beyond is one `QuotaBreachForecast` alert, deduplicated per quota, period and level.
Days, "today" and the period's end are the tenant's (its zone): a 23- or 25-hour day's rest is
the fraction of that day's own length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dt_time
from decimal import Decimal
from enum import StrEnum

from costguard.activity import active_tenants, around, by_day, first_spend, local_now, series
from costguard.alerts import AlertBook, AlertDraft, AlertType, Severity
from costguard.ledger import Ledger
from costguard.models import QuotaState
from costguard.money import ZERO, format_usd
from costguard.periods import Period, parse_period_key, period_end, period_start
from costguard.schedules import RunReport, TimeLeft, count_found, scheduled_run
from costguard.settings import Settings
from costguard.stats import fit, pct, usd
from costguard.store.dynamo import LedgerTable
from costguard.store.items import DayRollup, ForecastItem
from costguard.store.keys import FORECAST_PREFIX, forecast_key, tenant_pk
from costguard.store.writes import ItemWrite

PROFILE_DAYS = 28
MIN_PROFILE_DAYS = 7
UTIL = Decimal("0.0001")


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high", "critical").index(self.value)

    @property
    def severity(self) -> Severity:
        return {
            "low": Severity.INFO,
            "medium": Severity.INFO,
            "high": Severity.WARNING,
            "critical": Severity.CRITICAL,
        }[self.value]


@dataclass(frozen=True)
class ForecastRules:
    medium_pct: int = 80
    critical_hours: int = 48
    active_days: int = 7

    @classmethod
    def from_settings(cls, s: Settings) -> ForecastRules:
        return cls(s.forecast_medium_pct, s.forecast_critical_hours, s.forecast_active_days)


@dataclass(frozen=True)
class Projection:
    projected_usd: Decimal
    breach_on: date | None
    method: str
    history_days: int
    daily_usd: Decimal
    """The expected spend of the next whole day (the profile's or the run rate)."""


def _days(start: date, end_exclusive: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end_exclusive - start).days)]


def project(
    state: QuotaState,
    now: datetime,
    rollups: dict[date, DayRollup],
    tz: tzinfo = UTC,
) -> Projection:
    """Project one quota to the end of its period (see the module's docstring); days are
    local days in `tz`, the tenant's zone."""
    period, _ = parse_period_key(state.period_key)
    start = period_start(period, now, tz)
    end = state.resets_at.astimezone(tz)
    today = now.astimezone(tz).date()
    spent, limit = state.spent_usd, state.limit_usd
    midnight, day_start = period_end(Period.DAY, now, tz), period_start(Period.DAY, now, tz)
    length = (midnight - day_start).total_seconds()  # 82,800 or 90,000 across DST
    day_left = Decimal(str((midnight - now).total_seconds() / length))
    rest = _days(today + timedelta(days=1), end.date())
    first = first_spend(rollups)
    history_start = max(first, today - timedelta(days=PROFILE_DAYS)) if first else today
    history_days = max(0, (today - history_start).days)
    expected: dict[date, Decimal]
    if state.scope == "tenant" and history_days >= MIN_PROFILE_DAYS:
        history = series(rollups, state.resource, history_start, today - timedelta(days=1))
        model = fit([(d, float(x)) for d, x in history])
        expected = {d: usd(model.expected(d)) for d in [today, *rest]}
        method = "profile" if history_days >= 14 else "level"
    else:
        since = start
        if state.scope == "tenant" and first is not None:
            since = max(start, period_start(Period.DAY, datetime.combine(first, dt_time.max, tz)))
        floor = timedelta(hours=6) if period is Period.DAY else timedelta(days=1)
        elapsed = max(now - since, floor)
        rate = usd(spent / Decimal(str(elapsed.total_seconds() / 86400)))
        expected = {d: rate for d in [today, *rest]}
        method = "run_rate"
    cumulative = spent
    breach_on = today if spent >= limit else None
    for day, amount in [(today, expected[today] * day_left), *((d, expected[d]) for d in rest)]:
        cumulative += amount
        if breach_on is None and cumulative >= limit:
            breach_on = day
    return Projection(
        usd(cumulative),
        breach_on,
        method,
        history_days,
        expected[rest[0]] if rest else expected[today],
    )


def risk_of(state: QuotaState, p: Projection, today: date, rules: ForecastRules) -> Risk:
    if state.spent_usd >= state.limit_usd:
        return Risk.CRITICAL
    if p.breach_on is not None:
        if (p.breach_on - today).days * 24 < rules.critical_hours:
            return Risk.CRITICAL
        return Risk.HIGH
    if state.limit_usd > 0 and p.projected_usd * 100 >= rules.medium_pct * state.limit_usd:
        return Risk.MEDIUM
    return Risk.LOW


def forecast_item(state: QuotaState, p: Projection, risk: Risk, now: datetime) -> ForecastItem:
    """The stored forecast of a quota (what the API serves), to the second."""
    limit = state.limit_usd
    return ForecastItem(
        quota_id=state.quota_id,
        scope=state.scope,
        resource=state.resource,
        period=state.period,
        period_key=state.period_key,
        resets_at=state.resets_at.astimezone(UTC).replace(microsecond=0),
        computed_at=now.astimezone(UTC).replace(microsecond=0),
        spent_usd=state.spent_usd,
        limit_usd=limit,
        projected_usd=p.projected_usd,
        projected_utilization=(p.projected_usd / limit).quantize(UTIL) if limit > 0 else None,
        daily_usd=p.daily_usd,
        breach_on=p.breach_on,
        risk=risk.value,
        method=p.method,
        history_days=p.history_days,
        user_id=state.user_id or None,
    )


def stored_forecasts(table: LedgerTable, tenant_id: str) -> list[ForecastItem]:
    """The latest forecast of each quota of a tenant (one Query)."""
    items = table.query_all(
        "pk = :p AND begins_with(sk, :f)", {":p": tenant_pk(tenant_id), ":f": FORECAST_PREFIX}
    )
    return [ForecastItem.from_item(item) for item in items]


def breach_draft(tenant_id: str, f: ForecastItem, risk: Risk, previous: Risk) -> AlertDraft:
    spent, limit = f.spent_usd, f.limit_usd
    breach_on = f.breach_on.isoformat() if f.breach_on else ""
    when = (
        f"is spent (${format_usd(spent)} of ${format_usd(limit)})"
        if spent >= limit
        else (
            f"is predicted to be reached on {breach_on}"
            if breach_on
            else "is not predicted to be reached"
        )
    )
    return AlertDraft(
        alert_type=AlertType.FORECAST,
        severity=risk.severity,
        dedup_key=f"forecast#{f.quota_id}#{f.period_key}#{risk.value}",
        tenant_id=tenant_id,
        title=f"{tenant_id}: {f.quota_id} forecast risk {risk.value}",
        message=(
            f"{tenant_id}'s {f.quota_id} limit of ${format_usd(limit)} {when}: "
            f"${format_usd(spent)} spent, ${format_usd(f.projected_usd)} projected by "
            f"the end of the period (risk {previous.value} → {risk.value}, {f.method})."
        ),
        quota_id=f.quota_id,
        period_key=f.period_key,
        spent_usd=spent,
        limit_usd=limit,
        utilization=(spent / limit).quantize(UTIL) if limit > 0 else None,
        resets_at=f.resets_at,
        details={
            "risk": risk.value,
            "previous_risk": previous.value,
            "projected_usd": format_usd(f.projected_usd),
            "projected_utilization_pct": str(pct(f.projected_utilization or 0)),
            "breach_on": breach_on,
            "daily_usd": format_usd(f.daily_usd),
            "method": f.method,
            "history_days": str(f.history_days),
            "scope": f.scope,
        }
        | ({"user_id": f.user_id} if f.user_id else {}),
    )


def forecast_tenant(
    ledger: Ledger, book: AlertBook, tenant_id: str, rules: ForecastRules
) -> tuple[int, int]:
    """Forecast, store and (on a rise of risk) alert each quota of a tenant with spend.

    Returns (forecasts written, alerts recorded). The alert is recorded before the forecast
    is stored, so a run that dies in between alerts on the next run (deduplicated), never not.
    """
    local = local_now(ledger, tenant_id)
    now, today, tz = local.astimezone(UTC), local.date(), local.tzinfo or UTC
    states = [q for q in ledger.quotas(tenant_id) if q.spent_usd > 0]
    if not states:
        return 0, 0
    since = datetime.combine(today - timedelta(days=PROFILE_DAYS), dt_time.min, tz)
    rollups = by_day(ledger.daily_rollups(tenant_id, since, local))
    before = {f.quota_id: f for f in stored_forecasts(ledger.table, tenant_id)}
    written = recorded = 0
    for state in states:
        p = project(state, now, rollups, tz)
        risk = risk_of(state, p, today, rules)
        forecast = forecast_item(state, p, risk, now)
        old = before.get(state.quota_id)
        previous = Risk(old.risk) if old and old.period_key == state.period_key else Risk.LOW
        if risk.rank > previous.rank and risk is not Risk.LOW:
            recorded += len(book.record([breach_draft(tenant_id, forecast, risk, previous)]))
        key = forecast_key(tenant_id, state.quota_id)
        write = ItemWrite(key=key, kind="Put", item=forecast.to_item())
        ledger.table.put(write)
        written += 1
    return written, recorded


def run_forecasts(
    ledger: Ledger,
    book: AlertBook,
    rules: ForecastRules,
    *,
    time_left: TimeLeft | None = None,
    workers: int = 1,
) -> RunReport:
    """One scheduled run over every tenant with spend in the last `active_days` days."""
    now = ledger.now()
    return scheduled_run(
        now,
        lambda: active_tenants(ledger.table, around(now.date(), rules.active_days - 1)),
        lambda t: forecast_tenant(ledger, book, t, rules),
        count_found,
        time_left,
        workers,
    )


def current_forecasts(ledger: Ledger, tenant_id: str) -> list[ForecastItem]:
    """The stored forecasts of a tenant whose period has not ended, by quota id."""
    now = ledger.now()
    live = [f for f in stored_forecasts(ledger.table, tenant_id) if f.resets_at > now]
    return sorted(live, key=lambda f: f.quota_id)


__all__ = ["ZERO", "Risk", "current_forecasts", "forecast_tenant", "project", "run_forecasts"]

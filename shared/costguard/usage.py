"""Usage reads: totals and breakdowns from the day rollups, records where no rollup exists.

Days are the tenant's local days (its time zone): the rollups are keyed by them, and a record
breakdown reads the records between the local midnights."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Literal

from costguard.activity import local_now
from costguard.errors import InvalidRequest
from costguard.ledger.service import Ledger
from costguard.models import Model, UsdOut
from costguard.money import ZERO
from costguard.periods import Period, period_end, period_start
from costguard.store.items import DayRollup

GroupBy = Literal["model", "user", "conversation", "task", "operation", "resource", "day"]
ROLLUP_GROUPS = ("model", "resource", "day")
MAX_DAYS = 366
MAX_RECORD_DAYS = 31
RECORD_SCAN_CAP = 10_000


class UsageGroup(Model):
    key: str
    cost_usd: UsdOut


class UsageReport(Model):
    tenant_id: str
    from_date: date
    to_date: date
    group_by: GroupBy | None = None
    total_usd: UsdOut
    calls: int
    groups: list[UsageGroup]
    truncated: bool = False
    """True when a records-based breakdown hit its scan cap: narrow the range."""


class DailyCost(Model):
    day: date
    cost_usd: UsdOut


class Summary(Model):
    tenant_id: str
    month_to_date_usd: UsdOut
    today_usd: UsdOut
    top_models: list[UsageGroup]
    top_users: list[UsageGroup]
    daily_trend: list[DailyCost]
    truncated: bool = False


def day_start(d: date, tz: tzinfo = UTC) -> datetime:
    """The first instant of the local day `d` in `tz` (a skipped midnight: the first that
    exists)."""
    return period_start(Period.DAY, datetime.combine(d, time(12), tzinfo=tz), tz)


def day_end(d: date, tz: tzinfo = UTC) -> datetime:
    """The last instant (microsecond) of the local day `d` in `tz`."""
    noon = datetime.combine(d, time(12), tzinfo=tz)
    return period_end(Period.DAY, noon, tz) - timedelta(microseconds=1)


def date_range(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    last = last or today
    first = first or last.replace(day=1)
    if first > last:
        raise InvalidRequest("'from' is after 'to'", field="from")
    if (last - first).days >= MAX_DAYS:
        raise InvalidRequest(f"a range may span at most {MAX_DAYS} days", field="from")
    return first, last


def record_window(
    ledger: Ledger, tenant_id: str, first: date | None, last: date | None
) -> tuple[datetime, datetime]:
    """The instants between which the records of local days `first`…`last` were created
    (defaults as `date_range`, in the tenant's zone)."""
    local = local_now(ledger, tenant_id)
    tz = local.tzinfo or UTC
    first, last = date_range(first, last, local.date())
    return day_start(first, tz), day_end(last, tz)


def _sorted(groups: dict[str, Decimal], top: int | None = None) -> list[UsageGroup]:
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    return [UsageGroup(key=k, cost_usd=v) for k, v in ordered[:top]]


def _rollup_groups(days: list[DayRollup], group_by: str) -> dict[str, Decimal]:
    groups: defaultdict[str, Decimal] = defaultdict(Decimal)
    for day in days:
        if group_by == "day":
            groups[day.day.isoformat()] += day.spent()
        elif group_by == "resource":
            for resource in ("llm", "sandbox"):
                if resource in day.usd:
                    groups[resource] += day.usd[resource]
        else:
            for key, value in day.by_model_or_tier().items():
                groups[key] += value
    return dict(groups)


def _record_groups(
    ledger: Ledger, tenant_id: str, first: date, last: date, field: str, tz: tzinfo
) -> tuple[dict[str, Decimal], bool]:
    groups: defaultdict[str, Decimal] = defaultdict(Decimal)
    after: str | None = None
    seen = 0
    while True:
        page, after = ledger.settled_records(
            tenant_id, day_start(first, tz), day_end(last, tz), limit=1000, after=after
        )
        for record in page:
            groups[record.attribute(field) or "-"] += record.charged_usd
        seen += len(page)
        if after is None:
            return dict(groups), False
        if seen >= RECORD_SCAN_CAP:
            return dict(groups), True


def usage_report(
    ledger: Ledger, tenant_id: str, first: date | None, last: date | None, group_by: GroupBy | None
) -> UsageReport:
    """Totals of a date range (the tenant's local days, inclusive) and an optional breakdown."""
    local = local_now(ledger, tenant_id)
    tz = local.tzinfo or UTC
    first, last = date_range(first, last, local.date())
    days = ledger.daily_rollups(tenant_id, day_start(first), day_start(last))
    total = sum((d.spent() for d in days), ZERO)
    calls = sum(d.calls for d in days)
    groups: dict[str, Decimal] = {}
    truncated = False
    if group_by in ROLLUP_GROUPS:
        groups = _rollup_groups(days, group_by)
    elif group_by is not None:
        if (last - first).days >= MAX_RECORD_DAYS:
            raise InvalidRequest(
                f"group_by={group_by} spans at most {MAX_RECORD_DAYS} days", field="from"
            )
        groups, truncated = _record_groups(ledger, tenant_id, first, last, group_by, tz)
    return UsageReport(
        tenant_id=tenant_id,
        from_date=first,
        to_date=last,
        group_by=group_by,
        total_usd=total,
        calls=calls,
        groups=_sorted(groups),
        truncated=truncated,
    )


def summary(ledger: Ledger, tenant_id: str) -> Summary:
    """Month to date, today, top models and users, and the last 30 days (local days)."""
    local = local_now(ledger, tenant_id)
    today, tz = local.date(), local.tzinfo or UTC
    first = min(today.replace(day=1), today - timedelta(days=29))
    days = ledger.daily_rollups(tenant_id, day_start(first), day_start(today))
    by_day = {d.day: d.spent() for d in days}
    month = [d for d in days if d.day >= today.replace(day=1)]
    users, truncated = _record_groups(ledger, tenant_id, today.replace(day=1), today, "user", tz)
    trend = [
        DailyCost(
            day=today - timedelta(days=n),
            cost_usd=by_day.get(today - timedelta(days=n), ZERO),
        )
        for n in range(29, -1, -1)
    ]
    return Summary(
        tenant_id=tenant_id,
        month_to_date_usd=sum((d.spent() for d in month), ZERO),
        today_usd=by_day.get(today, ZERO),
        top_models=_sorted(_rollup_groups(month, "model"), top=5),
        top_users=_sorted({k: v for k, v in users.items() if k != "-"}, top=5),
        daily_trend=trend,
        truncated=truncated,
    )

"""The operator's overview of the platform: what the console's admin view shows.

Built from the same items the schedules read (no scan of the table): the tenants with spend in
the window from the `active` index (A13), each one's day rollups (A10), its quotas with live
figures (A8) and its latest alerts (A14). One request reads at most `max_tenants` tenants;
`truncated` says when there were more (the figures then cover the tenants read).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from pydantic import Field

from costguard.activity import active_tenants
from costguard.alerts import AlertBook, public_alert
from costguard.ledger import Ledger
from costguard.models import Alert, Model, QuotaState, UsdOut
from costguard.money import ZERO
from costguard.store.items import AlertItem
from costguard.usage import DailyCost, UsageGroup, day_end, day_start

NEAR_LIMIT = Decimal("0.8")


class TenantSpend(Model):
    tenant_id: str
    spent_usd: UsdOut
    calls: int
    today_usd: UsdOut


class TenantQuota(QuotaState):
    tenant_id: str


class PlatformOverview(Model):
    from_date: date
    to_date: date
    tenants: list[TenantSpend] = Field(description="tenants with spend in the window, most first")
    total_usd: UsdOut
    daily: list[DailyCost]
    by_model: list[UsageGroup] = Field(description="llm spend per provider/model, sandbox per tier")
    quotas_near_limit: list[TenantQuota] = Field(
        description="quotas at 80 % of their limit or more in their current period, fullest first"
    )
    alerts: list[Alert] = Field(description="the newest alerts of these tenants and the platform")
    truncated: bool = Field(description="more tenants were active than one request reads")


def overview(
    ledger: Ledger, days: int = 30, max_tenants: int = 200, alerts_per_tenant: int = 5
) -> PlatformOverview:
    """Spend by day, model and tenant over the last `days`, quotas near their limit, alerts."""
    today = ledger.now().date()
    first = today - timedelta(days=days - 1)
    tenants = active_tenants(ledger.table, [first + timedelta(days=n) for n in range(days)])
    truncated = len(tenants) > max_tenants
    book = AlertBook(ledger.table, ledger.now)
    per_day: dict[date, Decimal] = defaultdict(lambda: ZERO)
    per_model: dict[str, Decimal] = defaultdict(lambda: ZERO)
    spends: list[TenantSpend] = []
    near: list[TenantQuota] = []
    alerts: list[AlertItem] = book.recent(None, limit=alerts_per_tenant)[0]
    for tenant in tenants[:max_tenants]:
        spent = today_usd = ZERO
        calls = 0
        for rollup in ledger.daily_rollups(tenant, day_start(first), day_end(today)):
            amount = rollup.spent()
            spent += amount
            calls += rollup.calls
            per_day[rollup.day] += amount
            today_usd += amount if rollup.day == today else ZERO
            for key, value in rollup.by_model_or_tier().items():
                per_model[key] += value  # named as GET …/usage?group_by=model names them
        spends.append(
            TenantSpend(tenant_id=tenant, spent_usd=spent, calls=calls, today_usd=today_usd)
        )
        for q in ledger.quotas(tenant):
            if q.utilization >= NEAR_LIMIT:
                near.append(TenantQuota(tenant_id=tenant, **q.model_dump()))
        alerts.extend(book.recent(tenant, limit=alerts_per_tenant)[0])
    spends.sort(key=lambda s: (-s.spent_usd, s.tenant_id))
    near.sort(key=lambda q: (-q.utilization, q.tenant_id, q.quota_id))
    alerts.sort(key=lambda a: a.created_at, reverse=True)
    return PlatformOverview(
        from_date=first,
        to_date=today,
        tenants=spends,
        total_usd=sum((s.spent_usd for s in spends), ZERO),
        daily=[
            DailyCost(day=first + timedelta(days=n), cost_usd=per_day[first + timedelta(days=n)])
            for n in range(days)
        ],
        by_model=[
            UsageGroup(key=k, cost_usd=v)
            for k, v in sorted(per_model.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        quotas_near_limit=near,
        alerts=[Alert.model_validate(public_alert(a)) for a in alerts[:20]],
        truncated=truncated,
    )

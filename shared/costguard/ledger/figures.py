"""A quota's figures (limit, spent, held) read from its counter, and the states shown to
callers; which quota bound a refused spend."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import costguard.ledger.leasing as leasing
import costguard.ledger.slicing as slicing
from costguard.errors import QuotaFigures
from costguard.ledger.terms import Slot, slot_for
from costguard.models import QuotaState
from costguard.money import ZERO
from costguard.periods import period_end, seconds_until_reset, zone
from costguard.quotas import QuotaDefinition
from costguard.store.codec import counter_figure, iso, parse_iso
from costguard.store.dynamo import LedgerTable
from costguard.store.keys import Key


def figures(
    quota: QuotaDefinition, slot: Slot, counter: dict[str, Any] | None, at: datetime
) -> QuotaFigures:
    p = slot.prefix
    counter = counter or {}
    limit = counter_figure(counter, p + "limit", quota.limit_usd)
    return QuotaFigures(
        quota_id=str(quota.quota_id),
        scope=quota.quota_id.scope.value,
        resource=quota.quota_id.resource.value,
        period=quota.quota_id.period.value,
        mode=quota.mode.value,
        limit_usd=limit,
        spent_usd=counter_figure(counter, p + "spent", ZERO),
        held_usd=counter_figure(counter, p + "held", ZERO),
        period_key=slot.key[1],
        resets_at=iso(period_end(quota.quota_id.period, at, zone(slot.tz))),
        retry_after_seconds=seconds_until_reset(quota.quota_id.period, at, zone(slot.tz)),
    )


def state(quota: QuotaDefinition, f: QuotaFigures) -> QuotaState:
    utilization = (f.spent_usd + f.held_usd) / f.limit_usd if f.limit_usd > 0 else Decimal(1)
    return QuotaState(
        quota_id=f.quota_id,
        scope=quota.quota_id.scope.value,
        user_id=quota.quota_id.user_id,
        resource=quota.quota_id.resource.value,
        period=quota.quota_id.period.value,
        mode=quota.mode.value,
        limit_usd=f.limit_usd,
        spent_usd=f.spent_usd,
        reserved_usd=f.held_usd,
        remaining_usd=f.remaining_usd,
        utilization=utilization.quantize(Decimal("0.0001")),
        thresholds=list(quota.thresholds),
        period_key=f.period_key,
        resets_at=parse_iso(f.resets_at),
    )


def read_states(
    table: LedgerTable,
    tenant_id: str,
    quotas: Iterable[QuotaDefinition],
    at: datetime,
    consistent: bool,
    tz: str = "UTC",
) -> list[QuotaState]:
    """The states of `quotas` at `at`, tenant and user quotas in the tenant's zone `tz`."""
    pairs = [(q, slot_for(q.quota_id, tenant_id, at, tz)) for q in quotas]
    keys = slicing.keys_of(pairs, at)  # a sliced quota: every slice, summed (D77)
    counters = table.batch_get(keys, consistent=consistent) if keys else {}
    return [
        state(q, figures(q, s, _counter(table, q, s, counters, at, consistent), at))
        for q, s in pairs
    ]


def _counter(
    table: LedgerTable,
    quota: QuotaDefinition,
    at_slot: Slot,
    counters: dict[Key, dict[str, Any]],
    at: datetime,
    consistent: bool,
) -> dict[str, Any] | None:
    """A quota's counter as one: a sliced quota summed over its slices (D77), a leased one
    over its pool and leases (D78)."""
    if quota.leased:
        return leasing.whole_counter(table, quota, at_slot, counters, consistent)
    if quota.sliced:
        return slicing.whole_counter(quota, at_slot, counters, at)
    return counters.get(at_slot.key)


def binding(
    quotas: list[tuple[QuotaDefinition, Slot]],
    amount: Decimal,
    failed: dict[Key, dict[str, Any] | None],
    at: datetime,
) -> QuotaFigures | None:
    for quota, slot in quotas:
        if slot.key not in failed or slot.lessee is not None:
            continue  # a lease's refusal is decided on the whole (costguard.ledger.leasing)
        counter = failed[slot.key] or {}
        threshold = quota.denial_threshold(amount)
        avail = counter_figure(counter, slot.prefix + "avail", quota.limit_usd)
        if threshold is not None and avail < threshold:
            return figures(quota, slot, counter, at)
    return None

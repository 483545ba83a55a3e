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
from costguard.periods import period_end, seconds_until_reset, zone
from costguard.quotas import QuotaDefinition
from costguard.store.codec import iso, parse_iso
from costguard.store.counters import QuotaFields, quota_fields
from costguard.store.dynamo import LedgerTable
from costguard.store.keys import Key


def figures(quota: QuotaDefinition, slot: Slot, fields: QuotaFields, at: datetime) -> QuotaFigures:
    """A quota's figures from its fields on its counter (`fields_of`), or from its whole (a
    sliced or leased quota's, summed over its items)."""
    return QuotaFigures(
        quota_id=str(quota.quota_id),
        scope=quota.quota_id.scope.value,
        resource=quota.quota_id.resource.value,
        period=quota.quota_id.period.value,
        mode=quota.mode.value,
        limit_usd=fields.limit_or(quota.limit_usd),
        spent_usd=fields.spent,
        held_usd=fields.held,
        period_key=slot.key[1],
        resets_at=iso(period_end(quota.quota_id.period, at, zone(slot.tz))),
        retry_after_seconds=seconds_until_reset(quota.quota_id.period, at, zone(slot.tz)),
    )


def fields_of(slot: Slot, counter: dict[str, Any] | None) -> QuotaFields:
    """The slot's fields on its counter item as read (None: no item)."""
    return quota_fields(counter, slot.prefix)


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
        state(q, figures(q, s, _fields(table, q, s, counters, at, consistent), at))
        for q, s in pairs
    ]


def _fields(
    table: LedgerTable,
    quota: QuotaDefinition,
    at_slot: Slot,
    counters: dict[Key, dict[str, Any]],
    at: datetime,
    consistent: bool,
) -> QuotaFields:
    """A quota's fields as one: a sliced quota's summed over its slices (D77), a leased
    one's over its pool and leases (D78)."""
    if quota.leased:
        return leasing.whole_fields(table, quota, at_slot, counters, consistent)
    if quota.sliced:
        return slicing.whole_fields(quota, at_slot, counters, at)
    # The figures shown: a broken `avail` refuses spending on the item, not reading it
    return quota_fields(counters.get(at_slot.key), at_slot.prefix, with_avail=False)


def binding(
    quotas: list[tuple[QuotaDefinition, Slot]],
    amount: Decimal,
    failed: dict[Key, dict[str, Any] | None],
    at: datetime,
) -> QuotaFigures | None:
    for quota, slot in quotas:
        if slot.key not in failed or slot.lessee is not None:
            continue  # a lease's refusal is decided on the whole (costguard.ledger.leasing)
        fields = fields_of(slot, failed[slot.key])
        threshold = quota.denial_threshold(amount)
        if threshold is not None and fields.avail_or(quota.limit_usd) < threshold:
            return figures(quota, slot, fields, at)
    return None

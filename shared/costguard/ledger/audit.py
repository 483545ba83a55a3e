"""Audit: the counters must equal the records that should sum to them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import costguard.ledger.escrow as escrow
import costguard.ledger.in_item as in_item
import costguard.ledger.leasing as leasing
import costguard.ledger.slicing as slicing
from costguard.errors import LedgerCorrupted, ReservationNotFound
from costguard.ledger.terms import ReservationRef, slot_for
from costguard.money import ZERO
from costguard.quotas import QuotaDefinition
from costguard.store.counters import GROUPS, HELD, HOLD_COUNT, SPENT, CounterItem
from costguard.store.dynamo import LedgerTable
from costguard.store.items import CostRecordItem, policy_of
from costguard.store.keys import PLATFORM_PK, POLICY_SK, Key, records_pk, tenant_pk


def reconcile(table: LedgerTable, tenant_id: str, at: datetime | None = None) -> list[str]:
    """Differences between the counters and the records that should sum to them.

    Spent must equal the sum of settled records and held the sum of live holds, for each
    counter field any record touches; with `at`, the grants of each sliced quota's period at
    `at` must sum to its limit (`grants`). An empty list means the ledger is consistent.
    """
    return _records(table, tenant_id) + (
        grants(table, tenant_id, at) + leases(table, at) if at else []
    )


def leases(table: LedgerTable, at: datetime) -> list[str]:
    """Conservation of the leased platform quotas (D78): pool + Σ lease grants = limit."""
    policy = policy_of(table.get((PLATFORM_PK, POLICY_SK), consistent=True))
    return [p for q in policy.quotas if q.leased for p in leasing.conserved(table, q, at)]


def _records(table: LedgerTable, tenant_id: str) -> list[str]:
    expected: dict[tuple[Key, str, str], Decimal] = {}
    lanes = policy_of(table.get((tenant_pk(tenant_id), POLICY_SK), consistent=True)).lanes
    items = [
        item
        for lane in range(lanes)  # every lane a record may be in (D98)
        for item in table.query_all("pk = :p", {":p": records_pk(tenant_id, lane)}, consistent=True)
    ]
    seen: set[str] = set()
    for item in items:
        if item.get("pk") != records_pk(tenant_id, _lane(item)):
            return [f"record {item.get('sk')} is in lane {item.get('pk')}, its terms say another"]
        if str(item.get("sk")) in seen:
            return [f"record {item.get('sk')} is in two lanes"]
        seen.add(str(item.get("sk")))
        try:
            record = CostRecordItem.from_item(item)
            ref = ReservationRef.parse(record.reservation_id)
        except ReservationNotFound:
            return [f"record {item.get('sk')} has malformed terms"]
        except LedgerCorrupted:
            return [f"record {item.get('sk')} is malformed"]
        for slot in ref.slots(tenant_id):
            if record.settled:
                k = (slot.key, slot.prefix, SPENT)
                expected[k] = expected.get(k, ZERO) + record.charged_usd
            elif record.status == "held":
                k = (slot.key, slot.prefix, HELD)
                expected[k] = expected.get(k, ZERO) + (record.estimate_usd or ZERO)
    keys = {k for k, _, _ in expected} | in_item.listed(table, tenant_id)
    found = table.batch_get(sorted(keys), consistent=True) if keys else {}
    counters = {key: CounterItem(item) for key, item in found.items()}
    problems = []
    for key, counter in counters.items():  # holds in the counter item (D72)
        count = 0
        for ref, _ in in_item.holds(found[key]):
            count += 1
            for slot in ref.slots(tenant_id):
                k = (slot.key, slot.prefix, HELD)
                expected[k] = expected.get(k, ZERO) + ref.estimate_usd
        try:
            hn: int | str = counter.hold_count
        except LedgerCorrupted:
            hn = "malformed"
        if hn != count:
            problems.append(f"{key} {HOLD_COUNT} {hn} != {count}")
    for (key, prefix, name), want in sorted(expected.items()):
        try:
            group = counters.get(key, CounterItem(None)).fields(prefix)
        except LedgerCorrupted:
            problems.append(f"{key} {prefix}*: a figure is not a number")
            continue
        have = group.spent if name == SPENT else group.held
        if have != want:
            problems.append(f"{key} {prefix}{name}: counter {have} != records {want}")
    for key, counter in counters.items():
        for p in GROUPS:
            if not counter.has(p):
                continue
            try:
                f = counter.fields(p)
            except LedgerCorrupted:
                problems.append(f"{key} {p}*: a figure is not a number")
                continue
            assert f.limit is not None
            computed = f.limit - f.spent - f.held
            if f.avail != computed:
                problems.append(f"{key} {p}avail {f.avail} != {computed}")
    return problems


def _lane(item: dict[str, object]) -> int:
    """The lane a record's terms put it in (malformed terms: lane 0, reported below)."""
    try:
        return ReservationRef.parse(f"{item.get('sk')}~{item.get('plan')}").lane
    except ReservationNotFound:
        return 0


def grants(table: LedgerTable, tenant_id: str, at: datetime) -> list[str]:
    """Conservation of the tenant's sliced quotas (D74): in the period at `at`, the grants of
    a quota's slices (virtual ones at their share) sum to its limit, and every stored slice
    has avail = grant − spent − held. Read on a snapshot of the policy and the slices, so a
    borrow or a reshard running meanwhile cannot show a grant twice or not at all."""
    policy_key = (tenant_pk(tenant_id), POLICY_SK)
    policy = policy_of(table.get(policy_key, consistent=True))
    problems: list[str] = []
    for quota in policy.quotas:
        if quota.sliced:
            problems += _conserved(table, tenant_id, quota, at, policy.zone_at(at))
    return problems


def _conserved(
    table: LedgerTable, tenant_id: str, quota: QuotaDefinition, at: datetime, tz: str
) -> list[str]:
    qid = quota.quota_id
    policy_key = (tenant_pk(tenant_id), POLICY_SK)
    for _ in range(4):
        slot = slot_for(qid, tenant_id, at, tz)
        found = table.transact_get([policy_key, *slicing.keys(quota, slot.base)])
        policy = policy_of(found.get(policy_key))
        fresh = next((q for q in policy.quotas if q.quota_id == qid), None)
        if fresh is None:
            return []  # deleted meanwhile
        if (fresh.span, fresh.slices, policy.zone_at(at)) != (quota.span, quota.slices, tz):
            quota, tz = fresh, policy.zone_at(at)  # resharded meanwhile: read it again
            continue
        states = escrow.states_of(found, slot.base, slot.prefix, slicing.layout(fresh, slot.base))
        where = f"{qid} {slot.base[1]}"
        problems = []
        total = escrow.whole(states).limit
        if total != fresh.limit_usd:
            problems.append(f"{where}: slice grants sum to {total} != limit {fresh.limit_usd}")
        for s in states:
            if s.stored and s.avail != s.grant - s.spent - s.held:
                problems.append(
                    f"{where} slice {s.index}: avail {s.avail} != {s.grant - s.spent - s.held}"
                )
        return problems
    return [f"{qid}: resharded on every read, not checked"]

"""Audit: the counters must equal the records that should sum to them."""

from __future__ import annotations

from decimal import Decimal

import costguard.ledger.in_item as in_item
from costguard.errors import ReservationNotFound
from costguard.ledger.plan import ReservationRef, field_prefix
from costguard.money import ZERO
from costguard.quotas import Resource
from costguard.store.dynamo import LedgerTable
from costguard.store.keys import Key, records_pk


def reconcile(table: LedgerTable, tenant_id: str) -> list[str]:
    """Differences between the counters and the records that should sum to them.

    Spent must equal the sum of settled records and held the sum of live holds, for each
    counter field any record touches. An empty list means the ledger is consistent.
    """
    expected: dict[tuple[Key, str], Decimal] = {}
    for item in table.query_all("pk = :p", {":p": records_pk(tenant_id)}, consistent=True):
        try:
            ref = ReservationRef.parse(f"{item['sk']}~{item['plan']}")
        except ReservationNotFound:
            return [f"record {item.get('sk')} has a malformed plan"]
        status = item["status"]
        for slot in ref.slots(tenant_id):
            if status in ("committed", "recorded"):
                k = (slot.key, slot.prefix + "spent")
                expected[k] = expected.get(k, ZERO) + item["cost_usd"]
            elif status == "held":
                k = (slot.key, slot.prefix + "held")
                expected[k] = expected.get(k, ZERO) + item["estimate_usd"]
    keys = {k for k, _ in expected} | in_item.listed(table, tenant_id)
    counters = table.batch_get(sorted(keys), consistent=True) if keys else {}
    problems = []
    for key, counter in counters.items():  # holds in the counter item (D72)
        count = 0
        for ref, _ in in_item.holds(counter):
            count += 1
            for slot in ref.slots(tenant_id):
                k = (slot.key, slot.prefix + "held")
                expected[k] = expected.get(k, ZERO) + ref.estimate_usd
        if counter.get(in_item.HOLD_COUNT, 0) != count:
            problems.append(
                f"{key} {in_item.HOLD_COUNT} {counter.get(in_item.HOLD_COUNT)} != {count}"
            )
    for (key, attr), want in sorted(expected.items()):
        have = counters.get(key, {}).get(attr, ZERO)
        if have != want:
            problems.append(f"{key} {attr}: counter {have} != records {want}")
    for key, counter in counters.items():
        for field in ("llm", "sandbox", "all"):
            p = field_prefix(Resource(field))
            if p + "limit" in counter:
                try:
                    computed = (
                        counter[p + "limit"]
                        - counter.get(p + "spent", ZERO)
                        - counter.get(p + "held", ZERO)
                    )
                except TypeError:
                    problems.append(f"{key} {p}*: a figure is not a number")
                    continue
                if counter.get(p + "avail") != computed:
                    problems.append(f"{key} {p}avail {counter.get(p + 'avail')} != {computed}")
    return problems

"""Audit: the counters must equal the records that should sum to them."""

from __future__ import annotations

from decimal import Decimal

from costguard.errors import LedgerCorrupted, ReservationNotFound
from costguard.ledger.plan import ReservationRef, field_prefix
from costguard.money import ZERO
from costguard.quotas import Resource
from costguard.store.dynamo import LedgerTable
from costguard.store.items import CostRecordItem
from costguard.store.keys import Key, records_pk


def reconcile(table: LedgerTable, tenant_id: str) -> list[str]:
    """Differences between the counters and the records that should sum to them.

    Spent must equal the sum of settled records and held the sum of live holds, for each
    counter field any record touches. An empty list means the ledger is consistent.
    """
    expected: dict[tuple[Key, str], Decimal] = {}
    for item in table.query_all("pk = :p", {":p": records_pk(tenant_id)}, consistent=True):
        try:
            record = CostRecordItem.from_item(item)
            ref = ReservationRef.parse(record.reservation_id)
        except ReservationNotFound:
            return [f"record {item.get('sk')} has a malformed plan"]
        except LedgerCorrupted:
            return [f"record {item.get('sk')} is malformed"]
        for slot in ref.slots(tenant_id):
            if record.settled:
                k = (slot.key, slot.prefix + "spent")
                expected[k] = expected.get(k, ZERO) + record.charged_usd
            elif record.status == "held":
                k = (slot.key, slot.prefix + "held")
                expected[k] = expected.get(k, ZERO) + (record.estimate_usd or ZERO)
    keys = {k for k, _ in expected}
    counters = table.batch_get(sorted(keys), consistent=True) if keys else {}
    problems = []
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

"""The ledger: reserve, commit, release, expire, record, check, pause, quotas, prices.

`Ledger` is the facade every function uses; the work is done by capability (see
docs/decisions.md, D56):
- spend engine: `spend.py` (reserve, record, check: one transaction loop), `settle.py`
  (commit, release), `expiry.py`, `spend_writes.py` (the item writes of a spend);
- `policies.py` (policies and their cache), `figures.py` (quota figures and states),
  `idempotency.py` (markers), `records.py` (the read side), `admin.py` (tenants and quotas),
  `audit.py` (reconcile), `costguard.pricing.store` (prices);
- the table itself (keys, items, the DynamoDB edge) is `costguard.store`.
"""

from __future__ import annotations

from datetime import datetime

from costguard.ledger.admin import SeedResult, TenantAdmin
from costguard.ledger.audit import reconcile
from costguard.ledger.core import LedgerBusy
from costguard.ledger.records import (
    any_day_between,
    api_record,
    daily_rollups,
    lanes_of,
    records,
    settled_records,
)
from costguard.ledger.settle import ReleaseResult, Settling
from costguard.models import CostRecord
from costguard.pricing import Price, PriceBook
from costguard.store.items import CostRecordItem, DayRollup

__all__ = ["Ledger", "LedgerBusy", "ReleaseResult", "SeedResult"]


class Ledger(Settling, TenantAdmin):
    """The domain entry point every function uses. Thread-safe; keep one per process."""

    def price_book(self) -> PriceBook:
        """The shipped catalog overlaid with prices stored in the table, cached briefly."""
        return self.prices.book()

    def put_price(self, price: Price) -> None:
        """Add a price from its effective date on; earlier prices stay for history."""
        self.prices.put(price)

    def cost_record(self, record: CostRecordItem) -> CostRecord:
        """A settled record as the API shows it."""
        return api_record(record)

    def lanes(self, tenant_id: str) -> int:
        """The tenant's record lanes (D98), read from its policy (consistently, 1 RRU):
        every reader of records and day rollups covers them all."""
        return lanes_of(self.table, tenant_id)

    def daily_rollups(self, tenant_id: str, first: datetime, last: datetime) -> list[DayRollup]:
        """The tenant's day rollups from `first` to `last` (inclusive days), summed over
        its lanes."""
        return daily_rollups(self.table, tenant_id, first, last, self.lanes(tenant_id))

    def any_day_between(self, tenant_id: str, first: datetime, last: datetime) -> bool:
        """Whether the tenant has a day item (spend or a day counter) in these days."""
        return any_day_between(self.table, tenant_id, first, last, self.lanes(tenant_id))

    def records(self, tenant_id: str, first: datetime, last: datetime) -> list[CostRecordItem]:
        """Every record (held, settled or recorded) created between `first` and `last`."""
        return records(self.table, tenant_id, first, last, self.lanes(tenant_id))

    def settled_records(
        self,
        tenant_id: str,
        first: datetime,
        last: datetime,
        *,
        limit: int,
        after: str | None = None,
        user_id: str | None = None,
        conversation_id: str | None = None,
        max_pages: int = 8,
    ) -> tuple[list[CostRecordItem], str | None]:
        """Up to `limit` committed or recorded cost records, oldest first, after record `after`
        (see `records.settled_records`)."""
        return settled_records(
            self.table,
            tenant_id,
            first,
            last,
            limit=limit,
            after=after,
            user_id=user_id,
            conversation_id=conversation_id,
            max_pages=max_pages,
            lanes=self.lanes(tenant_id),
        )

    def reconcile(self, tenant_id: str) -> list[str]:
        """Differences between the counters and the records that should sum to them, and
        between each sliced quota's limit and its slices' grants now; an empty list means
        the ledger is consistent."""
        return reconcile(self.table, tenant_id, self.now())

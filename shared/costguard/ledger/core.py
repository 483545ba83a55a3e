"""What every part of the ledger shares: the table, the settings, the clock, the prices.

The ledger is built in layers, each a class that sees only the layers below it:
`LedgerCore` → `PolicyCache` (policies.py) → `Expiry` (expiry.py) → `Spending` (spend.py) →
`Settling` (settle.py); `TenantAdmin` (admin.py) sits on `PolicyCache`; `Ledger` (service.py)
is the facade that joins them and delegates the read side, audit and prices.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from costguard.errors import LedgerUnavailable
from costguard.pricing.store import PriceStore
from costguard.quotas import Policy
from costguard.settings import Enforcement, Settings
from costguard.store.codec import utc_now
from costguard.store.dynamo import LedgerTable

Clock = Callable[[], datetime]
GARBAGE_AFTER = timedelta(days=7)
OPEN_PREFIX = "open~"
"""Reservations granted unguarded while the ledger was unreachable (fail_mode=open)."""
POLICY_ATTEMPTS = 4
UNKNOWN_USAGE = "usage_unknown"
"""The commit hash of a `usage_unknown` commit (its retries are the same commit)."""


class LedgerCore:
    """The state every layer of the ledger reads. Thread-safe; keep one per process."""

    def __init__(
        self,
        table: LedgerTable,
        settings: Settings,
        clock: Clock = utc_now,
        policy_cache_size: int = 10_000,
    ) -> None:
        self.table = table
        self.settings = settings
        self._clock = clock
        self._policies: OrderedDict[str, Policy] = OrderedDict()
        self._policy_cache_size = policy_cache_size
        self._lock = threading.Lock()
        self._platform_read_at = float("-inf")
        """When this process last read the platform policy (time.monotonic(), D71)."""
        self.prices = PriceStore(table, settings, self.now)

    def now(self) -> datetime:
        at = self._clock()
        if at.tzinfo is None:
            raise ValueError("the clock must return aware UTC datetimes")
        return at.astimezone(UTC)

    def _enforcing(self) -> bool:
        return self.settings.enforcement is Enforcement.ENFORCE


class LedgerBusy(LedgerUnavailable):
    """The ledger kept changing under a write for longer than its retry budget."""

    def __init__(self) -> None:
        super().__init__("the ledger kept changing; try again", retry_after_seconds=1)

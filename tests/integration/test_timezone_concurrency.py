"""A zone change under concurrent reserves, on DynamoDB Local (moto is not safe under threads).

Invariant: across the instant a tenant's new zone takes effect, with reserves from 16 threads
and settings writes moving the policy version under them, the day's counter admits exactly its
limit (the switch opens no fresh budget), and every hold sits on the counter its id names.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger, LedgerTable
from costguard.ledger.core import LedgerBusy
from costguard.ledger.terms import ReservationRef
from costguard.models import TenantSettings
from costguard.settings import Settings

from tests.helpers import actual, estimate, quota_state, set_quota, usd

T = "acme"
SWITCH = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class TickingClock:
    """Every reading is 0.1 ms after the previous one: the run walks across the switch."""

    at: datetime
    tick: timedelta = timedelta(microseconds=100)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> datetime:
        with self.lock:
            self.at += self.tick
            return self.at


def test_reserves_across_a_zone_switch_admit_exactly_the_days_limit(local_client: object) -> None:
    name = local_client.table_name  # type: ignore[attr-defined]
    settings = Settings(table_name=name)
    clock = TickingClock(datetime(2026, 11, 30, 20, 0, tzinfo=UTC))
    ledger = Ledger(LedgerTable(local_client, name, settings), settings, clock=clock)
    # Given a UTC tenant with $6 of its $10 day spent, moving to Los Angeles at UTC midnight
    # (16:00 on 30 November there: the same day goes on)
    ledger.create_tenant(T, "Acme")
    set_quota(ledger, T, "tenant:llm:day", "10")
    ledger.record_usage(T, actual("6"))
    la = TenantSettings(timezone="America/Los_Angeles")
    assert ledger.put_tenant_settings(T, la).timezone_effective_at == SWITCH
    clock.at = SWITCH - timedelta(milliseconds=20)

    # When 16 threads try 400 reserves of $0.10 while the settings are rewritten 10 times
    def attempt(_: int) -> str | None:
        while True:
            try:
                return ledger.reserve(T, estimate("0.10"), with_figures=False).reservation_id
            except QuotaExceeded:
                return None
            except LedgerBusy:
                continue  # the policy moved under it 5 times: a 503, which a caller retries

    def rewrite(i: int) -> None:
        body = la.model_copy(update={"overrun": "reject" if i % 2 else "record"})
        while True:
            try:
                ledger.put_tenant_settings(T, body)
                return
            except LedgerBusy:
                continue

    with ThreadPoolExecutor(16) as pool:
        writes = [pool.submit(rewrite, i) for i in range(10)]
        held = [r for r in pool.map(attempt, range(400)) if r is not None]
        for w in writes:
            w.result()

    # Then exactly $4 more was admitted, the run went well past the switch, and the books balance
    assert clock.at > SWITCH + timedelta(milliseconds=20)
    assert len(held) == 40
    assert ledger.tenant_settings(T).timezone_in_effect == "America/Los_Angeles"
    day = quota_state(ledger, T, "tenant:llm:day")
    assert (day.period_key, day.spent_usd, day.reserved_usd) == (
        "DAY#2026-11-30",
        usd("6"),
        usd("4"),
    )
    zones = {ReservationRef.parse(r).tz for r in held}
    assert zones <= {"UTC", "America/Los_Angeles"}
    assert ledger.reconcile(T) == []

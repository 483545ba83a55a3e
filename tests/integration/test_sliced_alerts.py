"""Threshold alerts on a sliced quota, on DynamoDB Local's real stream (decisions D77).

A quota of $100 in 8 slices; 16 threads reserve and commit $1 at a time (borrowing between
slices as they run dry) until it refuses, while a poller hands every record the stream's
filters pass to the real handler twice, in two concurrent invocations (a batch retried while
another invocation still works on it). Invariants: each of 50 / 80 / 100 % is recorded exactly
once, on the whole (limit $100, spent at or past the threshold: never on a slice's share, and
never on a grant a borrow in flight showed twice or not at all), and notified once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from costguard.alerts import AlertBook, Publisher, StreamAlerts
from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.topology import LEDGER_STREAM

from functions.alerts import handler as alerts_handler
from tests.conftest import Clock
from tests.helpers import actual, estimate, quota_state, usd
from tests.integration.test_alerts_stream import CONTEXT, Recorder, stream_of
from tests.support.own_emulator import ddb_local  # noqa: F401 (the module's own emulator)

pytestmark = pytest.mark.ddblocal
T = "acme"
Q = "tenant:llm:month"


def test_concurrent_spend_on_8_slices_alerts_each_threshold_once_on_the_whole(
    local_ledger: Ledger,
    ddb_local: str,  # noqa: F811 (the module's own emulator)
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    # Given $100 in 8 slices alerting at 50, 80 and 100 %
    local_ledger.put_quota(
        T, QuotaDefinition(QuotaId.parse(Q), Decimal(100), thresholds=(50, 80, 100), slices=8)
    )
    stream = stream_of(local_ledger, ddb_local)
    stream.take()
    recorder = Recorder()
    book = AlertBook(local_ledger.table, clock)
    # Two containers of the alerts function, each with its own caches
    containers = [
        StreamAlerts(local_ledger.table, book, Publisher(recorder, recorder)) for _ in range(2)
    ]
    failures: list[dict[str, Any]] = []
    slices_seen: set[str] = set()

    def deliver(records: list[dict[str, Any]]) -> None:
        """Every record the event source's filters pass, in batches, each batch to both
        containers at once."""
        passed = [r for r in records if LEDGER_STREAM.accepts(r)]
        slices_seen.update(pk for r in passed if "#S" in (pk := r["dynamodb"]["Keys"]["pk"]["S"]))
        size = LEDGER_STREAM.batch_size
        batches = [passed[i : i + size] for i in range(0, len(passed), size)]
        with ThreadPoolExecutor(2) as pool:
            answers = pool.map(
                lambda job: alerts_handler.handler({"Records": job[1]}, CONTEXT, watch=job[0]),
                [(watch, batch) for batch in batches for watch in containers],
            )
            failures.extend(a for a in answers if a["batchItemFailures"])

    spending = threading.Event()
    spending.set()

    def poll() -> None:
        while spending.is_set():
            deliver(stream.take())
        while records := stream.take():  # the rest, and the alert INSERTs it causes
            deliver(records)

    def spend(_: int) -> bool:
        try:
            held = local_ledger.reserve(T, estimate("1"), with_figures=False)
        except QuotaExceeded:
            return False
        local_ledger.commit(T, held.reservation_id, actual("1"))
        return True

    # When 16 threads spend $1 at a time until the quota refuses, the poller running along
    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            admitted = sum(pool.map(spend, range(160)))
    finally:
        spending.clear()
        poller.join(300)
    assert admitted == 100
    assert failures == []
    assert len(slices_seen) >= 4  # the spend ran on many slices, their records delivered

    # Then each threshold is recorded once, on the whole
    alerts, _ = book.recent(T, limit=100)
    assert sorted(a.threshold_pct or 0 for a in alerts) == [50, 80, 100]
    for a in alerts:
        assert (a.quota_id, a.limit_usd) == (Q, usd("100"))
        assert a.spent_usd is not None and a.threshold_pct is not None
        assert a.spent_usd >= a.threshold_pct  # $1 a unit: never early
    # and notified once per recording (a threshold reached alone notifies, grouped ones once)
    notified = [a for a in alerts if a.notify]
    assert all(a.delivery in ("sent", "grouped") for a in alerts)
    assert len(recorder.messages) == len(notified) == len(recorder.events)
    q = quota_state(local_ledger, T, Q)
    assert (q.limit_usd, q.spent_usd, q.reserved_usd) == (usd("100"), usd("100"), usd("0"))
    assert local_ledger.reconcile(T) == []

"""Threshold alerts on DynamoDB Local's real stream: exactly once under concurrent handlers.

The records are read from DynamoDB Local through the Streams API and handed to the real
handler in Lambda's shape; several handlers run at once on overlapping batches, as happens
when Lambda retries a batch while another invocation still works on it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from costguard.alerts import AlertBook, Publisher, StreamAlerts
from costguard.ledger import Ledger

from functions.alerts import handler as alerts_handler
from local.streams import StreamsApi
from tests.conftest import Clock
from tests.helpers import actual, set_quota

pytestmark = pytest.mark.ddblocal
T = "acme"
CONTEXT = SimpleNamespace(
    function_name="alerts",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:1:function:alerts",
    aws_request_id="req-1",
)


@dataclass
class Recorder:
    """Topic and EventSink at once: counts what would reach subscribers (thread-safe)."""

    messages: list[tuple[str, Mapping[str, str]]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, subject: str, message: str, attributes: Mapping[str, str]) -> None:
        with self.lock:
            self.messages.append((subject, dict(attributes)))

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        with self.lock:
            self.events.append(detail_type)


def stream_of(ledger: Ledger, ddb_local: str) -> StreamsApi:
    streams = boto3.client("dynamodbstreams", endpoint_url=ddb_local, region_name="us-east-1")
    return StreamsApi(ledger.table.client, streams, ledger.table.name)


def test_concurrent_handlers_on_overlapping_batches_record_and_notify_once(
    local_ledger: Ledger, ddb_local: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    # Given 20 costs of $1 against a $20 quota: utilization climbs 5 % at a time to 100 %
    set_quota(local_ledger, T, "tenant:llm:month", "20")
    stream = stream_of(local_ledger, ddb_local)
    stream.take()
    for _ in range(20):
        local_ledger.record_usage(T, actual("1"), enforce=False)
    records = stream.take()
    assert len(records) >= 20

    recorder = Recorder()
    book = AlertBook(local_ledger.table, clock)
    watch = StreamAlerts(local_ledger.table, book, Publisher(recorder, recorder))

    def invoke(batch: list[dict[str, Any]]) -> PartialItemFailureResponse:
        """One Lambda container: its own batch processor (the handler's is per process)."""
        return process_partial_response(
            event={"Records": batch},
            record_handler=lambda record: alerts_handler.record_handler(record, watch),
            processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
        )

    # When 8 invocations run at once on overlapping slices (every record in several of them)
    n = len(records)
    slices = [records[i * n // 8 : min(n, (i + 3) * n // 8)] for i in range(8)] + [records] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(invoke, slices))
    assert all(a == {"batchItemFailures": []} for a in answers)
    # and the alert INSERTs they wrote are delivered by 4 concurrent invocations each
    inserts = stream.take()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(invoke, [inserts] * 4))

    # Then each threshold is recorded once and notified once
    alerts, _ = book.recent(T, limit=100)
    assert sorted(a.threshold_pct or 0 for a in alerts) == [50, 80, 90, 100]
    assert all(a.delivery in ("sent", "grouped") for a in alerts)
    severities = sorted(attributes["severity"] for _, attributes in recorder.messages)
    notified = [a for a in alerts if a.notify]
    assert len(recorder.messages) == len(notified) == len(recorder.events)
    assert severities == sorted(str(a.severity) for a in notified)
    assert "critical" in severities


def test_a_batch_replayed_three_times_on_the_real_stream_notifies_once(
    local_ledger: Ledger, ddb_local: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    set_quota(local_ledger, T, "tenant:llm:month", "10")
    stream = stream_of(local_ledger, ddb_local)
    local_ledger.record_usage(T, actual("4"), enforce=False)
    local_ledger.record_usage(T, actual("5.5"), enforce=False)  # 40 % → 95 %
    batch = stream.take()
    recorder = Recorder()
    watch = StreamAlerts(
        local_ledger.table, AlertBook(local_ledger.table, clock), Publisher(recorder, recorder)
    )

    for _ in range(3):
        alerts_handler.handler({"Records": batch}, CONTEXT, watch=watch)
    inserts = stream.take()
    for _ in range(3):
        alerts_handler.handler({"Records": inserts}, CONTEXT, watch=watch)

    assert [attributes["severity"] for _, attributes in recorder.messages] == ["warning"]
    assert recorder.events == ["QuotaThresholdCrossed"]

"""Issue 20: with the collector layer configured and nothing listening on 4318, every API call
took 7-8 s (the exporter retried within its 10 s default deadline, and the SDK's force_flush
ignores its timeout). The export is bounded now; bench/collector_down.py measures the cost."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from costguard import telemetry
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.collector_down import run_case

HANG = 2000.0
"""Milliseconds: far above the bound (0.5 s), far below what a stall costs (7 s)."""


class Stuck(SpanExporter):
    """A collector that never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.release.wait(30)
        return SpanExportResult.SUCCESS


def test_flush_waits_at_most_its_bound_then_not_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = Stuck()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "_configured", provider)
    monkeypatch.setattr(telemetry, "_slow_until", 0.0)
    try:
        provider.get_tracer("t").start_span("request").end()
        started = time.monotonic()
        assert telemetry.flush(timeout=0.2) is False  # the spans did not go out in time…
        first = time.monotonic() - started
        assert first < 1.0  # …and the request went on after the bound
        provider.get_tracer("t").start_span("next request").end()
        started = time.monotonic()
        assert telemetry.flush(timeout=0.2) is False
        assert time.monotonic() - started < 0.1  # a stuck flush is not waited for again
    finally:
        exporter.release.set()
        provider.shutdown()
    assert exporter.calls >= 1


@pytest.mark.parametrize("case", ["refused", "hung"])
def test_a_collector_that_is_down_does_not_stall_requests(case: str) -> None:
    times = run_case(case, requests=4)
    assert max(times) < HANG, times


def test_the_exporter_is_configured_with_a_short_deadline() -> None:
    assert telemetry.EXPORT_TIMEOUT_SECONDS <= 0.5
    assert telemetry.FLUSH_TIMEOUT_SECONDS <= 1.0

"""With tracing off, the request path builds no span and no attribute (issue 22, D68)."""

from __future__ import annotations

from typing import Any

import pytest
from costguard import telemetry
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider


@pytest.fixture
def tracing_off(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """No SDK provider and the API's proxy tracer (as in a process without COSTGUARD_TRACES);
    every attribute set on any span is recorded."""
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    monkeypatch.setattr(telemetry, "tracer", trace.ProxyTracer("costguard"))
    seen: list[Any] = []
    monkeypatch.setattr(trace.NonRecordingSpan, "set_attribute", lambda self, *a: seen.append(a))
    return seen


def test_a_span_with_tracing_off_is_the_invalid_span_and_sets_nothing(
    tracing_off: list[Any],
) -> None:
    # Given tracing off
    assert not telemetry.tracing()

    # When the domain opens a span with attributes and annotates it
    with telemetry.span("ledger.reserve", tenant_id="acme", amount_usd="0.01") as span:
        telemetry.annotate(quota_ids=["tenant:llm:month"])
        telemetry.set_attributes(span, {"outcome": "held"})

    # Then no span was started and no attribute was set anywhere
    assert span is trace.INVALID_SPAN
    assert tracing_off == []


def test_an_error_still_leaves_a_span_with_tracing_off(tracing_off: list[Any]) -> None:
    with pytest.raises(ValueError, match="boom"), telemetry.span("x", tenant_id="acme"):
        raise ValueError("boom")
    assert tracing_off == []


def test_an_sdk_tracer_or_provider_turns_tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # An SDK tracer put in `telemetry.tracer` (the benchmarks) records...
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    monkeypatch.setattr(telemetry, "tracer", TracerProvider().get_tracer("costguard"))
    assert telemetry.tracing()
    with telemetry.span("x", tenant_id="acme") as span:
        assert span.is_recording()
    # ...and so does an SDK provider installed globally (configure_tracing, the tests)
    monkeypatch.setattr(telemetry, "tracer", trace.ProxyTracer("costguard"))
    monkeypatch.setattr(trace, "get_tracer_provider", TracerProvider)
    assert telemetry.tracing()

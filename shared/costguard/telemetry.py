"""Traces, metrics and failure stages: the one place the domain and the handlers report through.

Traces are OpenTelemetry spans (`tracer`). Without a configured provider they cost next to
nothing (the API's no-op tracer); `configure_tracing` installs the SDK with the exporter the
deployment chose: `console` (local), `otlp` (OTLP/HTTP: to the ADOT collector extension in
Lambda, which forwards to X-Ray, or to any local collector), or `none`.

Metrics are CloudWatch EMF through Powertools Metrics. Every metric here goes into the
invocation's one EMF document (dimension: `service`) flushed by the handler's `log_metrics`,
except the rare dimensional ones (denials by scope and resource, failures by stage), which are
emitted on their own line. No tenant id is ever a dimension: a dimension per tenant would be a
custom metric per tenant (cost and cardinality); tenants are in the logs and the spans.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode

from costguard.errors import CostguardError, Stage

NAMESPACE = "costguard"
EXPORT_TIMEOUT_SECONDS = 0.5
"""The OTLP exporter's whole budget for one batch, retries included (its deadline): the
collector extension is on localhost, so a healthy export takes about a millisecond; with the
collector down a connection is refused at once, and a hung one costs at most this."""
FLUSH_TIMEOUT_SECONDS = 1.0
"""The most an invocation waits for its spans at the end (`flush`): past it they are exported
in the background, or dropped. The SDK's own force_flush ignores its timeout (it exported for
the exporter's default 10 s deadline: 7-8 s per request with nothing listening on 4318)."""
_request: ContextVar[str | None] = ContextVar("costguard_request", default=None)
tracer = trace.get_tracer("costguard")
metrics = Metrics(namespace=NAMESPACE)
"""Shares its metric set with the handler's Metrics (Powertools keeps one per namespace)."""
_service: ContextVar[str | None] = ContextVar("costguard_service", default=None)


class FunctionMetrics(Metrics):
    """A handler's Metrics; while its `log_metrics` handler runs, `service_name()` is its
    service (several handlers share one process under `make run` and in tests)."""

    def __init__(self, service: str) -> None:
        super().__init__(namespace=NAMESPACE, service=service)
        self.service = service

    def log_metrics(
        self,
        lambda_handler: Any = None,
        capture_cold_start_metric: bool = False,
        raise_on_empty_metrics: bool = False,
        default_dimensions: dict[str, str] | None = None,
        **kwargs: dict[str, Any],
    ) -> Callable[..., Any]:
        options: dict[str, Any] = {
            "capture_cold_start_metric": capture_cold_start_metric,
            "raise_on_empty_metrics": raise_on_empty_metrics,
            "default_dimensions": default_dimensions,
            **kwargs,
        }
        if lambda_handler is None:
            return functools.partial(self.log_metrics, **options)
        flushing = super().log_metrics(lambda_handler, **options)

        @functools.wraps(lambda_handler)
        def handler(*args: Any, **kwargs: Any) -> Any:
            token = _service.set(self.service)
            try:
                return flushing(*args, **kwargs)
            finally:
                _service.reset(token)

        return handler


def function_metrics(default_service: str) -> FunctionMetrics:
    """A handler's Metrics. Its `service` dimension is the function's POWERTOOLS_SERVICE_NAME
    (Powertools' own default; the template sets it from `costguard.services`), else (outside
    Lambda) `default_service`, the same constant. Dimensional metrics carry the same."""
    return FunctionMetrics(os.environ.get("POWERTOOLS_SERVICE_NAME") or default_service)


def service_name() -> str:
    """The service of the running handler: POWERTOOLS_SERVICE_NAME in Lambda."""
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or _service.get() or "costguard"


def stage_of(error: BaseException, default: Stage = Stage.UNKNOWN) -> Stage:
    """The stage an error belongs to: a domain error's from the catalog (costguard.errors),
    anything else `default`."""
    if isinstance(error, CostguardError):
        return error.problem.stage
    return default


def failed(stage: Stage, error: BaseException | None = None, span: Span | None = None) -> Stage:
    """Attribute a failure: on the span (attribute, status, exception event) and in metrics."""
    span = span or trace.get_current_span()
    span.set_attribute("costguard.failure.stage", stage.value)
    if error is not None:
        span.set_attribute("costguard.failure.error", type(error).__name__)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    dimensional("Failures", MetricUnit.Count, 1, stage=stage.value)
    return stage


def dimensional(name: str, unit: MetricUnit, value: float, **dimensions: str) -> None:
    """One metric on its own EMF line, with its own (low-cardinality) dimensions."""
    if _metrics_off():
        return
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=service_name())
        for key, text in dimensions.items():
            metric.add_dimension(name=key, value=text)


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """A metric in the invocation's EMF document (dimension: service)."""
    if not _metrics_off():
        metrics.add_metric(name=name, unit=unit, value=value)


def usd(name: str, amount: Decimal) -> None:
    """Money as a metric: CloudWatch takes doubles; the ledger keeps the exact figure."""
    if not _metrics_off():
        metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=float(amount))


def metrics_on() -> bool:
    """Whether metrics are collected: callers with several, or with figures to compute for
    them, ask once (issue 22: off, the request path computes none)."""
    return not _metrics_off()


def _metrics_off() -> bool:
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true")


def tracing() -> bool:
    """Whether spans are recorded: an SDK provider installed (`configure_tracing`, a test) or
    an SDK tracer put in `tracer` (the benchmarks). Off, a span costs a context switch and its
    attributes nothing: the request path builds none (issue 22)."""
    return not (
        isinstance(tracer, trace.ProxyTracer)
        and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    )


_NO_SPAN = nullcontext(INVALID_SPAN)
"""What `span` is with tracing off: one shared context manager that does nothing."""


def span(name: str, **attributes: Any) -> AbstractContextManager[Span]:
    """A child span of the current one; a domain error ends it with its stage attributed."""
    if not tracing():
        return _NO_SPAN
    return _span(name, attributes)


@contextmanager
def _span(name: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
    with tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False
    ) as current:
        set_attributes(current, attributes)
        try:
            yield current
        except Exception as error:
            stage = stage_of(error)
            current.set_attribute("costguard.outcome", "error")
            if stage is not Stage.QUOTA:  # a refusal is an answer, not a failure of the span
                current.set_attribute("costguard.failure.stage", stage.value)
                current.set_status(Status(StatusCode.ERROR, type(error).__name__))
            else:
                current.set_attribute("costguard.outcome", "refused")
            raise


@contextmanager
def request(request_id: str | None) -> Iterator[None]:
    """The API request being served: ledger writes carry its id to the stream (correlation)."""
    token = _request.set(request_id)
    try:
        yield
    finally:
        _request.reset(token)


def request_id() -> str | None:
    return _request.get()


def annotate(**attributes: Any) -> None:
    """Attributes on the current span (a no-op without one)."""
    set_attributes(trace.get_current_span(), attributes)


def set_attributes(target: Span, attributes: Mapping[str, Any]) -> None:
    """Attributes under `costguard.`; money and other decimals as exact strings."""
    if not target.is_recording():
        return
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, list | tuple):
            value = [str(v) for v in value]
        target.set_attribute(key if "." in key else f"costguard.{key}", value)


# --------------------------------------------------------------------------- configuration
_configured: Any = None


def configure_tracing(exporter: str | None = None) -> Any:
    """Install the SDK once per process: `console`, `otlp` or `none` (COSTGUARD_TRACES)."""
    global _configured
    choice = (exporter or os.environ.get("COSTGUARD_TRACES", "none")).lower()
    if _configured is not None or choice in ("", "none", "off"):
        return _configured
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    kwargs: dict[str, Any] = {"resource": Resource.create({"service.name": service_name()})}
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator

        kwargs["id_generator"] = AwsXRayIdGenerator()  # X-Ray wants time-prefixed trace ids
    provider = TracerProvider(**kwargs)
    if choice == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Bounded: one deadline for the export and its retries (the SDK's default is 10 s,
        # with backoff), so an absent or hung collector never holds a request for long.
        otlp = OTLPSpanExporter(timeout=EXPORT_TIMEOUT_SECONDS)
        provider.add_span_processor(
            BatchSpanProcessor(otlp, export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)
        )
    else:
        raise ValueError(f"COSTGUARD_TRACES must be none, console or otlp, not {choice!r}")
    trace.set_tracer_provider(provider)
    _configured = provider
    return provider


_flushing = threading.Lock()
SLOW_FLUSH_SECONDS = 0.1
"""A flush slower than this means the collector is struggling: for `SLOW_BACKOFF_SECONDS`
requests do not wait for their spans (they are still exported, in the background)."""
SLOW_BACKOFF_SECONDS = 60.0
_slow_until = 0.0


def flush(timeout: float = FLUSH_TIMEOUT_SECONDS) -> bool:
    """End of an invocation: export its spans before Lambda freezes the process, waiting at
    most `timeout` seconds, and not at all for a minute after a slow flush (a hung collector
    then costs one request a minute at most). True when they went out while we waited. A flush
    still running from an earlier invocation is not joined by another: the request goes on."""
    global _slow_until
    if _configured is None:
        return True
    if not _flushing.acquire(blocking=False):
        return False
    done = threading.Event()
    provider = _configured

    def run() -> None:
        global _slow_until
        started = time.monotonic()
        try:
            provider.force_flush()
        finally:
            took = time.monotonic() - started
            _slow_until = (
                time.monotonic() + SLOW_BACKOFF_SECONDS if took > SLOW_FLUSH_SECONDS else 0.0
            )
            _flushing.release()
            done.set()

    waiting = 0.0 if time.monotonic() < _slow_until else timeout
    threading.Thread(target=run, name="costguard-flush", daemon=True).start()
    finished = done.wait(waiting)
    if not finished and waiting:
        _slow_until = time.monotonic() + SLOW_BACKOFF_SECONDS
    return finished


def lambda_parent(event: Mapping[str, Any] | None = None) -> Any:
    """The X-Ray trace of this Lambda invocation as the parent context of our spans."""
    header = os.environ.get("_X_AMZN_TRACE_ID")
    if not header or _configured is None:
        return None
    from opentelemetry.propagators.aws import AwsXRayPropagator

    return AwsXRayPropagator().extract({"X-Amzn-Trace-Id": header})


@contextmanager
def invocation(name: str) -> Iterator[Span]:
    """One Lambda invocation's root span, a child of its X-Ray trace; its spans are exported
    (bounded by `flush`) before Lambda may freeze the process, whatever the outcome."""
    if not tracing():  # nothing to start, nothing to export (D68)
        yield INVALID_SPAN
        return
    try:
        with tracer.start_as_current_span(name, context=lambda_parent()) as current:
            yield current
    finally:
        flush()


__all__ = [
    "FunctionMetrics",
    "MetricUnit",
    "Stage",
    "annotate",
    "configure_tracing",
    "count",
    "dimensional",
    "failed",
    "flush",
    "function_metrics",
    "invocation",
    "metrics",
    "request",
    "request_id",
    "service_name",
    "set_attributes",
    "span",
    "stage_of",
    "tracer",
    "usd",
]

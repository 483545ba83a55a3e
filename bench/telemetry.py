"""`python -m bench telemetry`: what tracing and metrics cost on a warm reserve, on vs off.

The real API handler reserves on moto in-process, in interleaved rounds: with telemetry off
(the no-op tracer, EMF disabled) and on (the OpenTelemetry SDK recording every span into a
processor that drops them — the export itself happens off the request path in Lambda — and
EMF documents written to /dev/null). Same process, same store, same run.
Writes bench/results/telemetry.{json,md}.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROUNDS = 300
WARMUP = 50


def main(argv: list[str]) -> None:
    rounds = int(argv[0]) if argv else ROUNDS
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "costguard"
    import boto3
    from costguard import telemetry
    from costguard.auth import ApiKeys, fingerprint
    from costguard.ledger import Ledger, LedgerTable
    from costguard.settings import Settings
    from costguard.store.schema import create_table
    from moto import mock_aws
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import NoOpTracer

    from functions.api import handler
    from functions.api.deps import get_keys, get_ledger
    from local import moto_fixes
    from tests.api.conftest import http_event

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    moto_fixes.apply()
    key = "cg-admin-bench"
    context = SimpleNamespace(
        function_name="api",
        memory_limit_in_mb=512,
        aws_request_id="bench",
        invoked_function_arn="arn:aws:lambda:us-east-1:1:function:api",
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    tracers = {"off": NoOpTracer(), "on": provider.get_tracer("costguard")}
    samples: dict[str, list[float]] = {"off": [], "on": []}
    with mock_aws():
        client = boto3.client("dynamodb")
        create_table(client, "costguard-bench", stream=False)
        settings = Settings(table_name="costguard-bench")
        ledger = Ledger(LedgerTable(client, settings.table_name, settings), settings)
        keys = ApiKeys(ledger.table, frozenset({fingerprint(key)}), cache_seconds=300)
        handler.app.dependency_overrides[get_ledger] = lambda: ledger
        handler.app.dependency_overrides[get_keys] = lambda: keys
        body = {"resource": "llm", "estimated_cost_usd": "0.000001"}
        event = http_event("POST", "/v1/tenants/bench/reservations", body, key)
        sink = io.StringIO()
        for i in range(WARMUP + rounds):
            for mode in ("off", "on") if i % 2 else ("on", "off"):
                telemetry.tracer = tracers[mode]
                os.environ["POWERTOOLS_METRICS_DISABLED"] = "true" if mode == "off" else "false"
                with contextlib.redirect_stdout(sink):
                    started = time.perf_counter()
                    answer = handler.lambda_handler(event, context)  # type: ignore[arg-type]
                    elapsed = time.perf_counter() - started
                assert answer["statusCode"] == 201, answer
                if i >= WARMUP:
                    samples[mode].append(elapsed * 1000)
                sink.seek(0)
                sink.truncate()
    summary = {
        mode: {
            "mean_ms": round(statistics.fmean(values), 3),
            "p50_ms": round(statistics.median(values), 3),
            "p95_ms": round(sorted(values)[int(len(values) * 0.95)], 3),
        }
        for mode, values in samples.items()
    }
    overhead = {
        "mean_ms": round(summary["on"]["mean_ms"] - summary["off"]["mean_ms"], 3),
        "p50_ms": round(summary["on"]["p50_ms"] - summary["off"]["p50_ms"], 3),
        "ratio_p50": round(summary["on"]["p50_ms"] / summary["off"]["p50_ms"], 3),
    }
    result = {"rounds": rounds, "store": "moto in-process", **summary, "overhead": overhead}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "telemetry.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = (
        "# Telemetry overhead on a warm reserve (API handler, moto in-process)\n\n"
        f"{rounds} interleaved rounds each; `python -m bench telemetry`.\n\n"
        "| telemetry | mean ms | p50 ms | p95 ms |\n|---|---|---|---|\n"
        + "".join(
            f"| {mode} | {s['mean_ms']} | {s['p50_ms']} | {s['p95_ms']} |\n"
            for mode, s in summary.items()
        )
        + f"\nOverhead: {overhead['mean_ms']} ms mean, {overhead['p50_ms']} ms at p50 "
        f"(×{overhead['ratio_p50']}).\n"
    )
    (RESULTS / "telemetry.md").write_text(markdown)
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main(sys.argv[1:])

"""`python -m bench collector-down`: what tracing adds to a request when the collector is down.

The API handler (GET /v1/health: no AWS call, so the span export is all that differs) run in a
fresh process per case with COSTGUARD_TRACES=otlp, its exporter pointed at 127.0.0.1:
- `off`: tracing off (the baseline);
- `up`: a collector that answers 200 at once;
- `refused`: nothing listening (the ADOT layer configured but its collector not started);
- `hung`: a socket that accepts and never answers (a collector stuck).
Each request's wall time, end of handler included (the flush of its spans). Before issue 20
the `refused` case took 7-8 s per request (the exporter's retries within its 10 s default).
Writes bench/results/collector_down.{json,md}.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 30

CHILD = """
import json, sys, time
from types import SimpleNamespace
from functions.api import handler
from tests.api.conftest import http_event
context = SimpleNamespace(function_name="api", memory_limit_in_mb=512, aws_request_id="b",
                          invoked_function_arn="arn:aws:lambda:us-east-1:1:function:api")
times = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    answer = handler.lambda_handler(http_event("GET", "/v1/health"), context)
    times.append((time.perf_counter() - started) * 1000)
    assert answer["statusCode"] == 200, answer
print(json.dumps(times))
"""


class _Collector(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_case(case: str, requests: int = REQUESTS) -> list[float]:
    """Per-request milliseconds of `requests` health calls in a new process, for one case."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "AWS_DEFAULT_REGION": "us-east-1",
        "OTEL_SDK_DISABLED": "false",
    }
    cleanup: list[Any] = []
    if case == "off":
        env["COSTGUARD_TRACES"] = "none"
    else:
        env["COSTGUARD_TRACES"] = "otlp"
        if case == "up":
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            port = server.server_address[1]
            cleanup.append(server.shutdown)
        elif case == "hung":
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)  # accepted by the kernel, never read nor answered
            port = listener.getsockname()[1]
            cleanup.append(listener.close)
        elif case == "refused":
            port = _free_port()
        else:
            raise ValueError(case)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(requests)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    finally:
        for close in cleanup:
            close()
    times: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "requests": len(times),
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main(argv: list[str]) -> None:
    requests = int(argv[0]) if argv else REQUESTS
    from costguard.telemetry import EXPORT_TIMEOUT_SECONDS, FLUSH_TIMEOUT_SECONDS

    cases = {case: _summary(run_case(case, requests)) for case in ("off", "up", "refused", "hung")}
    base = cases["off"]["median_ms"]
    for summary in cases.values():
        summary["added_median_ms"] = round(summary["median_ms"] - base, 2)
    result = {
        "export_timeout_s": EXPORT_TIMEOUT_SECONDS,
        "flush_timeout_s": FLUSH_TIMEOUT_SECONDS,
        "cases": cases,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "collector_down.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Tracing with the collector down (`python -m bench collector-down`)",
        "",
        f"GET /v1/health through the API handler, {requests} requests per case, each in a new "
        f"process; exporter deadline {EXPORT_TIMEOUT_SECONDS} s, flush bound "
        f"{FLUSH_TIMEOUT_SECONDS} s. Wall time per request, span flush included.",
        "",
        "| case | median ms | p90 ms | max ms | added (median) ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for case, s in cases.items():
        lines.append(
            f"| {case} | {s['median_ms']} | {s['p90_ms']} | {s['max_ms']} | "
            f"{s['added_median_ms']} |"
        )
    (RESULTS / "collector_down.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

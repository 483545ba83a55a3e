"""The Slack notifier against a webhook server on 127.0.0.1 that records what it gets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from costguard.slack import SlackRefused, SlackUnavailable, SlackWebhook, message, utilization_bar

from functions.slack import handler as slack_handler

EVENT = json.loads((Path(__file__).parents[2] / "events/slack/sns-threshold.json").read_text())
CONTEXT = SimpleNamespace(
    function_name="slack",
    memory_limit_in_mb=128,
    invoked_function_arn="arn:aws:lambda:us-east-1:1:function:slack",
    aws_request_id="req-1",
)


@dataclass
class Webhook:
    """Answers with the scripted statuses in turn (then 200) and records every payload."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.received.append(json.loads(self.rfile.read(length)))
            status, headers = state.script.pop(0) if state.script else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"rate_limited")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def poster(url: str, waits: list[float], attempts: int = 4) -> SlackWebhook:
    return SlackWebhook(url, attempts=attempts, max_wait_seconds=5, sleep=waits.append)


def run(event: dict[str, Any], slack: SlackWebhook) -> dict[str, Any]:
    answer: dict[str, Any] = slack_handler.handler(event, CONTEXT, slack=slack)
    return answer


def test_the_alert_arrives_as_a_readable_block_kit_message(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    assert run(EVENT, poster(webhook.url, [])) == {"posted": 1}

    (payload,) = webhook.received
    assert payload["text"] == "[warning] acme: tenant:llm:month passed 90%"
    header, summary, figures, bar, context = payload["blocks"]
    assert header["text"]["text"] == "acme: tenant:llm:month passed 90%"
    assert summary["text"]["text"].startswith(":warning: acme has spent $95.000000")
    assert [f["text"] for f in figures["fields"]] == [
        "*Tenant*\nacme",
        "*Quota*\n`tenant:llm:month`",
        "*Spent / limit*\n$95.000000 / $100.000000",
        "*Severity*\nwarning",
        "*Period resets*\n2026-12-01 00:00 UTC",
        "*Thresholds crossed*\n50%, 80%, 90%",
    ]
    assert bar["text"]["text"] == "`███████████████████░ 95%`"
    assert "QuotaThresholdCrossed" in context["elements"][0]["text"]


def test_slack_429_is_retried_after_its_retry_after(webhook: Webhook) -> None:
    webhook.script = [(429, {"Retry-After": "2"}), (429, {"Retry-After": "1"})]
    waits: list[float] = []

    attempts = poster(webhook.url, waits).post({"text": "hi"})

    assert attempts == 3
    assert waits == [2.0, 1.0]
    assert len(webhook.received) == 3


def test_slack_500s_are_retried_then_surfaced(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    webhook.script = [(500, {})] * 3
    waits: list[float] = []

    with pytest.raises(SlackUnavailable, match="after 3 attempts: HTTP 500"):
        run(EVENT, poster(webhook.url, waits, attempts=3))

    assert len(webhook.received) == 3
    assert len(waits) == 2 and all(0 < w <= 5 for w in waits)


def test_a_retry_after_beyond_the_invocation_budget_is_surfaced_at_once(webhook: Webhook) -> None:
    webhook.script = [(429, {"Retry-After": "600"})]

    with pytest.raises(SlackUnavailable, match="after 1 attempts: HTTP 429"):
        poster(webhook.url, []).post({"text": "hi"})


def test_a_webhook_slack_refuses_is_not_retried(webhook: Webhook) -> None:
    webhook.script = [(404, {})]

    with pytest.raises(SlackRefused, match="HTTP 404"):
        poster(webhook.url, []).post({"text": "hi"})
    assert len(webhook.received) == 1


def test_connection_refused_is_retried_then_surfaced() -> None:
    waits: list[float] = []
    with pytest.raises(SlackUnavailable, match="URLError"):
        poster("http://127.0.0.1:9/hook", waits, attempts=2).post({"text": "hi"})
    assert len(waits) == 1


def test_platform_and_anomaly_alerts_render_without_quota_figures() -> None:
    payload = message(
        {
            "severity": "critical",
            "title": "acme: spend anomaly",
            "message": "today $90 vs a baseline of $10 ± $2",
            "alert_type": "anomaly",
            "event": "CostAnomalyDetected",
        }
    )
    texts = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert texts == ["*Tenant*\nplatform (all tenants)", "*Quota*\n`—`", "*Severity*\ncritical"]
    assert len(payload["blocks"]) == 4  # no utilization bar


@pytest.mark.parametrize(
    ("utilization", "bar"),
    [("0", "░" * 20 + " 0%"), ("0.5", "█" * 10 + "░" * 10 + " 50%"), ("1.7", "█" * 20 + " 170%")],
)
def test_the_bar_is_capped_and_says_how_far_beyond(utilization: str, bar: str) -> None:
    assert utilization_bar(utilization) == bar

"""Traces, EMF metrics, failure stages and secrets, captured from real invocations.

Spans go to the SDK's in-memory exporter; EMF documents are the JSON lines Powertools prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from costguard.alerts import AlertBook, Publisher, StreamAlerts
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from functions.alerts import handler as alerts_handler
from local.streams import MotoStream
from tests.api.conftest import ADMIN_KEY, Api
from tests.conftest import Clock

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[None]:
    """One SDK provider for the process (OpenTelemetry allows setting it once)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        sdk = TracerProvider()
        sdk.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(sdk)
    elif EXPORTER not in [p.span_exporter for p in current._active_span_processor._span_processors]:  # type: ignore[attr-defined]
        current.add_span_processor(SimpleSpanProcessor(EXPORTER))
    yield


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def tree(finished: tuple[ReadableSpan, ...], root: str) -> list[tuple[int, str]]:
    """(depth, name) in start order, from the last span called `root`."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    for s in finished:
        by_parent.setdefault(s.parent.span_id if s.parent else None, []).append(s)
    [top] = [s for s in finished if s.name == root][-1:]
    out: list[tuple[int, str]] = []

    def walk(node: ReadableSpan, depth: int) -> None:
        out.append((depth, node.name))
        for child in sorted(
            by_parent.get(node.context.span_id, []), key=lambda c: c.start_time or 0
        ):
            walk(child, depth + 1)

    walk(top, 0)
    return out


def attrs(finished: tuple[ReadableSpan, ...], name: str) -> dict[str, Any]:
    [found] = [s for s in finished if s.name == name][-1:]
    return dict(found.attributes or {})


def emf(output: str) -> list[dict[str, Any]]:
    docs = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def test_a_reserve_is_request_then_authorize_then_ledger_then_pricing_and_dynamodb(
    api: Api, spans: InMemorySpanExporter
) -> None:
    api.call("PUT", "/v1/tenants/acme/quotas/tenant:llm:month", {"limit_usd": "10"})
    spans.clear()

    answer = api.call(
        "POST", "/v1/tenants/acme/reservations", {"resource": "llm", "estimated_cost_usd": "0.5"}
    )

    assert answer.status == 201
    finished = spans.get_finished_spans()
    assert tree(finished, "api.request") == [
        (0, "api.request"),
        (1, "authorize"),
        (1, "ledger.reserve"),
        (2, "pricing"),
        (3, "dynamodb.Query"),  # the stored prices: first use in this process (cached 60 s)
        (2, "dynamodb.BatchGetItem"),  # the policies: first reserve of this process
        (2, "dynamodb.UpdateItem"),  # the one-write reserve (D70): no counter yet, it fails…
        (2, "dynamodb.GetItem"),  # …on an absent item (read to tell)…
        (2, "dynamodb.TransactWriteItems"),  # …so the period's first reserve is a transaction
        (2, "dynamodb.BatchGetItem"),  # the figures of the answer
    ]
    request = attrs(finished, "api.request")
    assert request["http.route"] == "/v1/tenants/<tenant_id>/reservations"
    assert request["http.response.status_code"] == 201
    assert request["costguard.tenant_id"] == "acme"
    reserve = attrs(finished, "ledger.reserve")
    assert reserve["costguard.quota_ids"] == ("tenant:llm:month",)
    assert reserve["costguard.amount_usd"] == "0.5"
    assert reserve["costguard.reserved_usd"] == "0.5"
    assert reserve["costguard.outcome"] == "held"
    write = attrs(finished, "dynamodb.TransactWriteItems")
    assert write["db.system"] == "dynamodb"

    # Then every reserve of the period: one UpdateItem, whose new image is the figures
    spans.clear()
    again = api.call(
        "POST", "/v1/tenants/acme/reservations", {"resource": "llm", "estimated_cost_usd": "0.5"}
    )
    assert (again.status, again.json["quotas"][0]["reserved_usd"]) == (201, "1.000000")
    assert tree(spans.get_finished_spans(), "api.request") == [
        (0, "api.request"),
        (1, "authorize"),
        (1, "ledger.reserve"),
        (2, "pricing"),
        (2, "dynamodb.UpdateItem"),
    ]


def test_a_commit_is_ledger_commit_then_pricing_then_the_ledger_write(
    api: Api, spans: InMemorySpanExporter
) -> None:
    reserved = api.call(
        "POST", "/v1/tenants/acme/reservations", {"resource": "llm", "estimated_cost_usd": "0.5"}
    ).json
    spans.clear()

    answer = api.call(
        "POST",
        f"/v1/tenants/acme/reservations/{reserved['reservation_id']}/commit",
        {"resource": "llm", "cost_usd": "0.25"},
    )

    assert answer.status == 200, answer.text
    finished = spans.get_finished_spans()
    assert tree(finished, "ledger.commit") == [
        (0, "ledger.commit"),
        (1, "pricing"),
        (1, "dynamodb.TransactWriteItems"),
    ]
    commit = attrs(finished, "ledger.commit")
    assert commit["costguard.cost_usd"] == "0.25"
    assert commit["costguard.outcome"] == "committed"
    assert commit["costguard.tenant_id"] == "acme"


def test_a_stream_batch_is_records_then_detection_then_the_alert_record_then_publish(
    api: Api, spans: InMemorySpanExporter, clock: Clock
) -> None:
    stream = MotoStream(api.ledger.table.name)
    api.call("PUT", "/v1/tenants/acme/quotas/tenant:llm:month", {"limit_usd": "1"})
    stream.drain()
    stream.take()
    api.call("POST", "/v1/tenants/acme/usage", {"resource": "llm", "cost_usd": "0.9"})
    stream.drain()
    sent: list[str] = []

    class Bus:
        def put(self, detail_type: str, detail: Any) -> None:
            sent.append(detail_type)

    book = AlertBook(api.ledger.table, clock)
    watch = StreamAlerts(api.ledger.table, book, Publisher(None, Bus()))
    context = type(
        "C",
        (),
        {
            "function_name": "alerts",
            "memory_limit_in_mb": 256,
            "invoked_function_arn": "arn",
            "aws_request_id": "r",
        },
    )()
    spans.clear()
    alerts_handler.handler({"Records": stream.take()}, context, watch=watch)
    stream.drain()
    alerts_handler.handler({"Records": stream.take()}, context, watch=watch)

    finished = spans.get_finished_spans()
    batches = [s for s in finished if s.name == "stream.batch"]
    assert len(batches) == 2
    first = tree(finished[: finished.index(batches[0]) + 1], "stream.batch")
    names = [n for _, n in first]
    assert (1, "stream.record") in first
    assert (2, "alerts.detect") in first
    assert (2, "alerts.record") in first
    assert (3, "dynamodb.TransactWriteItems") in first
    record = attrs(finished, "alerts.record")
    assert record["costguard.quota_id"] == "tenant:llm:month"
    assert record["costguard.thresholds"] == ("50", "80", "90")
    assert record["costguard.spent_usd"] == "0.9"
    assert record["costguard.recorded"] == 3
    assert "alerts.deliver" not in names
    second = tree(finished, "stream.batch")
    assert (2, "alerts.deliver") in second
    assert (3, "alerts.publish") in second
    assert sent == ["QuotaThresholdCrossed"]
    # the API request that crossed the threshold is named on the stream's spans and alert
    crossing = [
        s
        for s in finished
        if s.name == "stream.record"
        and s.attributes
        and s.attributes.get("costguard.outcome") == "recorded 3"
    ]
    assert crossing[0].attributes["costguard.request_id"] == "req-1"  # type: ignore[index]
    assert {a.caused_by_request for a in book.recent("acme")[0]} == {"req-1"}


def test_a_denial_emits_its_emf_metric_with_scope_and_resource_and_its_stage(
    api: Api, spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.call("PUT", "/v1/tenants/acme/quotas/tenant:sandbox:day", {"limit_usd": "1"})
    capsys.readouterr()

    answer = api.call(
        "POST", "/v1/tenants/acme/reservations", {"resource": "sandbox", "estimated_cost_usd": "2"}
    )

    assert answer.status == 429
    docs = emf(capsys.readouterr().out)
    [denial] = [d for d in docs if "Denials" in d]
    assert denial["Denials"] == [1.0]
    [metric_def] = denial["_aws"]["CloudWatchMetrics"]
    assert metric_def["Namespace"] == "costguard"
    assert metric_def["Metrics"] == [{"Name": "Denials", "Unit": "Count"}]
    assert sorted(metric_def["Dimensions"][0]) == ["resource", "scope", "service"]
    assert (denial["scope"], denial["resource"]) == ("tenant", "sandbox")
    [failure] = [d for d in docs if "Failures" in d]
    assert failure["stage"] == "quota"
    assert "tenant_id" not in json.dumps([d["_aws"] for d in docs])  # never a dimension
    request = attrs(spans.get_finished_spans(), "api.request")
    assert request["costguard.failure.stage"] == "quota"


def test_a_commit_emits_commits_and_spend_in_the_invocation_document(
    api: Api, spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    reserved = api.call(
        "POST", "/v1/tenants/acme/reservations", {"resource": "llm", "estimated_cost_usd": "0.5"}
    ).json
    capsys.readouterr()

    api.call(
        "POST",
        f"/v1/tenants/acme/reservations/{reserved['reservation_id']}/commit",
        {"resource": "llm", "cost_usd": "0.4"},
    )

    [doc] = [d for d in emf(capsys.readouterr().out) if "Commits" in d]
    [metric_def] = doc["_aws"]["CloudWatchMetrics"]
    assert metric_def["Dimensions"] == [["service"]]
    assert doc["service"] == "costguard-api"
    units = {m["Name"]: m.get("Unit") for m in metric_def["Metrics"]}
    assert units["Commits"] == "Count"
    assert units["SpendUsd"] == "None"
    assert units["EstimateErrorPct"] == "Percent"
    assert units["LedgerMs.TransactWriteItems"] == "Milliseconds"
    assert doc["Commits"] == [1.0]
    assert doc["SpendUsd"] == [0.4]
    assert doc["EstimateErrorPct"] == [pytest.approx(-20.0)]


@pytest.mark.parametrize(
    ("method", "path", "body", "key", "stage", "status"),
    [
        ("GET", "/v1/tenants/acme/quotas", None, None, "auth", 401),
        ("GET", "/v1/tenants/acme/quotas", None, "cg.0000000000000000.nope", "auth", 401),
        (
            "POST",
            "/v1/tenants/acme/reservations",
            {"resource": "nope"},
            ADMIN_KEY,
            "validation",
            422,
        ),
        (
            "POST",
            "/v1/tenants/acme/reservations",
            {"resource": "llm", "model": "no-such-model", "input_tokens": 1},
            ADMIN_KEY,
            "pricing",
            422,
        ),
    ],
)
def test_every_refusal_carries_its_stage_on_the_span_and_in_the_failures_metric(
    api: Api,
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
    body: Any,
    key: str | None,
    stage: str,
    status: int,
) -> None:
    capsys.readouterr()
    answer = api.call(method, path, body, key=key)
    assert answer.status == status
    assert attrs(spans.get_finished_spans(), "api.request")["costguard.failure.stage"] == stage
    output = capsys.readouterr().out
    assert [d["stage"] for d in emf(output) if "Failures" in d] == [stage]
    assert f'"stage":"{stage}"' in output.replace(" ", "")  # the log line says it too


def test_no_api_key_appears_in_any_log_line_or_span_attribute(
    api: Api,
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant_key = api.tenant_key("acme")
    api.call("PUT", "/v1/tenants/acme/quotas/tenant:llm:month", {"limit_usd": "1"})
    reserved = api.call(
        "POST",
        "/v1/tenants/acme/reservations",
        {"resource": "llm", "estimated_cost_usd": "0.5"},
        key=tenant_key,
    ).json
    api.call(
        "POST",
        f"/v1/tenants/acme/reservations/{reserved['reservation_id']}/commit",
        {"resource": "llm", "cost_usd": "0.9"},
        key=tenant_key,
    )
    api.call("GET", "/v1/tenants/acme/alerts", key=tenant_key)
    api.call("GET", "/v1/tenants/globex/quotas", key=tenant_key)  # refused
    api.call("GET", "/v1/tenants/acme/quotas", key=tenant_key + "x")  # garbled

    output = capsys.readouterr()
    logged = output.out + output.err + caplog.text
    attributes = json.dumps(
        [dict(s.attributes or {}) for s in spans.get_finished_spans()], default=str
    )
    secret_part = tenant_key.split(".")[-1]
    for secret in (ADMIN_KEY, tenant_key, secret_part):
        assert secret not in logged
        assert secret not in attributes
    assert spans.get_finished_spans()  # the check above looked at something
    assert "api.request" in {s.name for s in spans.get_finished_spans()}


def test_a_schedule_run_is_the_run_span_then_one_span_per_tenant_with_its_reads(
    api: Api, spans: InMemorySpanExporter
) -> None:
    from types import SimpleNamespace

    from functions.anomaly import handler as anomaly
    from tests.helpers import actual

    for tenant in ("acme", "globex"):
        api.ledger.record_usage(tenant, actual("1"), enforce=False)
    context = SimpleNamespace(
        function_name="anomaly",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:1:function:anomaly",
        aws_request_id="r",
        get_remaining_time_in_millis=lambda: 300_000,
    )
    spans.clear()

    anomaly.handler({"id": "evt-1", "detail-type": "Scheduled Event"}, context, run=api.ledger)

    finished = spans.get_finished_spans()
    run = tree(finished, "schedule.anomaly")
    assert run[0] == (0, "schedule.anomaly")
    per_tenant = [s for s in finished if s.name == "schedule.tenant"]
    assert sorted(str((s.attributes or {})["costguard.tenant_id"]) for s in per_tenant) == [
        "acme",
        "globex",
    ]
    assert [d for d, n in run if n == "schedule.tenant"] == [1, 1]
    assert (2, "dynamodb.Query") in run  # each tenant's rollups, read under its span
    assert attrs(finished, "schedule.anomaly")["costguard.tenants"] == 2


def _context(name: str) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:1:function:{name}",
        aws_request_id="r",
    )


def test_the_sweeper_onboarding_and_slack_functions_each_trace_their_invocation(
    api: Api, spans: InMemorySpanExporter
) -> None:
    """Every function exports a root span per invocation, the ledger's work beneath it
    (they exported nothing before: no tracing was configured in them)."""
    from pathlib import Path

    from costguard.alerts import Outbox
    from costguard.onboarding import Onboarding, parse_plans

    from functions.onboarding import handler as onboarding
    from functions.slack import handler as slack
    from functions.sweeper import handler as sweeper

    events = Path(__file__).parents[2] / "events"
    spans.clear()
    outbox = Outbox(AlertBook(api.ledger.table, api.ledger.now), Publisher(None, None))
    sweeper.handler({}, _context("sweeper"), sweep=api.ledger, alerts=outbox)
    run = tree(spans.get_finished_spans(), "sweeper.run")
    assert run[0] == (0, "sweeper.run")
    assert any(depth == 1 and name.startswith("dynamodb.") for depth, name in run)

    seeds = Onboarding(api.ledger, parse_plans({"default": {"tenant:llm:month": "100"}}))
    created = json.loads((events / "onboarding" / "tenant_created.json").read_text())
    onboarding.handler(created, _context("onboarding"), onboard=seeds)
    run = tree(spans.get_finished_spans(), "onboarding.event")
    assert run[0] == (0, "onboarding.event") and len(run) > 1

    class Poster:
        def post(self, message: Any) -> int:
            return 1

    sns = json.loads((events / "slack" / "sns-threshold.json").read_text())
    assert slack.handler(sns, _context("slack"), slack=Poster()) == {"posted": 1}
    assert tree(spans.get_finished_spans(), "slack.deliver") == [(0, "slack.deliver")]

"""The deploy rehearsal (tests/infra/rehearsal.py): every function run from its synthesized
asset with the template's environment on a local AWS endpoint, every AWS call checked against
its IAM policy, the sample events replayed, the stream / bus / topic / schedule wiring driven
from the template. A missing permission, variable or import fails here, not in an account."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.rehearsal import Report, Unmapped, rehearse, role_statements


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    yield from rehearse(tmp_path_factory.mktemp("rehearsal"))


def test_every_function_runs_from_its_asset(report: Report) -> None:
    ran = {i.function for i in report.rehearsal.invocations}
    names = {f.name for f in report.rehearsal.functions.values()}
    assert names == {
        "api",
        "alerts",
        "slack",
        "sweeper",
        "onboarding",
        "anomaly",
        "forecast",
        "recommendations",
    }
    assert ran == names
    for invocation in report.rehearsal.invocations:
        invocation.answers()  # no import error, no invocation that raised


def test_the_api_answers_the_sample_sequence(report: Report) -> None:
    wrong = [(i, got, want) for i, (got, want) in enumerate(report.api_statuses) if got != want]
    assert not wrong, wrong


def test_every_aws_call_is_allowed_by_the_functions_iam_policy(report: Report) -> None:
    rehearsal = report.rehearsal
    checked, refused = 0, []
    for invocation in rehearsal.invocations:
        function = rehearsal.by_name(invocation.function)
        statements = role_statements(rehearsal.resolve, function.role)
        for call in invocation.calls:
            try:
                needed = rehearsal.permissions.required(call)
            except Unmapped as exc:
                refused.append((function.name, str(exc)))
                continue
            for action, resource in needed:
                checked += 1
                if not any(s.allows(action, resource) for s in statements):
                    refused.append((function.name, f"{action} on {resource}"))
    assert not refused, sorted(set(refused))
    assert checked > 50  # the rehearsal really called AWS


def test_the_wiring_carries_events_end_to_end(report: Report) -> None:
    # the ledger stream reached the alerts function through the mapping's filters; the bus
    # rule took TenantCreated to onboarding; the alerts topic reached the Slack notifier
    assert report.wiring.get("stream", 0) > 0, report.wiring
    assert report.wiring.get("bus", 0) > 0, report.wiring
    assert report.wiring.get("topic", 0) > 0, report.wiring
    assert report.webhook, "no alert reached the Slack webhook"
    assert set(report.scheduled) == {"sweeper", "anomaly", "forecast", "recommendations"}
    # the sweeper redrove the alert the rehearsal stranded (publishing with its own grants)
    assert report.scheduled["sweeper"][0]["alerts_redelivered"] == 1, report.scheduled
    for name, answers in report.scheduled.items():
        assert answers and isinstance(answers[0], dict), (name, answers)


def test_sample_events_run_on_every_function(report: Report) -> None:
    assert set(report.samples) >= {"alerts", "slack", "sweeper", "onboarding", "anomaly"}


def emitted(report: Report) -> dict[str, set[tuple[str, frozenset[str]]]]:
    """metric name → {(service, dimension names)} from every EMF document the functions wrote."""
    found: dict[str, set[tuple[str, frozenset[str]]]] = {}
    for invocation in report.rehearsal.invocations:
        for document in invocation.emf():
            for directive in document["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == "costguard"
                for dimensions in directive["Dimensions"]:
                    for metric in directive["Metrics"]:
                        found.setdefault(metric["Name"], set()).add(
                            (str(document.get("service")), frozenset(dimensions))
                        )
    return found


def test_every_metric_carries_its_functions_service_name(report: Report) -> None:
    """One convention: `service` = the function's POWERTOOLS_SERVICE_NAME, on every line."""
    documents = 0
    for invocation in report.rehearsal.invocations:
        service = report.rehearsal.by_name(invocation.function).service
        for document in invocation.emf():
            documents += 1
            assert document.get("service") == service, (invocation.function, document)
    assert documents > 10


UNEXERCISED = {"TenantCreatedUnpublished", "AlertsUndeliverable"}
"""Alarmed metrics the rehearsal cannot provoke (the bus refusing an event, an alert failing
every redrive); their unit tests emit them. For these the metric name must at least be in the
sources of the function the alarm names."""


def test_every_alarm_watches_what_a_function_emits(report: Report) -> None:
    """Issue 20: two alarms watched service=api while the code emitted service=costguard-api."""
    rehearsal = report.rehearsal
    services = {f.service: f for f in rehearsal.functions.values()}
    seen = emitted(report)
    alarms = [
        a["Properties"]
        for a in rehearsal.resolve.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "costguard"
    ]
    assert len(alarms) >= 5
    for alarm in alarms:
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        name, service = alarm["MetricName"], dimensions.get("service")
        assert service in services, (name, dimensions, sorted(services))
        if name in UNEXERCISED:
            sources = services[service].asset / "functions"
            text = " ".join(p.read_text() for p in sources.rglob("*.py"))
            text += " ".join(
                p.read_text() for p in (services[service].asset / "costguard").rglob("*.py")
            )
            assert re.search(rf'"{name}"', text), (name, service)
            continue
        assert name in seen, f"alarm on {name}, which no function emitted in the rehearsal"
        assert (service, frozenset(dimensions)) in seen[name], (name, dimensions, seen[name])
    # and the list of exceptions stays honest: each one is alarmed
    assert {a["MetricName"] for a in alarms} >= UNEXERCISED


def test_no_function_ran_with_the_test_environment(report: Report) -> None:
    """The runner's import path is the asset and boto3 only (a missing dependency fails)."""
    for function in report.rehearsal.functions.values():
        assert (function.asset / "costguard" / "__init__.py").is_file()
        assert (function.asset / "pydantic").is_dir()
        assert not (function.asset / "boto3").exists()
        assert not (function.asset / "moto").exists()
    runtime = {p.name for p in Path(report.rehearsal.runtime).iterdir()}
    assert "pydantic" not in runtime and "boto3" in runtime


def dashboard_metrics(report: Report) -> list[tuple[str, dict[str, str]]]:
    """(metric name, dimensions) of every costguard metric on the dashboard."""
    [dashboard] = report.rehearsal.resolve.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(report.rehearsal.resolve.leniently(dashboard["Properties"]["DashboardBody"]))
    found = []
    for widget in body["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            core = metric[:-1] if metric and isinstance(metric[-1], dict) else metric
            if len(core) >= 2 and core[0] == "costguard":
                rest = core[2:]
                found.append((str(core[1]), dict(zip(rest[0::2], rest[1::2], strict=True))))
    return found


def test_every_dashboard_metric_is_one_a_function_emits(report: Report) -> None:
    services = {f.service for f in report.rehearsal.functions.values()}
    seen = emitted(report)
    metrics = dashboard_metrics(report)
    assert len(metrics) >= 3, metrics
    for name, dimensions in metrics:
        assert dimensions.get("service") in services, (name, dimensions)
        assert name in seen, f"the dashboard shows {name}, which no function emitted"
        assert (dimensions["service"], frozenset(dimensions)) in seen[name], (name, seen[name])

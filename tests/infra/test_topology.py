"""The deployment and `make run` are one topology (costguard/topology.py): the synthesized
template and the local runner both derive from it, so they cannot drift apart.

Each test reads the same fact twice — from the template `make synth` writes, and from the
runner `make run` builds (`local.server.build`, on the embedded store) — and compares the two
with each other, not only with the module: a rate changed beside infra/, or a route added only
to the local bus, fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from costguard import topology
from costguard.settings import Settings

from local.server import Runner, build
from tests.infra.conftest import Synth
from tests.infra.test_stack import function

UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
WEEK = 7 * 86400


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    """What `make run` builds (no timers started), with the default periods."""
    from functions.api.handler import app

    with pytest.MonkeyPatch.context() as env:
        for schedule in topology.SCHEDULES:
            env.delenv(schedule.local_variable, raising=False)
        built, close = build(Settings(table_name="costguard-topology"), None)
    try:
        yield built
    finally:
        close()
        app.dependency_overrides.clear()


def period_seconds(expression: str) -> int:
    """The period of an EventBridge schedule expression: `rate(6 hours)`, or a weekly cron."""
    if rate := re.fullmatch(r"rate\((\d+) (\w+)\)", expression):
        return int(rate[1]) * UNITS[rate[2]]
    cron = re.fullmatch(r"cron\((\d+) (\d+) \? \* ([A-Z]{3}) \*\)", expression)
    assert cron, f"neither a rate nor a weekly cron: {expression}"
    return WEEK


def rules_targeting(synth: Synth, handler: str) -> list[dict[str, Any]]:
    fn_id, _ = function(synth, handler)
    return [
        rule["Properties"]
        for rule in synth.resources("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]} for t in rule["Properties"]["Targets"])
    ]


def matches(pattern: Any, value: Any) -> bool:
    """An event pattern of the kinds the stack uses (literals, `prefix`) against a record."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            matches(inner, value.get(key)) for key, inner in pattern.items()
        )
    return any(
        isinstance(value, str) and value.startswith(option["prefix"])
        if isinstance(option, dict)
        else value == option
        for option in pattern
    )


def record(event_name: str, sort_key: str, overrun: bool | None = None) -> dict[str, Any]:
    change: dict[str, Any] = {"Keys": {"pk": {"S": "TENANT#acme"}, "sk": {"S": sort_key}}}
    if overrun is not None:
        change["NewImage"] = {"status": {"S": "committed"}, "overrun": {"BOOL": overrun}}
    return {"eventName": event_name, "dynamodb": change}


def test_the_template_deploys_exactly_the_topology_functions(synth: Synth) -> None:
    deployed = {
        props["Handler"]: (props["MemorySize"], props["Timeout"])
        for props in (r["Properties"] for r in synth.resources("AWS::Lambda::Function").values())
        if str(props.get("Handler", "")).startswith("functions.")
    }
    # the Slack notifier only with a webhook secret (not in the default context)
    expected = {
        f.handler: (f.memory_mb, f.timeout_seconds)
        for f in topology.FUNCTIONS
        if f is not topology.SLACK
    }
    assert deployed == expected


def test_every_schedule_has_one_period_in_the_template_and_in_make_run(
    synth: Synth, runner: Runner
) -> None:
    deployed = {}
    for schedule in topology.SCHEDULES:
        [rule] = rules_targeting(synth, schedule.function.handler)
        deployed[schedule.function.name] = period_seconds(rule["ScheduleExpression"])
    local = {
        name: timer.every_seconds for name, timer in runner.schedules.items() if name != "stream"
    }
    assert local == deployed
    assert deployed == {s.function.name: s.every_seconds for s in topology.SCHEDULES}


def test_the_weekly_digest_is_the_same_cron_in_the_template(synth: Synth) -> None:
    weekly = topology.DIGEST_SCHEDULE.weekly
    assert weekly is not None
    [rule] = rules_targeting(synth, topology.RECOMMENDATIONS.handler)
    expected = f"cron({weekly.minute} {weekly.hour} ? * {weekly.day} *)"
    assert rule["ScheduleExpression"] == expected


def test_every_bus_route_is_a_rule_and_a_local_route_with_the_same_retries(
    synth: Synth, runner: Runner
) -> None:
    assert runner.bus is not None
    deployed, local = {}, {}
    for route in topology.ROUTES:
        fn_id, _ = function(synth, route.function.handler)
        [rule] = [r for r in rules_targeting(synth, route.function.handler) if "EventPattern" in r]
        [invoke_config] = [
            c["Properties"]
            for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
            if c["Properties"]["FunctionName"] == {"Ref": fn_id}
        ]
        deployed[route.function.name] = (
            rule["EventPattern"]["detail-type"],
            1 + invoke_config["MaximumRetryAttempts"],
        )
    for detail_type, routes in runner.bus._routes.items():
        for r in routes:
            local[r.name] = ([detail_type], r.attempts)
    assert local == deployed
    assert set(deployed) == {route.function.name for route in topology.ROUTES}


@pytest.mark.parametrize(
    ("event_name", "sort_key", "overrun"),
    [
        ("MODIFY", "MONTH#2026-12", None),
        ("INSERT", "DAY#2026-12-02", None),
        ("MODIFY", "WEEK#2026-W49", None),
        ("INSERT", "A#01JF0000000000000000000000", None),
        ("MODIFY", "A#01JF0000000000000000000000", None),  # a delivered alert's status: not again
        ("INSERT", "R#01JF0000000000000000000000", None),  # a reservation
        ("MODIFY", "01JF0000000000000000000000", True),  # committed beyond its hold
        ("MODIFY", "01JF0000000000000000000000", False),  # committed within it
        ("REMOVE", "POLICY", None),
    ],
)
def test_the_stream_consumer_takes_the_same_records_and_batches_in_both(
    synth: Synth, runner: Runner, event_name: str, sort_key: str, overrun: bool | None
) -> None:
    assert runner.stream is not None
    fn_id, _ = function(synth, topology.LEDGER_STREAM.function.handler)
    [mapping] = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    delivery = runner.stream.delivery
    assert delivery.batch_size == mapping["BatchSize"] == topology.LEDGER_STREAM.batch_size
    window = topology.LEDGER_STREAM.batching_window_seconds
    assert runner.stream.every == mapping["MaximumBatchingWindowInSeconds"] == window
    patterns = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    sample = record(event_name, sort_key, overrun)
    deployed = any(matches(pattern, sample) for pattern in patterns)
    assert delivery.accepts is not None
    assert delivery.accepts(sample) is deployed


def test_the_pattern_matcher_can_refuse() -> None:
    pattern = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "A#"}]}}}}
    assert matches(pattern, record("INSERT", "A#1"))
    assert not matches(pattern, record("MODIFY", "A#1"))
    assert not matches(pattern, record("INSERT", "B#1"))


def test_the_functions_table_of_the_docs_is_the_topology() -> None:
    # Given the table of docs/infrastructure.md ("| `anomaly` / `forecast` | 1024 MB, 5 / 10 min |")
    text = (Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md").read_text()
    documented = {}
    for names, memory, timeouts, unit in re.findall(
        r"^\| ((?:`\w+`(?: \(optional\))?(?: / )?)+) \| (\d+) MB, ([\d / ]+) (s|min) \|", text, re.M
    ):
        seconds = [int(t) * (60 if unit == "min" else 1) for t in timeouts.split(" / ")]
        for name, timeout in zip(re.findall(r"`(\w+)`", names), seconds, strict=True):
            documented[name] = (int(memory), timeout)
    # Then it names every function with the memory and timeout it is deployed with
    assert documented == {f.name: (f.memory_mb, f.timeout_seconds) for f in topology.FUNCTIONS}

"""The anomaly and forecast schedules: rules, functions, least privilege, retries, DLQ, alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synth
from tests.infra.test_stack import function, index_arn, role_of, statements, table_arn

ANOMALY = "functions.anomaly.handler.handler"
FORECAST = "functions.forecast.handler.handler"
# Written out, not imported from infra/ledger.py: widening a grant needs a test change too.
TABLE_ACTIONS = {
    ANOMALY: {"dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:Query"},
    FORECAST: {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
}


def active_index_arn(synth: Synth) -> str:
    return index_arn(synth).replace("/index/holds", "/index/active")


def rule_of(synth: Synth, handler: str) -> dict[str, Any]:
    fn_id, _ = function(synth, handler)
    [rule] = [
        r
        for r in synth.resources("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]} for t in r["Properties"]["Targets"])
    ]
    return rule


@pytest.mark.parametrize(
    ("handler", "rate"), [(ANOMALY, "rate(1 hour)"), (FORECAST, "rate(6 hours)")]
)
def test_each_schedule_runs_its_function_with_retries_and_the_queue(
    synth: Synth, handler: str, rate: str
) -> None:
    fn_id, fn = function(synth, handler)
    rule = rule_of(synth, handler)
    assert rule["Properties"]["ScheduleExpression"] == rate
    [target] = rule["Properties"]["Targets"]
    [(queue_id, queue)] = [
        (k, v)
        for k, v in synth.resources("AWS::SQS::Queue").items()
        if k.startswith("SchedulesDeadLetters")
    ]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": fn_id}, "MaximumRetryAttempts": 2},
    )
    props = fn["Properties"]
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert props["Architectures"] == ["arm64"] and props["TracingConfig"] == {"Mode": "Active"}
    assert props["MemorySize"] == 1024 and props["Timeout"] <= 600


def test_the_queue_refuses_plain_http(synth: Synth) -> None:
    policies = [
        p
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if any("SchedulesDeadLetters" in json.dumps(q) for q in p["Properties"]["Queues"])
    ]
    [policy] = policies
    body = json.dumps(policy["Properties"]["PolicyDocument"])
    assert '"aws:SecureTransport": "false"' in body


@pytest.mark.parametrize("handler", [ANOMALY, FORECAST])
def test_each_function_reads_rollups_and_the_active_index_and_nothing_else(
    synth: Synth, handler: str
) -> None:
    granted = statements(synth, role_of(function(synth, handler)[1]))
    dynamodb = {(a, r) for a, r in granted if any(x.startswith("dynamodb:") for x in a)}
    assert dynamodb == {
        (frozenset(TABLE_ACTIONS[handler]), table_arn(synth)),
        (frozenset({"dynamodb:Query"}), active_index_arn(synth)),
    }
    services = {x.split(":")[0] for a, _ in granted for x in a}
    assert services <= {"dynamodb", "logs", "xray", "sqs"}  # no SNS, no EventBridge


def test_alarms_on_errors_the_queue_and_skipped_tenants(synth: Synth) -> None:
    alarms = synth.resources("AWS::CloudWatch::Alarm").values()
    described = " | ".join(str(a["Properties"].get("AlarmDescription")) for a in alarms)
    for needle in (
        "costguard anomaly function: errors",
        "costguard forecast function: errors",
        "costguard schedules: an anomaly or forecast run failed every retry",
        "costguard anomaly: a run reached its deadline",
        "costguard forecast: a run reached its deadline",
    ):
        assert needle in described, needle


def test_rates_come_from_context(configured: Synth) -> None:
    assert rule_of(configured, ANOMALY)["Properties"]["ScheduleExpression"] == "rate(30 minutes)"
    assert rule_of(configured, FORECAST)["Properties"]["ScheduleExpression"] == "rate(12 hours)"

"""The alerts' infrastructure: stream mapping, topic, Slack notifier, failure queues, alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import Synth, synthesize
from tests.infra.test_stack import function, role_of, statements

ALERTS_HANDLER = "functions.alerts.handler.handler"
SLACK_HANDLER = "functions.slack.handler.handler"
SWEEPER_HANDLER = "functions.sweeper.handler.handler"


@pytest.fixture(scope="module")
def slack(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A deployment with a Slack webhook secret and e-mail subscribers."""
    return synthesize(
        tmp_path_factory.mktemp("slack"),
        **{
            "costguard:slack_webhook_secret_name": "costguard/slack-webhook",
            "costguard:alert_emails": "finance@example.com",
            "costguard:alarm_emails": "oncall@example.com",
        },
    )


def alerts_topic(synth: Synth) -> tuple[str, dict[str, Any]]:
    [found] = [
        (k, v)
        for k, v in synth.resources("AWS::SNS::Topic").items()
        if v["Properties"]["DisplayName"] == "costguard quota alerts"
    ]
    return found


def test_the_stream_mapping_reports_partial_failures_bisects_and_gives_up_boundedly(
    synth: Synth,
) -> None:
    fn_id, _ = function(synth, ALERTS_HANDLER)
    _, mapping = synth.one("AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": fn_id}
    assert props["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == 10
    assert props["MaximumRecordAgeInSeconds"] == 6 * 3600
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["BatchSize"] == 100
    queue_id, queue = next(
        (k, v)
        for k, v in synth.resources("AWS::SQS::Queue").items()
        if k.startswith("AlertsStreamFailures")
    )
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [queue_id, "Arn"]
    }
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    # only counter items, new alert records and records committed beyond their hold (the
    # overrun alert) invoke the function
    patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    prefixes = [p["dynamodb"]["Keys"]["sk"]["S"][0]["prefix"] for p in patterns[:4]]
    assert prefixes == ["DAY#", "WEEK#", "MONTH#", "A#"]
    assert patterns[3]["eventName"] == ["INSERT"]
    assert patterns[4] == {"dynamodb": {"NewImage": {"overrun": {"BOOL": [True]}}}}


def test_the_alerts_topic_is_encrypted_with_a_rotated_key_and_tls_only(synth: Synth) -> None:
    topic_id, topic = alerts_topic(synth)
    key_ref = topic["Properties"]["KmsMasterKeyId"]
    key_id = key_ref["Fn::GetAtt"][0]
    assert synth.json["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                    )
                ]
            },
        },
    )


@pytest.mark.parametrize("handler", [ALERTS_HANDLER, SWEEPER_HANDLER])
def test_publishers_may_publish_to_the_topic_and_use_its_key_and_nothing_more(
    synth: Synth, handler: str
) -> None:
    topic_id, topic = alerts_topic(synth)
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    _, fn = function(synth, handler)
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["COSTGUARD_ALERTS_TOPIC_ARN"] == {"Ref": topic_id}
    bus_id, _ = synth.one("AWS::Events::EventBus")
    assert env["COSTGUARD_EVENT_BUS_NAME"] == {"Ref": bus_id}
    granted = statements(synth, role_of(fn))
    assert (frozenset({"sns:Publish"}), json.dumps({"Ref": topic_id})) in granted
    assert (
        frozenset({"kms:Decrypt", "kms:GenerateDataKey"}),
        json.dumps({"Fn::GetAtt": [key_id, "Arn"]}, sort_keys=True),
    ) in granted


def test_the_slack_notifier_exists_only_when_a_webhook_secret_is_configured(
    synth: Synth, slack: Synth
) -> None:
    assert not [
        f
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == SLACK_HANDLER
    ]
    fn_id, fn = function(slack, SLACK_HANDLER)
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["COSTGUARD_SLACK_WEBHOOK_SECRET"] == "costguard/slack-webhook"
    topic_id, _ = alerts_topic(slack)
    subscriptions = {
        (s["Properties"]["Protocol"], json.dumps(s["Properties"]["Endpoint"], sort_keys=True)): s
        for s in slack.resources("AWS::SNS::Subscription").values()
    }
    lambda_sub = subscriptions[("lambda", json.dumps({"Fn::GetAtt": [fn_id, "Arn"]}))]
    assert lambda_sub["Properties"]["TopicArn"] == {"Ref": topic_id}
    email = subscriptions[("email", '"finance@example.com"')]
    assert email["Properties"]["TopicArn"] == {"Ref": topic_id}
    oncall = subscriptions[("email", '"oncall@example.com"')]
    assert oncall["Properties"]["TopicArn"] != {"Ref": topic_id}  # the alarms topic
    # its failed invocations: 2 retries, then the SlackFailures queue
    [invoke] = [
        c
        for c in slack.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    assert invoke["Properties"]["MaximumRetryAttempts"] == 2
    destination = invoke["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination["Fn::GetAtt"][0].startswith("AlertsSlackFailures")
    # it reads its secret, nothing of the table
    granted = statements(slack, role_of(fn))
    services = {a.split(":")[0] for actions, _ in granted for a in actions}
    assert services == {"logs", "xray", "secretsmanager", "sqs"}
    [secret_arn] = [r for a, r in granted if "secretsmanager:GetSecretValue" in a]
    assert "secret:costguard/slack-webhook-??????" in secret_arn


def test_alarms_watch_the_stream_lag_and_both_failure_queues(slack: Synth) -> None:
    alarms = slack.resources("AWS::CloudWatch::Alarm").values()
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms:
        by_metric.setdefault(alarm["Properties"]["MetricName"], []).append(alarm["Properties"])
    [lag] = by_metric["IteratorAge"]
    assert (lag["Statistic"], lag["Threshold"]) == ("Maximum", 60_000)
    queues = [
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in by_metric["ApproximateNumberOfMessagesVisible"]
    ]
    assert any(q.startswith("AlertsStreamFailures") for q in queues)
    assert any(q.startswith("AlertsSlackFailures") for q in queues)


def test_the_cfn_template_with_slack_passes_cfn_lint(slack: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(Path(slack.path), ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id[0] == "E"] == []

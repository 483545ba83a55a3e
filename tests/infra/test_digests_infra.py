"""The weekly recommendations digest: its schedule, function, retries and least privilege."""

from __future__ import annotations

from pathlib import Path

from tests.infra.conftest import Synth
from tests.infra.test_schedules import active_index_arn, rule_of
from tests.infra.test_stack import function, role_of, statements, table_arn

DIGEST = "functions.recommendations.handler.handler"


def test_the_digest_runs_every_monday_with_retries_and_the_schedules_queue(synth: Synth) -> None:
    fn_id, fn = function(synth, DIGEST)
    rule = rule_of(synth, DIGEST)
    assert rule["Properties"]["ScheduleExpression"] == "cron(0 7 ? * MON *)"
    [target] = rule["Properties"]["Targets"]
    [queue_id] = [
        k for k in synth.resources("AWS::SQS::Queue") if k.startswith("SchedulesDeadLetters")
    ]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    props = fn["Properties"]
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert props["Architectures"] == ["arm64"] and props["TracingConfig"] == {"Mode": "Active"}
    synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": fn_id}, "MaximumRetryAttempts": 2},
    )


def test_the_digest_reads_and_writes_alert_records_only(synth: Synth) -> None:
    granted = statements(synth, role_of(function(synth, DIGEST)[1]))
    dynamodb = {(a, r) for a, r in granted if any(x.startswith("dynamodb:") for x in a)}
    # Written out, not imported from infra/digests.py: widening a grant needs a test change too.
    assert dynamodb == {
        (
            frozenset(
                {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
            ),
            table_arn(synth),
        ),
        (frozenset({"dynamodb:Query"}), active_index_arn(synth)),
    }
    services = {x.split(":")[0] for a, _ in granted for x in a}
    assert services <= {
        "dynamodb",
        "logs",
        "xray",
        "sqs",
    }  # no SNS, no EventBridge: the stream delivers


def test_the_digest_function_has_an_errors_alarm(synth: Synth) -> None:
    described = " | ".join(
        str(a["Properties"].get("AlarmDescription"))
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
    )
    assert "costguard recommendations function: errors" in described


def test_the_api_asset_ships_the_console_and_its_chart_library(tmp_path: Path) -> None:
    from infra import packaging

    asset = packaging.stage_function("api", tmp_path / "build", None)
    console = asset / "functions" / "api" / "console"
    shipped = sorted(p.name for p in console.iterdir())
    assert shipped == [
        "console.css",
        "console.js",
        "index.html",
        "uPlot.LICENSE.txt",
        "uPlot.iife.min.js",
        "uPlot.min.css",
    ]
    # and the digest function's asset has its handler
    digest = packaging.stage_function("recommendations", tmp_path / "build", None)
    assert (digest / "functions" / "recommendations" / "handler.py").is_file()

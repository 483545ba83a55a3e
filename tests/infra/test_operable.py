"""Issue 20 in the template: alarms that can reach someone, a deploy that runs from cdk.json on
a fresh clone, the alert redrive cap alarmed."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import subprocess
from typing import Any

from costguard import services

from infra.config import REPO_ROOT
from tests.infra.conftest import Synth

ACCOUNT = "111122223333"
REGION = "eu-west-1"
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}


def resolve(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return refs.get(value["Ref"], PSEUDO.get(value["Ref"], value["Ref"]))
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, refs)) for p in parts)
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


def condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            got = context.get(key)
            options = wanted if isinstance(wanted, list) else [wanted]
            if operator == "StringEquals" and got not in options:
                return False
            if operator == "ArnLike" and not any(
                got is not None and fnmatch.fnmatchcase(got, w) for w in options
            ):
                return False
            if operator == "Bool" and str(got).lower() not in [str(w).lower() for w in options]:
                return False
            if operator not in ("StringEquals", "ArnLike", "Bool"):
                raise AssertionError(f"condition {operator} not understood by this test")
    return True


def may_publish(policy: dict[str, Any], topic: str, service: str, context: dict[str, str]) -> bool:
    """Resource-policy evaluation for a service principal: an Allow and no Deny."""
    allowed = False
    for statement in policy["Statement"]:
        principal = statement["Principal"]
        if principal != "*" and service not in json.dumps(principal):
            continue
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if "sns:Publish" not in actions or statement["Resource"] != topic:
            continue
        if not condition_holds(statement.get("Condition", {}), context):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def test_cloudwatch_alarms_may_publish_to_the_topics_they_notify(synth: Synth) -> None:
    """Issue 20: `enforce_ssl=True` left a topic policy with only a Deny, which replaces SNS's
    default policy: CloudWatch was refused and none of the alarms reached anyone."""
    refs = {
        logical: f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical}" for logical in synth.json["Resources"]
    }
    policies = {
        topic["Ref"]: resolve(p["Properties"]["PolicyDocument"], refs)
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        for topic in p["Properties"]["Topics"]
    }
    notified = {
        action["Ref"]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
        for action in alarm["Properties"].get("AlarmActions", [])
        + alarm["Properties"].get("OKActions", [])
    }
    assert notified, "no alarm notifies anyone"
    alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:costguard-Api5xx"
    for topic in notified:
        assert synth.json["Resources"][topic]["Type"] == "AWS::SNS::Topic"
        policy, arn = policies[topic], refs[topic]
        ours = {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": alarm_arn,
            "aws:SecureTransport": "true",
        }
        assert may_publish(policy, arn, "cloudwatch.amazonaws.com", ours)
        # scoped to this account's alarms (confused deputy), and still SSL only
        theirs = {
            "aws:SourceAccount": "999999999999",
            "aws:SourceArn": alarm_arn.replace(ACCOUNT, "999999999999"),
            "aws:SecureTransport": "true",
        }
        assert not may_publish(policy, arn, "cloudwatch.amazonaws.com", theirs)
        assert not may_publish(
            policy, arn, "cloudwatch.amazonaws.com", {**ours, "aws:SecureTransport": "false"}
        )
        assert not may_publish(policy, arn, "events.amazonaws.com", ours)


def test_alerts_given_up_after_every_redrive_raise_an_alarm(synth: Synth) -> None:
    [alarm] = [
        a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "AlertsUndeliverable"
    ]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": services.SWEEPER}]
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"]


def test_every_function_is_named_by_the_shared_service_constants(synth: Synth) -> None:
    names = {
        fn["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for fn in synth.resources("AWS::Lambda::Function").values()
    }
    constants = {
        services.API,
        services.SWEEPER,
        services.ALERTS,
        services.ONBOARDING,
        services.ANOMALY,
        services.FORECAST,
        services.RECOMMENDATIONS,
    }
    assert names == constants  # (the Slack notifier only exists with a webhook secret)


def test_cdk_json_runs_the_app_without_uv_on_the_path() -> None:
    """Issue 20: cdk.json ran `uv run …`, and `npx cdk deploy` stopped with `uv: not found`
    after `make install` (only `make synth` put .tools/bin on PATH). The app command must work
    from a shell that has only the system's PATH; the full CLI synth runs in the rehearsal."""
    app = json.loads((REPO_ROOT / "cdk.json").read_text())["app"]
    command = shlex.split(app)
    assert command[-3:] == ["python", "-m", "infra.app"]
    executable = REPO_ROOT / command[0]
    assert executable.is_file() and os.access(executable, os.X_OK), app
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV"))}
    env["PATH"] = "/usr/bin:/bin"
    done = subprocess.run(
        [*command[:-3], "python", "-c", "import infra.app, costguard.services"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_makefile_deploys_through_the_same_cli_with_the_tools_on_path() -> None:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "deploy", "diff", "destroy", "bootstrap"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "cdk " in line]
    for verb in ("deploy", "diff", "destroy", "bootstrap"):
        [line] = [line for line in lines if f"cdk {verb}" in line]
        assert f"{REPO_ROOT}/.tools/bin:" in line and "npx --no-install cdk" in line

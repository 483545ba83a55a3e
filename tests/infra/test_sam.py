"""`sam local` over the synthesized template (local/sam.py): what runs without a container
runtime — the env-vars file, the derived template, the sample events, `sam validate --lint`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from costguard.ledger import make_client
from costguard.notify import NoSink
from costguard.settings import Settings

from local import sam
from tests.infra.conftest import Synth
from tests.infra.test_stack import CFN_LINT_ACCEPTED_WARNINGS

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "http://host.docker.internal:8000"
TRIGGERS = {
    "api": "http",
    "alerts": "aws:dynamodb",
    "slack": "aws:sns",
    "onboarding": "TenantCreated",
    "sweeper": "Scheduled Event",
    "anomaly": "Scheduled Event",
    "forecast": "Scheduled Event",
    "recommendations": "Scheduled Event",
}


@pytest.fixture
def assembly(synth: Synth, tmp_path: Path) -> Path:
    """A cloud assembly holding the synthesized template, as `make synth` leaves cdk.out/."""
    (tmp_path / "costguard.template.json").write_text(json.dumps(synth.json))
    manifest = {
        "artifacts": {
            "costguard": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "costguard.template.json"},
            }
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def written(assembly: Path) -> tuple[dict[str, Any], dict[str, dict[str, str]], dict[str, str]]:
    template, env, names = sam.write(
        assembly, table="costguard-ledger", endpoint=ENDPOINT, admin_key=sam.SAMPLE_ADMIN_KEY
    )
    assert (template.parent, env.parent) == (assembly, assembly)  # asset paths stay valid
    return json.loads(template.read_text()), json.loads(env.read_text()), names


def test_the_env_file_points_every_function_at_the_local_store(
    synth: Synth, assembly: Path
) -> None:
    sam_template, env, names = written(assembly)

    functions = synth.resources("AWS::Lambda::Function")
    assert set(env) == set(functions) == set(names.values())
    logical_ids = set(synth.json["Resources"])
    for logical_id, resource in functions.items():
        values = env[logical_id]
        assert values["COSTGUARD_TABLE_NAME"] == "costguard-ledger"
        assert values["AWS_ENDPOINT_URL_DYNAMODB"] == ENDPOINT
        assert not logical_ids & set(values.values())  # no `LedgerTable9343E4AA` as a name
        declared = resource["Properties"]["Environment"]["Variables"]
        # every variable the template resolves from a resource gets a local value
        assert {n for n, v in declared.items() if not isinstance(v, str)} <= set(values)
        # SAM passes only declared variables: the derived template declares each one
        local = sam_template["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        assert set(values) <= set(local)
    api = env[names["api"]]
    assert (api["COSTGUARD_ADMIN_KEY"], api["COSTGUARD_ADMIN_KEY_SECRET_ARN"]) == (
        "cg-admin-sample-key-for-events",
        "",
    )


def test_the_derived_template_differs_only_by_the_declared_variables(
    synth: Synth, assembly: Path
) -> None:
    sam_template, env, _ = written(assembly)

    for logical_id in env:
        variables = sam_template["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        for added in ("AWS_ENDPOINT_URL_DYNAMODB", "COSTGUARD_ADMIN_KEY"):
            if (
                added
                not in synth.json["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
            ):
                variables.pop(added, None)
    assert sam_template == synth.json


def test_each_function_s_settings_load_from_the_env_file(
    synth: Synth, assembly: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the Lambda container would see: the template's plain values, then the env file."""
    _, env, _ = written(assembly)
    for logical_id, values in env.items():
        declared = synth.json["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        seen = {n: v for n, v in declared.items() if isinstance(v, str)} | values
        with monkeypatch.context() as patch:
            for name, value in seen.items():
                patch.setenv(name, value)
            patch.setenv("AWS_DEFAULT_REGION", "us-east-1")

            settings = Settings()
            assert settings.table_name == "costguard-ledger"
            assert not settings.event_bus_name and not settings.alerts_topic_arn
            assert not settings.admin_key_secret_arn
            assert make_client(settings).meta.endpoint_url == ENDPOINT
            assert boto3.client("dynamodb").meta.endpoint_url == ENDPOINT
            patch.setattr("costguard.settings.get_settings", lambda s=settings: s)
            from costguard.notify import event_sink_from_settings

            assert isinstance(event_sink_from_settings(), NoSink)


def test_every_events_folder_is_a_function_and_its_events_are_its_trigger_s() -> None:
    """`sam local invoke <function> -e events/<function>/<case>.json`: each folder names a
    function (handler `functions.<folder>.handler`) and holds events of its trigger's shape."""
    folders = sorted(p for p in (ROOT / "events").iterdir() if p.is_dir())
    assert [f.name for f in folders] == sorted(TRIGGERS)
    for folder in folders:
        assert (ROOT / "functions" / folder.name / "handler.py").exists()
        for path in folder.glob("*.json"):
            if path.name.startswith("_"):  # events/api/_sequence.json: the replay order
                continue
            event = json.loads(path.read_text())
            trigger = TRIGGERS[folder.name]
            if trigger == "http":
                assert event["version"] == "2.0" and event["requestContext"]["http"]["method"]
            elif trigger.startswith("aws:"):
                sources = {r.get("eventSource") or r.get("EventSource") for r in event["Records"]}
                assert sources == {trigger}, path
            elif trigger == "TenantCreated":
                assert event["detail-type"] == trigger and "detail" in event, path
            else:
                assert event["detail-type"] == trigger and event["source"] == "aws.events", path


def test_the_default_template_has_a_function_for_every_events_folder_but_slack(
    synth: Synth,
) -> None:
    names = {sam.short_name(r) for r in synth.resources("AWS::Lambda::Function").values()}
    # Slack's notifier exists only with `costguard:slack_webhook_secret` set
    assert names == set(TRIGGERS) - {"slack"}


def test_sam_validate_lint_finds_only_the_justified_warning(synth: Synth) -> None:
    """`sam validate --lint` (SAM CLI's cfn-lint) on the synthesized template: no error; the
    only warning is W3005 on each function (CDK's DependsOn on its role; see
    tests/infra/test_stack.py CFN_LINT_ACCEPTED_WARNINGS)."""
    done = subprocess.run(
        sam.sam("validate", "--lint", "-t", str(synth.path), "--region", "us-east-1"),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        check=False,
    )
    output = done.stdout + done.stderr
    rules = re.findall(r"\[([EW]\d{4}):", output)
    if done.returncode == 0:
        assert rules == [] and "is a valid SAM Template" in output, output
        return
    assert "Linting failed" in output, output
    assert set(rules) <= CFN_LINT_ACCEPTED_WARNINGS, output
    functions = set(synth.resources("AWS::Lambda::Function"))
    flagged = set(re.findall(r"at 'Resources/(\w+)/Properties/Role'", output))
    assert flagged == functions and len(rules) == len(functions), output

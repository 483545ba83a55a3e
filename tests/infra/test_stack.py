"""The synthesized template: every resource and property issue 5 asks for, cfn-lint, cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from costguard.store import schema

from infra.config import REPO_ROOT
from tests.infra.conftest import Synth

API_HANDLER = "functions.api.handler.lambda_handler"
SWEEPER_HANDLER = "functions.sweeper.handler.handler"
ALERTS_HANDLER = "functions.alerts.handler.handler"
ONBOARDING_HANDLER = "functions.onboarding.handler.handler"

# Written out here, not imported from infra/ledger.py, so that widening a grant needs a test
# change too. No dynamodb:TransactWriteItems: IAM has no such action; each item of a
# transaction is authorized as its PutItem / UpdateItem / ConditionCheckItem.
API_TABLE_ACTIONS = {
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
}
API_INDEX_ACTIONS = {"dynamodb:Query", "dynamodb:Scan"}
SWEEPER_TABLE_ACTIONS = {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}
SWEEPER_INDEX_ACTIONS = {"dynamodb:Query", "dynamodb:Scan"}
ALERTS_TABLE_ACTIONS = {
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
}
PUBLISH = {"sns", "kms", "events"}
"""Publishing alerts: sns:Publish on the alerts topic, its key's Decrypt + GenerateDataKey, and
events:PutEvents on the bus."""


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function(synth: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    found = [
        (k, v)
        for k, v in synth.resources("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == handler
    ]
    assert len(found) == 1, handler
    return found[0]


def role_of(fn: dict[str, Any]) -> str:
    return str(fn["Properties"]["Role"]["Fn::GetAtt"][0])


def statements(synth: Synth, role: str) -> list[tuple[frozenset[str], str]]:
    """Every statement granted to a role: (actions, resource as canonical JSON)."""
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            for resource in as_list(statement["Resource"]):
                found.append(
                    (frozenset(as_list(statement["Action"])), json.dumps(resource, sort_keys=True))
                )
    return found


def table_id(synth: Synth) -> str:
    return synth.logical_id(synth.stack.ledger.table)


def table_arn(synth: Synth) -> str:
    return json.dumps({"Fn::GetAtt": [table_id(synth), "Arn"]})


def index_arn(synth: Synth) -> str:
    arn = {"Fn::GetAtt": [table_id(synth), "Arn"]}
    return json.dumps({"Fn::Join": ["", [arn, f"/index/{schema.HOLDS_INDEX}"]]}, sort_keys=True)


# ------------------------------------------------------------------------------- ledger table
def test_one_table_whose_keys_and_index_come_from_the_schema_module(synth: Synth) -> None:
    _, table = synth.one("AWS::DynamoDB::GlobalTable")
    assert not synth.resources("AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == schema.KEY_SCHEMA
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(
        schema.ATTRIBUTE_DEFINITIONS, key=str
    )
    assert props["GlobalSecondaryIndexes"] == schema.GLOBAL_SECONDARY_INDEXES
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": schema.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert schema.STREAM_SPECIFICATION["StreamEnabled"]
    assert props["StreamSpecification"] == {
        "StreamViewType": schema.STREAM_SPECIFICATION["StreamViewType"]
    }
    # and the module still says what docs/data-model.md says
    assert schema.TTL_ATTRIBUTE == "ttl"
    assert schema.STREAM_SPECIFICATION["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert [i["IndexName"] for i in schema.GLOBAL_SECONDARY_INDEXES] == ["holds", "active"]
    assert schema.GLOBAL_SECONDARY_INDEXES[0]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["plan", "tenant_id"],
    }
    assert schema.GLOBAL_SECONDARY_INDEXES[1]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_table_is_on_demand_protected_retained_and_encrypted(synth: Synth) -> None:
    _, table = synth.one("AWS::DynamoDB::GlobalTable")
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert "TableName" not in props  # CloudFormation names it unless costguard:table_name
    # AWS-managed KMS key (aws/dynamodb): KMS, and no customer key on any replica
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    [replica] = props["Replicas"]
    assert replica["Region"] == {"Ref": "AWS::Region"}
    assert replica["DeletionProtectionEnabled"] is True
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "SSESpecification" not in replica


# ---------------------------------------------------------------------------------- functions
@pytest.mark.parametrize(
    ("handler", "memory", "service"),
    [
        (API_HANDLER, 1769, "costguard-api"),
        (SWEEPER_HANDLER, 256, "costguard-sweeper"),
        (ALERTS_HANDLER, 256, "costguard-alerts"),
        (ONBOARDING_HANDLER, 256, "costguard-onboarding"),
    ],
)
def test_functions_arm64_python_traced_with_retained_logs(
    synth: Synth, handler: str, memory: int, service: str
) -> None:
    _, fn = function(synth, handler)
    props = fn["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["MemorySize"] == memory
    assert props["Timeout"] <= 60
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == service
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["COSTGUARD_TABLE_NAME"] == {"Ref": table_id(synth)}
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert synth.json["Resources"][log_group]["Properties"]["RetentionInDays"] == 30
    # no COSTGUARD_* setting is forced unless the deployer sets it by context (the names of
    # the resources a function uses are wiring, not settings)
    wiring = {
        "COSTGUARD_ADMIN_KEY_SECRET_ARN",
        "COSTGUARD_ALERTS_TOPIC_ARN",
        "COSTGUARD_EVENT_BUS_NAME",
        "COSTGUARD_DEAD_LETTER_QUEUE_URL",
    }
    assert set(env) - wiring == {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_LOGGER_SAMPLE_RATE",
        "COSTGUARD_TABLE_NAME",
    }


def test_only_the_api_gets_the_admin_key_secret(synth: Synth) -> None:
    secret_id, secret = synth.one("AWS::SecretsManager::Secret")
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    _, api = function(synth, API_HANDLER)
    _, sweeper = function(synth, SWEEPER_HANDLER)
    assert api["Properties"]["Environment"]["Variables"]["COSTGUARD_ADMIN_KEY_SECRET_ARN"] == {
        "Ref": secret_id
    }
    assert "COSTGUARD_ADMIN_KEY_SECRET_ARN" not in sweeper["Properties"]["Environment"]["Variables"]
    secret_ref = json.dumps({"Ref": secret_id})
    assert (
        frozenset({"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}),
        secret_ref,
    ) in statements(synth, role_of(api))
    assert all(resource != secret_ref for _, resource in statements(synth, role_of(sweeper)))


def test_handlers_are_where_the_assets_put_them(synth: Synth) -> None:
    """The handler strings resolve inside the staged asset (costguard at the top level)."""
    assets = json.loads((synth.outdir / f"{synth.stack.stack_name}.assets.json").read_text())
    for handler in (API_HANDLER, SWEEPER_HANDLER):
        _, fn = function(synth, handler)
        key = fn["Properties"]["Code"]["S3Key"]
        [source] = [
            a["source"]["path"]
            for a in assets["files"].values()
            if any(d["objectKey"] == key for d in a["destinations"].values())
        ]
        root = synth.outdir / source
        module, _, name = handler.rpartition(".")
        code = (root / (module.replace(".", "/") + ".py")).read_text()
        assert f"def {name}(" in code
        assert (root / "functions" / "__init__.py").is_file()
        assert (root / "costguard" / "store" / "schema.py").is_file()
        assert (root / "costguard" / "pricing" / "catalog.json").is_file()
        assert not list(root.rglob("__pycache__"))


# ------------------------------------------------------------------------------------------ IAM
@pytest.mark.parametrize(
    ("handler", "table_actions", "index_actions", "extra"),
    [
        # events: PutEvents of TenantCreated (tests/infra/test_onboarding.py)
        (API_HANDLER, API_TABLE_ACTIONS, API_INDEX_ACTIONS, {"secretsmanager", "events"}),
        (SWEEPER_HANDLER, SWEEPER_TABLE_ACTIONS, SWEEPER_INDEX_ACTIONS, PUBLISH),
        # the stream: read by the event source mapping (the stream's ARN, not the table's)
        # and the queue it puts what it gives up on (sqs)
        (ALERTS_HANDLER, ALERTS_TABLE_ACTIONS, set(), PUBLISH | {"dynamodb", "sqs"}),
    ],
)
def test_each_role_has_exactly_the_statements_its_code_needs(
    synth: Synth,
    handler: str,
    table_actions: set[str],
    index_actions: set[str],
    extra: set[str],
) -> None:
    _, fn = function(synth, handler)
    role = role_of(fn)
    role_props = synth.json["Resources"][role]["Properties"]
    assert "ManagedPolicyArns" not in role_props  # not even AWSLambdaBasicExecutionRole
    assert "Policies" not in role_props
    assert role_props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    log_group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    granted = statements(synth, role)
    expected = {
        (frozenset({"logs:CreateLogStream", "logs:PutLogEvents"}), log_group),
        (frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}), "*"),
        (frozenset(table_actions), "table"),
    }
    if index_actions:
        expected.add((frozenset(index_actions), "index"))
    names = {
        json.dumps({"Fn::GetAtt": [log_group, "Arn"]}, sort_keys=True): log_group,
        json.dumps("*"): "*",
        table_arn(synth): "table",
        index_arn(synth): "index",
    }
    named = {(actions, names.get(resource, resource)) for actions, resource in granted}
    services = {a.split(":")[0] for actions, _ in named - expected for a in actions}
    assert services == extra, named - expected
    assert expected <= named
    assert len(granted) == len(named), "a statement is granted twice"


def test_no_dynamodb_wildcards_and_no_star_resource_but_xray(synth: Synth) -> None:
    for policy in synth.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = as_list(statement["Action"])
            assert not any("*" in a for a in actions), actions
            assert "dynamodb:TransactWriteItems" not in actions  # not an IAM action
            for action in actions:
                assert action not in {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
            if "*" in as_list(statement["Resource"]):
                assert set(actions) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    # one role and one policy per function: nothing else (no custom resource, no log retention)
    functions = len(synth.resources("AWS::Lambda::Function"))
    assert len(synth.resources("AWS::IAM::Role")) == functions
    assert len(synth.resources("AWS::IAM::Policy")) == functions


def test_nothing_scans_the_table_and_the_sweeper_never_writes_new_items(synth: Synth) -> None:
    import json

    for handler in (API_HANDLER, SWEEPER_HANDLER):
        _, fn = function(synth, handler)
        for actions, resources in statements(synth, role_of(fn)):
            if "dynamodb:Scan" in actions:  # only the sparse index of live holds, never the table
                assert "/index/holds" in json.dumps(resources)
    _, sweeper = function(synth, SWEEPER_HANDLER)
    assert all("dynamodb:PutItem" not in a for a, _ in statements(synth, role_of(sweeper)))


# ------------------------------------------------------------------------------------ sweeper
def test_sweeper_runs_every_minute_without_retries(synth: Synth) -> None:
    sweeper_id, _ = function(synth, SWEEPER_HANDLER)
    [rule] = [
        r
        for r in synth.resources("AWS::Events::Rule").values()
        if r["Properties"].get("Description") == "costguard: return expired holds"
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["State"] == "ENABLED"
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [sweeper_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0}
    synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": sweeper_id}, "MaximumRetryAttempts": 0},
    )
    synth.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [sweeper_id, "Arn"]},
        },
    )


# ----------------------------------------------------------------------------------- HTTP API
def test_http_api_sends_every_path_to_the_api_function(synth: Synth) -> None:
    api_fn, _ = function(synth, API_HANDLER)
    api_id, api = synth.one("AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert "CorsConfiguration" not in api["Properties"]  # CORS off unless configured
    integration_id, integration = synth.one("AWS::ApiGatewayV2::Integration")
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [api_fn, "Arn"]}
    _, route = synth.one("AWS::ApiGatewayV2::Route")
    assert route["Properties"]["RouteKey"] == "$default"
    assert route["Properties"]["Target"] == {
        "Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]
    }
    assert route["Properties"].get("AuthorizationType", "NONE") == "NONE"  # keys: D13
    synth.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Principal": "apigateway.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [api_fn, "Arn"]},
        },
    )
    assert api_id


def test_default_stage_is_throttled_and_access_logged(synth: Synth) -> None:
    _, stage = synth.one("AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 1000,
        "ThrottlingRateLimit": 500,
    }
    logs_id = synth.logical_id(synth.stack.api.access_logs)
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [logs_id, "Arn"]}
    fields = json.loads(props["AccessLogSettings"]["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert fields["status"] == "$context.status"
    assert not any("header" in v.lower() for v in fields.values())  # keys never logged
    retention = synth.json["Resources"][logs_id]["Properties"]["RetentionInDays"]
    assert retention == 30


# ------------------------------------------------------------------------------ observability
def test_alarms_publish_to_the_alarms_topic(synth: Synth) -> None:
    [(topic_id, _)] = [
        (k, v)
        for k, v in synth.resources("AWS::SNS::Topic").items()
        if v["Properties"]["DisplayName"] == "costguard alarms"
    ]
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Effect": "Deny",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    )
                ]
            }
        },
    )
    alarms = synth.resources("AWS::CloudWatch::Alarm").values()
    metrics = [(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms]
    functions = len(synth.resources("AWS::Lambda::Function"))
    assert metrics.count(("AWS/ApiGateway", "5xx")) == 1
    assert metrics.count(("AWS/Lambda", "Errors")) == functions  # one per function
    assert metrics.count(("AWS/Lambda", "Throttles")) == functions
    for alarm in alarms:  # every alarm of the stack, whichever construct defines it
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching"
    assert not synth.resources("AWS::SNS::Subscription")  # none unless alert/alarm e-mails


def test_dashboard_shows_traffic_errors_latency_and_lambda_health(synth: Synth) -> None:
    _, dashboard = synth.one("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in ('\\"Count\\"', '\\"4xx\\"', '\\"5xx\\"', '\\"Latency\\"', "p50", "p99"):
        assert needle in body, needle
    for needle in ('\\"Errors\\"', '\\"Throttles\\"', '\\"Duration\\"', "HoldsExpired"):
        assert needle in body, needle


def test_outputs(synth: Synth) -> None:
    outputs = synth.json["Outputs"]
    assert set(outputs) == {
        "ApiUrl",
        "TableName",
        "AdminKeySecretArn",
        "AlertsTopicArn",
        "AlarmsTopicArn",
        "EventBusName",
        "OnboardingDeadLetterQueueUrl",
        "DashboardName",
    }
    secret_id, _ = synth.one("AWS::SecretsManager::Secret")
    assert outputs["AdminKeySecretArn"]["Value"] == {"Ref": secret_id}
    assert outputs["TableName"]["Value"] == {"Ref": table_id(synth)}


# --------------------------------------------------------------------- offline, env-agnostic
def test_synth_needs_no_lookup_and_no_environment(synth: Synth) -> None:
    assert synth.stack.environment == "aws://unknown-account/unknown-region"
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert not manifest.get("missing")  # no context lookup was attempted
    assert not any(
        "docker" in json.dumps(a).lower() for a in manifest["artifacts"].values()
    )  # no image assets


def test_pinned_cdk_cli_can_read_this_cloud_assembly(synth: Synth) -> None:
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    package = json.loads((REPO_ROOT / "package.json").read_text())
    pinned = package["devDependencies"]["aws-cdk"]

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))

    assert version(pinned) >= version(manifest["minimumCliVersion"])


# ------------------------------------------------------------------------- cfn-lint, cdk-nag
CFN_LINT_ACCEPTED_WARNINGS = {"W3005"}
"""W3005 (redundant DependsOn): CDK's Function always depends on its role and the role's
default policy, so the function is not created before its permissions exist; the role half
is redundant with the GetAtt, harmless, and not ours to remove."""


def test_cfn_lint_finds_no_error(synth: Synth) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(Path(synth.path), ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} at {m.path}" for m in matches if m.rule.id[0] == "E"]
    assert errors == []
    warnings = [m for m in matches if m.rule.id[0] == "W"]
    unexpected = [
        f"{m.rule.id} {m.message}" for m in warnings if m.rule.id not in CFN_LINT_ACCEPTED_WARNINGS
    ]
    assert unexpected == []
    functions = set(synth.resources("AWS::Lambda::Function"))
    for m in warnings:  # each accepted warning is the DependsOn of a function on its role
        assert m.path[:2] == ["Resources", m.path[1]] and m.path[1] in functions
        assert m.path[2] == "DependsOn"


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synth: Synth) -> None:
    from cdk_nag import AwsSolutionsChecks

    report = AwsSolutionsChecks().validate_scope(synth.app)
    found = {
        v.rule_name: [r.construct_path for r in v.violating_resources] for v in report.violations
    }
    assert found == {}
    assert report.success


def test_every_acknowledged_nag_finding_is_known_and_says_why(synth: Synth) -> None:
    from aws_cdk import Validations

    acknowledged: dict[str, str] = {}
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    rule_id = rule.removeprefix("Annotation::")  # how CDK records an unprefixed id
                    acknowledged[f"{construct.node.path} {rule_id}"] = reason
    assert sorted(acknowledged) == [
        "costguard/Alerts/Handler/Function AwsSolutions-L1",
        "costguard/Alerts/Handler/Role AwsSolutions-IAM5[Resource::*]",
        "costguard/Alerts/StreamFailures AwsSolutions-SQS3",
        "costguard/Api/AdminKey AwsSolutions-SMG4",
        "costguard/Api/Handler/Function AwsSolutions-L1",
        "costguard/Api/Handler/Role AwsSolutions-IAM5[Resource::*]",
        "costguard/Api/HttpApi AwsSolutions-APIG4",
        "costguard/Digests/Recommendations/Function AwsSolutions-L1",
        "costguard/Digests/Recommendations/Role AwsSolutions-IAM5[Resource::*]",
        "costguard/Onboarding/Handler/Function AwsSolutions-L1",
        "costguard/Onboarding/Handler/Role AwsSolutions-IAM5[Resource::*]",
        "costguard/Schedules/Anomaly/Function AwsSolutions-L1",
        "costguard/Schedules/Anomaly/Role AwsSolutions-IAM5[Resource::*]",
        "costguard/Schedules/Forecast/Function AwsSolutions-L1",
        "costguard/Schedules/Forecast/Role AwsSolutions-IAM5[Resource::*]",
        "costguard/Sweeper/Handler/Function AwsSolutions-L1",
        "costguard/Sweeper/Handler/Role AwsSolutions-IAM5[Resource::*]",
    ]
    assert all(len(reason) >= 80 for reason in acknowledged.values())


def test_cdk_nag_does_report_what_is_not_acknowledged() -> None:
    """The check above is not vacuous: the same pack fails an unprotected topic."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_sns as sns
    from cdk_nag import AwsSolutionsChecks

    app = App()
    sns.Topic(Stack(app, "Canary"), "Topic")
    report = AwsSolutionsChecks().validate_scope(app)
    assert not report.success
    assert "AwsSolutions-SNS3" in {v.rule_name for v in report.violations}


def test_the_app_runs_cdk_nag_on_every_synth(synth: Synth) -> None:
    """`cdk synth` fails on a finding: the app registers the pack as a validation plugin.

    (Python has no `Validations.of(app).plugins` yet; the deprecated stage property is the
    one way to see the registered plugins, and it prints a deprecation notice.)
    """
    assert [p.name for p in synth.app.policy_validation_beta1] == ["AwsSolutions"]


def test_a_finding_fails_the_synth(tmp_path: Path) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_sns as sns

    from infra.app import add_checks

    app = App(outdir=str(tmp_path))
    sns.Topic(Stack(app, "Canary"), "Topic")
    add_checks(app)
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*AwsSolutions-SNS3"):
        app.synth()

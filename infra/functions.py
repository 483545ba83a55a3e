"""The one factory every costguard Lambda goes through: same runtime, arch, logs, tracing, role.

A function gets its own role with no managed policy: only its log group, X-Ray, and what the
construct that owns it grants (the ledger's table actions, a secret).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stage
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from costguard.topology import Function

from infra import packaging
from infra.config import Config
from infra.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
if RUNTIME.name != f"python{packaging.PYTHON_VERSION}":
    raise RuntimeError(f"{RUNTIME.name}: assets are built for Python {packaging.PYTHON_VERSION}")


def lambda_code(scope: Construct, name: str, config: Config) -> lambda_.Code:
    """The function's asset, staged under the app's output directory (see packaging.py)."""
    stage = Stage.of(scope)
    if stage is None:
        raise ValueError("a function must be inside an App (its assets go to the app's outdir)")
    build = Path(stage.outdir) / ".costguard-build"
    target = packaging.HOST if config.asset_target == "host" else packaging.LAMBDA
    if not config.bundle:  # sources only: enough to synthesize and check the template
        return lambda_.Code.from_asset(str(packaging.stage_function(name, build, None)))
    dependencies = packaging.build_dependencies(build, target=target)
    asset = packaging.stage_function(name, build, dependencies, target)
    return lambda_.Code.from_asset(str(asset))


class PythonFunction(Construct):
    """One costguard function of the topology (costguard/topology.py: handler, memory, timeout):
    arm64, RUNTIME, X-Ray active, its own log group and role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: Function,
        config: Config,
        table: dynamodb.ITableV2,
        environment: dict[str, str] | None = None,
        retry_attempts: int | None = None,
        max_event_age: Duration | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = logs.LogGroup(self, "Logs", retention=config.retention)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"costguard {spec.name} function",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy (logs:* on every group).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=lambda_code(self, spec.name, config),
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
            dead_letter_queue=dead_letter_queue,
            environment={
                "POWERTOOLS_SERVICE_NAME": spec.service,
                "POWERTOOLS_LOG_LEVEL": config.log_level,
                "POWERTOOLS_LOGGER_SAMPLE_RATE": str(config.log_sample_rate),
                "COSTGUARD_TABLE_NAME": table.table_name,
                **config.settings_environment(),
                **(environment or {}),
            },
        )
        if config.otel_collector_layer_arn is not None:
            self.function.add_layers(
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Collector", config.otel_collector_layer_arn
                )
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which "
            "support no resource-level permissions: their resource must be *.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "costguard targets Python 3.13 on Lambda (the platform contract: 3.12/3.13, code "
            "importable on 3.11); moving to the newest runtime is a deliberate, tested upgrade.",
        )

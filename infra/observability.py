"""Operations: the alarms topic (CloudWatch may publish to it), one dashboard, the alarms.

Alarms on costguard's own metrics name the function's service with `costguard.services`, the
constants its POWERTOOLS_SERVICE_NAME is set from: tests/infra/test_rehearsal.py runs every
function and compares the dimensions it really emits with the template's alarms.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from costguard import services

from infra.api import Api
from infra.config import Config
from infra.functions import PythonFunction

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        api: Api,
        functions: Sequence[PythonFunction],
        alarms: Sequence[cloudwatch.Alarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # Not encrypted at rest: CloudWatch alarms cannot publish to a topic under the
        # AWS-managed aws/sns key, and these messages carry alarm names and metric values, no
        # tenant data (quota alerts have their own, encrypted topic: infra/alerts.py).
        self.alarms_topic = sns.Topic(
            self, "Alarms", display_name="costguard alarms", enforce_ssl=True
        )
        allow_cloudwatch(self.alarms_topic)
        for email in config.alarm_emails:
            self.alarms_topic.add_subscription(subscriptions.EmailSubscription(email))
        notify = actions.SnsAction(self.alarms_topic)

        http_api = api.http_api
        self.alarms: list[cloudwatch.Alarm] = [
            http_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum").create_alarm(
                self,
                "Api5xx",
                alarm_description="costguard API answered 5xx (ledger unavailable, or a bug)",
                threshold=config.api_5xx_alarm_threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        ]
        for fn in functions:
            name = fn.spec.name.capitalize()
            for kind, metric in (
                ("Errors", fn.function.metric_errors(period=FIVE_MINUTES, statistic="Sum")),
                ("Throttles", fn.function.metric_throttles(period=FIVE_MINUTES, statistic="Sum")),
            ):
                self.alarms.append(
                    metric.create_alarm(
                        self,
                        f"{name}{kind}",
                        alarm_description=f"costguard {fn.spec.name} function: {kind.lower()}",
                        threshold=1,
                        evaluation_periods=1,
                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                    )
                )
        for stage, threshold, why in (
            ("ledger_write", 5, "the ledger refused or could not be reached (503s, corruption)"),
            ("unknown", 1, "an error no stage claims: a bug"),
        ):
            self.alarms.append(
                failures(stage, services.API, FIVE_MINUTES).create_alarm(
                    self,
                    f"ApiFailures{stage.title().replace('_', '')}",
                    alarm_description=f"costguard API failures at stage {stage}: {why}",
                    threshold=threshold,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        self.alarms.append(
            cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name="AlertsUndeliverable",
                dimensions_map={"service": services.SWEEPER},
                period=FIVE_MINUTES,
                statistic="Sum",
            ).create_alarm(
                self,
                "AlertsUndeliverable",
                alarm_description=(
                    "costguard alerts: an alert could not be published after every redrive "
                    "(about three hours) and was marked failed; GET the tenant's alerts for "
                    "its last_error, fix SNS / EventBridge, then publish it by hand."
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        self.alarms.extend(alarms)
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)

        stack_name = Stack.of(self).stack_name
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=Fn.join("-", [stack_name, Aws.REGION]),
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests",
                left=[http_api.metric_count(period=ONE_MINUTE, statistic="Sum", label="requests")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API 4xx / 5xx",
                left=[
                    http_api.metric_client_error(period=ONE_MINUTE, statistic="Sum", label="4xx"),
                    http_api.metric_server_error(period=ONE_MINUTE, statistic="Sum", label="5xx"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    http_api.metric_latency(period=ONE_MINUTE, statistic="p50", label="p50"),
                    http_api.metric_latency(period=ONE_MINUTE, statistic="p99", label="p99"),
                    http_api.metric_integration_latency(
                        period=ONE_MINUTE, statistic="p99", label="integration p99"
                    ),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors / throttles",
                left=[
                    metric
                    for fn in functions
                    for metric in (
                        fn.function.metric_errors(
                            period=ONE_MINUTE, statistic="Sum", label=f"{fn.spec.name} errors"
                        ),
                        fn.function.metric_throttles(
                            period=ONE_MINUTE, statistic="Sum", label=f"{fn.spec.name} throttles"
                        ),
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration (ms)",
                left=[
                    fn.function.metric_duration(
                        period=ONE_MINUTE, statistic=stat, label=f"{fn.spec.name} {stat}"
                    )
                    for fn in functions
                    for stat in ("p50", "p99")
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Holds returned by the sweeper",
                left=[
                    cloudwatch.Metric(
                        namespace="costguard",
                        metric_name="HoldsExpired",
                        dimensions_map={"service": services.SWEEPER},
                        period=ONE_MINUTE,
                        statistic="Sum",
                        label="holds expired",
                    )
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Spend per hour (USD, committed and recorded)",
                left=[
                    cloudwatch.Metric(
                        namespace=NAMESPACE,
                        metric_name="SpendUsd",
                        dimensions_map={"service": services.API},
                        period=Duration.hours(1),
                        statistic="Sum",
                        label="USD / hour",
                    )
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Denials (429) by scope and resource",
                left=[search("Denials", "resource,scope,service", "Sum")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Failures by stage",
                left=[search("Failures", "service,stage", "Sum")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Ledger write latency (ms): reserve, commit, record",
                left=[
                    cloudwatch.Metric(
                        namespace=NAMESPACE,
                        metric_name="LedgerMs.TransactWriteItems",
                        dimensions_map={"service": services.API},
                        period=ONE_MINUTE,
                        statistic=stat,
                        label=f"TransactWriteItems {stat}",
                    )
                    for stat in ("p50", "p99")
                ],
                width=6,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24)
        )


NAMESPACE = "costguard"


def allow_cloudwatch(topic: sns.Topic) -> None:
    """Let this account's CloudWatch alarms publish to `topic`.

    `enforce_ssl=True` makes CDK write a topic policy holding only its Deny; a topic policy
    replaces SNS's default one, so without this statement CloudWatch is refused on publish and
    no alarm reaches anyone. Scoped by aws:SourceAccount and aws:SourceArn (confused deputy).
    """
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:"
                    f"{Aws.ACCOUNT_ID}:alarm:*"
                },
            },
        )
    )


def failures(stage: str, service: str, period: Duration) -> cloudwatch.Metric:
    """Failures attributed to a stage (shared/costguard/telemetry.py) of one function."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name="Failures",
        dimensions_map={"service": service, "stage": stage},
        period=period,
        statistic="Sum",
    )


def search(metric: str, dimensions: str, statistic: str) -> cloudwatch.MathExpression:
    """Every series of a dimensional metric, whatever values its dimensions take."""
    return cloudwatch.MathExpression(
        expression=(
            f"SEARCH('{{{NAMESPACE},{dimensions}}} MetricName=\"{metric}\"', '{statistic}', 300)"
        ),
        label=metric,
        period=FIVE_MINUTES,
    )

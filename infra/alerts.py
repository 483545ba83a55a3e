"""Threshold alerts: the ledger's stream → the alerts function → the alerts topic → Slack, e-mail.

The topic carries tenant names and spend, so it is encrypted with a customer-managed key
(rotated). The stream mapping reports partial batch failures, bisects a failing batch, retries
a bounded number of times within a bounded record age, and sends what it gives up on to an
SQS queue; the Slack notifier's failed invocations go to their own queue. Alarms watch the
iterator age and both queues.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from costguard.topology import LEDGER_STREAM, SLACK

from infra.config import Config
from infra.functions import PythonFunction
from infra.ledger import ALERTS_ACCESS, LedgerStorage
from infra.nag import acknowledge

STREAM_RETRIES = 10
STREAM_MAX_RECORD_AGE = Duration.hours(6)
ITERATOR_AGE_ALARM_MS = 60_000
# The topology's filters (costguard/topology.py LEDGER_STREAM.accepts, which `make run` applies)
STREAM_FILTERS = (
    [
        lambda_.FilterCriteria.filter(
            {"dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.begins_with(prefix)}}}}
        )
        for prefix in LEDGER_STREAM.changed_prefixes
    ]
    + [
        lambda_.FilterCriteria.filter(
            {
                "eventName": lambda_.FilterRule.is_equal("INSERT"),
                "dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.begins_with(prefix)}}},
            }
        )
        for prefix in LEDGER_STREAM.inserted_prefixes
    ]
    + [
        lambda_.FilterCriteria.filter({"dynamodb": {"NewImage": {flag: {"BOOL": [True]}}}})
        for flag in LEDGER_STREAM.flags
    ]
)


def failure_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """Where Lambda puts what it gave up on. SQS-managed encryption: the senders need no KMS
    grant, and the messages are pointers (stream positions, the failed invocation's event)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself a dead-letter queue (a Lambda on-failure destination): nothing "
        "consumes it automatically, an alarm on its depth calls an operator.",
    )
    return queue


def queue_alarm(
    scope: Construct, construct_id: str, queue: sqs.Queue, what: str
) -> cloudwatch.Alarm:
    return queue.metric_approximate_number_of_messages_visible(
        period=Duration.minutes(5), statistic="Maximum"
    ).create_alarm(
        scope,
        construct_id,
        alarm_description=f"costguard: {what}",
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


class Alerts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        ledger: LedgerStorage,
    ) -> None:
        """The bus is granted by the stack (EventBus.grant_put_events_to) to the publishers."""
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="costguard quota alerts topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="costguard quota alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        for email in config.alert_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        environment = {"COSTGUARD_ALERTS_TOPIC_ARN": self.topic.topic_arn}
        self.environment = environment
        self.handler = PythonFunction(
            self,
            "Handler",
            spec=LEDGER_STREAM.function,
            config=config,
            table=ledger.table,
            environment=environment,
        )
        self.function = self.handler.function
        ledger.grant(self.function, ALERTS_ACCESS)
        self.grant_publish(self.function)

        self.stream_failures = failure_queue(self, "StreamFailures")
        self.function.add_event_source(
            sources.DynamoEventSource(
                ledger.table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=LEDGER_STREAM.batch_size,
                max_batching_window=Duration.seconds(LEDGER_STREAM.batching_window_seconds),
                bisect_batch_on_error=True,
                retry_attempts=STREAM_RETRIES,
                max_record_age=STREAM_MAX_RECORD_AGE,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.stream_failures),
                filters=STREAM_FILTERS,
            )
        )
        self.alarms = [
            self.function.metric(
                "IteratorAge", period=Duration.minutes(5), statistic="Maximum"
            ).create_alarm(
                self,
                "IteratorAge",
                alarm_description="costguard alerts: the ledger stream is falling behind",
                threshold=ITERATOR_AGE_ALARM_MS,
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            queue_alarm(
                self,
                "StreamFailuresAlarm",
                self.stream_failures,
                "stream records the alerts function gave up on (see the StreamFailures queue)",
            ),
        ]

        self.slack: PythonFunction | None = None
        if config.slack_webhook_secret_name:
            self._slack(config, ledger)

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """Publish alerts to the topic (and exactly the two key actions SNS needs)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        self.key.grant(grantee, "kms:Decrypt", "kms:GenerateDataKey")

    def _slack(self, config: Config, ledger: LedgerStorage) -> None:
        secret = secretsmanager.Secret.from_secret_name_v2(
            self, "SlackWebhook", str(config.slack_webhook_secret_name)
        )
        self.slack = PythonFunction(
            self,
            "Slack",
            spec=SLACK,
            config=config,
            table=ledger.table,
            environment={"COSTGUARD_SLACK_WEBHOOK_SECRET": secret.secret_name},
        )
        fn = self.slack.function
        secret.grant_read(fn)
        self.slack_failures = failure_queue(self, "SlackFailures")
        fn.configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.slack_failures),
        )
        self.topic.add_subscription(subscriptions.LambdaSubscription(fn))
        self.alarms.append(
            queue_alarm(
                self,
                "SlackFailuresAlarm",
                self.slack_failures,
                "alerts Slack did not take after every retry (see the SlackFailures queue)",
            )
        )

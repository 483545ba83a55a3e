"""Tenant onboarding: a rule on the bus sends `TenantCreated` to the function that seeds the
default quotas; whatever cannot be seeded ends in one encrypted dead-letter queue, alarmed.

Three ways into the queue, one message shape (the EventBridge event as the body):
- EventBridge could not hand the event to Lambda (target retry policy exhausted);
- the function failed on it three times (Lambda's async retries; e.g. the ledger unreachable);
- the event is malformed (no or bad tenant id, unknown plan and no fallback): the function sends
  it there itself with the reason and succeeds, so it is not retried (docs/decisions.md).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from costguard import services
from costguard.topology import TENANT_CREATED_ROUTE

from infra.bus import EventBus
from infra.config import Config
from infra.functions import PythonFunction
from infra.ledger import ONBOARDING_ACCESS, LedgerStorage

ROUTE = TENANT_CREATED_ROUTE
LAMBDA_RETRIES = ROUTE.retries
"""Lambda's async retries (the most it allows), about 1 and 2 minutes apart."""
MAX_EVENT_AGE = Duration.hours(6)
"""Lambda's default: an event still failing after this goes to the queue."""
DELIVERY_RETRIES = 10
DELIVERY_MAX_AGE = Duration.hours(1)
"""EventBridge → Lambda delivery (only fails if Lambda refuses the async invoke)."""
FIVE_MINUTES = Duration.minutes(5)


class Onboarding(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        ledger: LedgerStorage,
        bus: EventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.plans_environment = config.onboarding_environment()
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # EventBridge can send to SSE-SQS
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.handler = PythonFunction(
            self,
            "Handler",
            spec=ROUTE.function,
            config=config,
            table=ledger.table,
            environment={
                **self.plans_environment,
                "COSTGUARD_DEAD_LETTER_QUEUE_URL": self.dead_letters.queue_url,
            },
            retry_attempts=LAMBDA_RETRIES,
            max_event_age=MAX_EVENT_AGE,
            dead_letter_queue=self.dead_letters,  # also sqs:SendMessage for the malformed
        )
        self.function = self.handler.function
        ledger.grant(self.function, ONBOARDING_ACCESS)
        self.rule = events.Rule(
            self,
            "TenantCreated",
            event_bus=bus.bus,
            description=f"costguard: {ROUTE.description}",
            event_pattern=events.EventPattern(
                detail_type=[ROUTE.detail_type], source=config.tenant_created_pattern_sources
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=DELIVERY_RETRIES,
                    max_event_age=DELIVERY_MAX_AGE,
                )
            ],
        )
        self.alarms = [
            self.dead_letters.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            ).create_alarm(
                self,
                "DeadLettersAlarm",
                alarm_description=(
                    "costguard onboarding: TenantCreated events in the dead-letter queue — "
                    "tenants without default quotas. The ErrorMessage attribute says why; fix, "
                    "then put the message body back on the bus."
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Metric(
                namespace="costguard",
                metric_name="TenantCreatedUnpublished",
                dimensions_map={"service": services.API},
                period=FIVE_MINUTES,
                statistic="Sum",
            ).create_alarm(
                self,
                "UnpublishedAlarm",
                alarm_description=(
                    "costguard API: TenantCreated could not be put on the bus. The API seeded "
                    "the default quotas itself; other subscribers of the event missed it."
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]

    def seed_directly_from(self, emitter: PythonFunction) -> None:
        """A function that announces tenants seeds them itself when the bus refuses the event:
        it gets the same plans (its table access already covers seeding)."""
        for name, value in self.plans_environment.items():
            emitter.function.add_environment(name, value)

"""The weekly recommendations digest: one EventBridge schedule (Monday 07:00 UTC), one function.

The run reads (the `active` index, each tenant's records, counters, policy and prices) and
writes only its digest alert (marker and record in one transaction, so PutItem): the alerts
function delivers it from the stream like every other alert, so no SNS or EventBridge rights
here. Retries and the dead-letter queue are the other schedules' (infra/schedules.py).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from costguard.topology import DIGEST_SCHEDULE

from infra.config import Config
from infra.functions import PythonFunction
from infra.ledger import LedgerStorage, TableAccess
from infra.schedules import schedule_of

DIGEST_ACCESS = TableAccess(
    # costguard.recommendations: tenants (Query of `active`), cost records, prices (Query),
    # the policy (GetItem), counters of past periods (BatchGetItem), the digest (PutItem of
    # its marker and record inside a transaction).
    table=("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"),
    active_index=("dynamodb:Query",),
)
RETRIES = 2


class RecommendationDigests(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        ledger: LedgerStorage,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Recommendations",
            spec=DIGEST_SCHEDULE.function,
            config=config,
            table=ledger.table,
            retry_attempts=RETRIES,
            max_event_age=Duration.hours(6),
            dead_letter_queue=dead_letters,
        )
        ledger.grant(self.handler.function, DIGEST_ACCESS)
        self.rule = events.Rule(
            self,
            "WeeklySchedule",
            description=f"costguard: {DIGEST_SCHEDULE.description}",
            schedule=schedule_of(DIGEST_SCHEDULE, config),
            targets=[
                targets.LambdaFunction(
                    self.handler.function,
                    dead_letter_queue=dead_letters,
                    retry_attempts=RETRIES,
                    max_event_age=Duration.hours(1),
                )
            ],
        )

"""Anomaly detection (hourly) and forecasts (every 6 hours): two EventBridge schedules, two
functions, one encrypted dead-letter queue for runs that failed every retry, alarms.

A run reads the `active` index and rollups, and writes only alert records and forecasts
(the alerts function delivers the alerts from the stream): no SNS or EventBridge rights.
A failed run is retried twice by Lambda (it is idempotent: alerts are deduplicated, forecasts
replaced); a run that still fails, or that EventBridge could not start, lands in the queue.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from costguard.topology import ANOMALY_SCHEDULE, FORECAST_SCHEDULE, Schedule

from infra.config import Config
from infra.functions import PythonFunction
from infra.ledger import ANOMALY_ACCESS, FORECAST_ACCESS, LedgerStorage, TableAccess

LAMBDA_RETRIES = 2
FIVE_MINUTES = Duration.minutes(5)
ONE_HOUR = Duration.hours(1)


def schedule_of(schedule: Schedule, config: Config) -> events.Schedule:
    """The EventBridge schedule of a topology schedule in this deployment: its rate (the
    context may change it) or its weekly cron."""
    if schedule.weekly is not None:
        weekly = schedule.weekly
        return events.Schedule.cron(
            week_day=weekly.day, hour=str(weekly.hour), minute=str(weekly.minute)
        )
    return events.Schedule.rate(Duration.minutes(config.rate_minutes(schedule)))


class Schedules(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, ledger: LedgerStorage
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # EventBridge can send to SSE-SQS
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.handlers: list[PythonFunction] = []
        self.rules: list[events.Rule] = []
        self.alarms: list[cloudwatch.Alarm] = []
        for schedule, access in (
            (ANOMALY_SCHEDULE, ANOMALY_ACCESS),
            (FORECAST_SCHEDULE, FORECAST_ACCESS),
        ):
            self._schedule(config, ledger, schedule, access)
        self.anomaly, self.forecast = self.handlers
        self.alarms.append(
            self.dead_letters.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            ).create_alarm(
                self,
                "DeadLettersAlarm",
                alarm_description=(
                    "costguard schedules: an anomaly or forecast run failed every retry (the "
                    "ledger unreachable, or a bug); the next scheduled run repeats the work."
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )

    def _schedule(
        self,
        config: Config,
        ledger: LedgerStorage,
        schedule: Schedule,
        access: TableAccess,
    ) -> None:
        spec = schedule.function
        minutes = config.rate_minutes(schedule)
        name = spec.name.capitalize()
        handler = PythonFunction(
            self,
            name,
            spec=spec,
            config=config,
            table=ledger.table,
            retry_attempts=LAMBDA_RETRIES,
            max_event_age=Duration.minutes(min(minutes, 360)),
            dead_letter_queue=self.dead_letters,
        )
        ledger.grant(handler.function, access)
        rule = events.Rule(
            self,
            f"{name}Schedule",
            description=f"costguard: {schedule.description}",
            schedule=schedule_of(schedule, config),
            targets=[
                targets.LambdaFunction(
                    handler.function,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=LAMBDA_RETRIES,
                    max_event_age=ONE_HOUR,
                )
            ],
        )
        self.alarms.append(
            cloudwatch.Metric(
                namespace="costguard",
                metric_name="TenantsSkipped",
                dimensions_map={"service": spec.service},
                period=ONE_HOUR,
                statistic="Sum",
            ).create_alarm(
                self,
                f"{name}SkippedAlarm",
                alarm_description=(
                    f"costguard {spec.name}: a run reached its deadline before every active "
                    "tenant (the next run starts elsewhere in the list); raise the memory or "
                    "COSTGUARD_SCHEDULE_WORKERS, see bench/results/schedules.md."
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        self.handlers.append(handler)
        self.rules.append(rule)

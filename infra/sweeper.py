"""The expiry sweeper: an EventBridge schedule runs functions/sweeper every minute (D5; the rate
is costguard/topology.py's SWEEP, `costguard:sweep_rate_minutes` changes it)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct
from costguard.topology import HELD_SWEEP, SWEEP

from infra.alerts import Alerts
from infra.config import Config
from infra.functions import PythonFunction
from infra.ledger import SWEEPER_ACCESS, LedgerStorage
from infra.schedules import schedule_of


class Sweeper(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        ledger: LedgerStorage,
        alerts: Alerts,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Handler",
            spec=SWEEP.function,
            config=config,
            table=ledger.table,
            environment={
                **alerts.environment,
                # Its walk of counters with in-item holds (D104); the default is not written.
                **(
                    {"COSTGUARD_HELD_SWEEP_MINUTES": str(config.held_sweep_minutes)}
                    if config.held_sweep_minutes != HELD_SWEEP
                    else {}
                ),
            },
            # A failed sweep is not retried: the next scheduled one does the same work.
            retry_attempts=0,
        )
        self.function = self.handler.function
        ledger.grant(self.function, SWEEPER_ACCESS)
        alerts.grant_publish(self.function)  # redelivery of alerts the stream gave up on
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"costguard: {SWEEP.description}",
            schedule=schedule_of(SWEEP, config),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )

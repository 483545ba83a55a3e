"""The costguard stack: ledger storage, API, sweeper, observability. Env-agnostic (no lookups)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra.alerts import Alerts
from infra.api import Api
from infra.bus import EventBus
from infra.config import Config
from infra.digests import RecommendationDigests
from infra.ledger import LedgerStorage
from infra.observability import Observability
from infra.onboarding import Onboarding
from infra.schedules import Schedules
from infra.sweeper import Sweeper


class CostguardStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kw: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description="costguard: atomic spend quotas for multi-tenant AI products",
            **kw,
        )
        Tags.of(self).add("project", "costguard")
        self.ledger = LedgerStorage(self, "Ledger", table_name=config.table_name)
        self.bus = EventBus(self, "Events", config=config)
        self.api = Api(self, "Api", config=config, ledger=self.ledger)
        self.bus.grant_put_events_to(self.api.handler)  # POST /v1/tenants: TenantCreated
        self.onboarding = Onboarding(
            self, "Onboarding", config=config, ledger=self.ledger, bus=self.bus
        )
        self.onboarding.seed_directly_from(self.api.handler)  # when the bus refuses the event
        self.alerts = Alerts(self, "Alerts", config=config, ledger=self.ledger)
        self.sweeper = Sweeper(
            self, "Sweeper", config=config, ledger=self.ledger, alerts=self.alerts
        )
        for publisher in (self.alerts.handler, self.sweeper.handler):  # QuotaThresholdCrossed…
            self.bus.grant_put_events_to(publisher)
        self.schedules = Schedules(self, "Schedules", config=config, ledger=self.ledger)
        self.digests = RecommendationDigests(
            self,
            "Digests",
            config=config,
            ledger=self.ledger,
            dead_letters=self.schedules.dead_letters,
        )
        functions = [
            self.api.handler,
            self.sweeper.handler,
            self.alerts.handler,
            self.onboarding.handler,
            *self.schedules.handlers,
            self.digests.handler,
        ]
        if self.alerts.slack is not None:
            functions.append(self.alerts.slack)
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            api=self.api,
            functions=functions,
            alarms=[*self.alerts.alarms, *self.onboarding.alarms, *self.schedules.alarms],
        )

        outputs = {
            "ApiUrl": (self.api.url, "base URL of the HTTP API (routes under /v1)"),
            "TableName": (self.ledger.table.table_name, "the ledger table (retained on delete)"),
            "AdminKeySecretArn": (
                self.api.admin_key.secret_arn,
                "aws secretsmanager get-secret-value --secret-id <this> "
                "--query SecretString --output text",
            ),
            "AlertsTopicArn": (
                self.alerts.topic.topic_arn,
                "quota alerts (threshold, anomaly, forecast): subscribe e-mail, Slack, SQS here",
            ),
            "AlarmsTopicArn": (
                self.observability.alarms_topic.topic_arn,
                "operations alarms (5xx, function errors, failure queues, stream lag)",
            ),
            "EventBusName": (
                self.bus.bus.event_bus_name,
                "put TenantCreated here (detail: tenant_id, plan) to seed default quotas",
            ),
            "OnboardingDeadLetterQueueUrl": (
                self.onboarding.dead_letters.queue_url,
                "TenantCreated events that seeded nothing (attribute ErrorMessage says why)",
            ),
            "DashboardName": (
                self.observability.dashboard.dashboard_name,
                "CloudWatch dashboard: API traffic, errors, latency; Lambda errors, throttles",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

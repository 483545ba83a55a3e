"""The HTTP API: API Gateway (HTTP API, payload 2.0) → one Lambda for every route (D12).

Keys are checked in the handler (D13), so the route has no API Gateway authorizer. The
bootstrap admin key is generated into Secrets Manager; only this function may read it.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct
from costguard.topology import API

from infra.config import Config
from infra.functions import PythonFunction
from infra.ledger import API_ACCESS, LedgerStorage
from infra.nag import acknowledge

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "requestTime": "$context.requestTime",
        "method": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "path": "$context.path",
        "protocol": "$context.protocol",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integration.latency",
        "integrationStatus": "$context.integration.status",
        "integrationError": "$context.integrationErrorMessage",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)
"""One JSON line per request. No header is logged: API keys never reach the access log."""

CORS_HEADERS = ["authorization", "content-type", "idempotency-key", "prefer", "accept"]


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT)


class Api(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, ledger: LedgerStorage
    ) -> None:
        super().__init__(scope, construct_id)
        self.admin_key = secretsmanager.Secret(
            self,
            "AdminKey",
            description="costguard bootstrap admin key: Authorization: Bearer <this value>",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
        )
        acknowledge(
            self.admin_key,
            "AwsSolutions-SMG4",
            "The bootstrap admin key is a bearer token held by operators: a scheduled rotation "
            "would change it under them with no rotation Lambda to hand the new one out. It is "
            "rotated by hand (docs/infrastructure.md).",
        )
        self.handler = PythonFunction(
            self,
            "Handler",
            spec=API,
            config=config,
            table=ledger.table,
            environment={"COSTGUARD_ADMIN_KEY_SECRET_ARN": self.admin_key.secret_arn},
        )
        self.function = self.handler.function
        ledger.grant(self.function, API_ACCESS)
        self.admin_key.grant_read(self.function)

        cors = (
            apigwv2.CorsPreflightOptions(
                allow_origins=list(config.cors_origins),
                allow_methods=[apigwv2.CorsHttpMethod.ANY],
                allow_headers=CORS_HEADERS,
                expose_headers=["retry-after", "location"],
                max_age=Duration.hours(1),
            )
            if config.cors_origins
            else None
        )
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{Stack.of(self).stack_name}-api",
            description="costguard: reserve, commit, release against atomic quotas",
            create_default_stage=False,
            cors_preflight=cors,
            default_integration=HttpLambdaIntegration(
                "Handler",
                self.function,
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            ),
        )
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=config.retention)
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                burst_limit=config.throttle_burst, rate_limit=config.throttle_rate
            ),
            access_log_settings=_AccessLogs(self.access_logs),
        )
        acknowledge(
            self.http_api,
            "AwsSolutions-APIG4",
            "Every request is authenticated in the Lambda by its Bearer key (docs/decisions.md "
            "D13: one cached GetItem instead of a Lambda authorizer's extra invocation per cache "
            "miss); a route without an access rule is refused (D14).",
        )

    @property
    def url(self) -> str:
        return self.http_api.api_endpoint

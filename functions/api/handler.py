"""The HTTP API: one Lambda behind API Gateway (HTTP API, payload 2.0). Routes in routes/."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard.settings import get_settings

from functions.api import errors
from functions.api.access import RULES, Access, authorize, bearer
from functions.api.deps import get_keys
from functions.api.problems import problem
from functions.api.routes import admin, alerts, health, quotas, spend, usage

logger = Logger(service="costguard-api")
app = APIGatewayHttpResolver(enable_validation=True)
for module in (health, spend, quotas, usage, alerts, admin):
    app.include_router(module.router)
errors.register(app)


def guard(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Any:
    """Every route passes here: who is calling, and may they call this route for this tenant."""
    route = resolver.context["_route"]
    rule = RULES.get((route.method, route.path))
    token = bearer(resolver.current_event.headers or {})
    keys = resolver.dependency_overrides.get(get_keys, get_keys)()
    principal = keys.verify(token) if token and rule is not Access.PUBLIC else None
    authorize(rule, principal, resolver.context.get("_route_args", {}).get("tenant_id"))
    resolver.append_context(principal=principal)
    return next_middleware(resolver)


app.use(middlewares=[guard])


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    limit = get_settings().max_body_bytes
    if len(body) > limit:
        answer = problem(
            413, "body-too-large", "Body too large", f"the body may be at most {limit} bytes"
        )
        return {
            "statusCode": 413,
            "headers": {"Content-Type": answer.content_type},
            "body": answer.body,
        }
    headers = event.get("headers") or {}
    if body and "json" not in headers.get("content-type", ""):
        # Every body this API takes is JSON; a client that forgot the header (curl -d sends
        # a form type) gets its JSON read as JSON rather than a puzzling field error.
        event = {**event, "headers": {**headers, "content-type": "application/json"}}
    return app.resolve(event, context)

"""The HTTP API: one Lambda behind API Gateway (HTTP API, payload 2.0). Routes in routes/."""
# ruff: noqa: E402 - the collector is off before the imports (below)

from __future__ import annotations

import gc

# A cold start makes ≈ 90,000 objects that live as long as the process (modules, classes,
# pydantic schemas): the collector would walk them again and again while they are made
# (≈ 45 ms here), and on every full collection afterwards. None is collected while the
# handler is imported; then they are frozen out of the collector's reach (D122).
gc.disable()

import base64
import binascii
import functools
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, depends
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware, openapi_validation
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.errors import BODY_TOO_LARGE, MALFORMED_JSON, InvalidRequest
from costguard.settings import get_settings

from functions.api import errors
from functions.api.access import RULES, Access, authorize, bearer, check_path
from functions.api.deps import get_keys
from functions.api.problems import refuse
from functions.api.routes import admin, alerts, forecast, health, quotas, spend, usage
from functions.api.routes import console as console_routes
from functions.api.routes import recommendations as insights

logger = Logger(service=services.API)
metrics = telemetry.function_metrics(services.API)
telemetry.configure_tracing()
app = APIGatewayHttpResolver(enable_validation=True)
for module in (health, spend, quotas, usage, alerts, forecast, admin, insights, console_routes):
    app.include_router(module.router)
errors.register(app)


def guard(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Any:
    """Every route passes here: who is calling, may they call this route for this tenant, and
    are the path's parameters of the shape the route declares."""
    if "principal" in resolver.context:
        return next_middleware(resolver)  # guarded already, ahead of the request validation
    route = resolver.context["_route"]
    rule = RULES.get((route.method, route.path))
    if rule is None and route.rule.pattern == NOT_FOUND_PATTERN:
        # Powertools sends an unmatched request through the middlewares too, on a catch-all
        # route of its own: let it reach the not-found handler (404, or 405 with Allow).
        return next_middleware(resolver)
    tenant_id = resolver.context.get("_route_args", {}).get("tenant_id")
    telemetry.annotate(**{"http.route": route.path, "tenant_id": tenant_id})
    if tenant_id:
        logger.append_keys(tenant_id=tenant_id)
    with telemetry.span("authorize", rule=rule.value if rule else "none"):
        token = bearer(resolver.current_event.headers or {})
        principal = None
        if token and rule is not Access.PUBLIC:
            # Only here: a public route (health, docs) never reads the keys, so it answers
            # even when the admin-key secret or the key store cannot be read.
            keys = resolver.dependency_overrides.get(get_keys, get_keys)()
            principal = keys.verify(token)
        authorize(rule, principal, tenant_id)
        telemetry.annotate(role=principal.role if principal else None)
    resolver.append_context(principal=principal)
    check_path(route.path, resolver.context.get("_route_args", {}))
    return next_middleware(resolver)


def an_object_or_nothing(resolver: APIGatewayHttpResolver) -> None:
    """Every body this API takes is a JSON object. Powertools would read `[{...}]` as the object
    it holds (a list for a field that is not one gives its first item) and ignores the body of
    a route that reads none: an array or a scalar is refused here, for every route alike."""
    try:
        body = resolver.current_event.json_body  # parsed once: validation reads the same
    except ValueError:
        return  # not JSON at all: validation answers 400 malformed-json
    if body is not None and not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")


class GuardedValidation(OpenAPIRequestValidationMiddleware):
    """Powertools validates a request (path, query, headers, body) before any middleware runs:
    a request without a key and with an invalid body would be a 422 before its 401, a tenant key
    would learn an admin route's schema from its 422s. The guard goes first, then validation."""

    def handler(self, app: Any, next_middleware: NextMiddleware) -> Any:
        def validate(resolver: Any) -> Any:
            an_object_or_nothing(resolver)
            return super(GuardedValidation, self).handler(resolver, next_middleware)

        return guard(app, cast(NextMiddleware, validate))


# Powertools rebuilds a route's `Depends` tree from its type hints on every request
# (`typing.get_type_hints`, ForwardRefs compiled anew: ~8% of a guarded call's CPU, issue 22).
# The tree depends only on the route function's signature; overrides apply when solving it.
depends.build_dependency_tree = functools.cache(depends.build_dependency_tree)
# Solving the tree reads each dependency's type hints again, on every request (to inject a
# Request): the same per-request ForwardRef compile, 1 per request. A function's hints are
# fixed once it is defined.
depends.get_type_hints = functools.cache(depends.get_type_hints)  # type: ignore[attr-defined,assignment]
_is_scalar_field = openapi_validation.is_scalar_field  # type: ignore[attr-defined]
_scalar_fields: dict[int, tuple[Any, bool]] = {}


def _remembered_is_scalar_field(field: Any) -> bool:
    """Powertools asks, per request and header parameter, whether the parameter's type is a
    scalar (walking its annotation: 26 µs of a guarded call's two requests, D111); a route's
    parameters and their types are fixed once it is declared. Remembered per field (fields
    are not hashable; each is kept alive with its answer, so its id is never reused)."""
    known = _scalar_fields.get(id(field))
    if known is None or known[0] is not field:
        known = _scalar_fields[id(field)] = (field, _is_scalar_field(field))
    return known[1]


openapi_validation.is_scalar_field = _remembered_is_scalar_field  # type: ignore[attr-defined]
NOT_FOUND_PATTERN = app._compile_regex(r".*").pattern
app._request_validation_middleware = GuardedValidation()  # type: ignore[no-untyped-call]
# Also a middleware of its own (a no-op once guarded): a route without validation is guarded too.
app.use(middlewares=[guard])
gc.freeze()
gc.enable()


def _refuse(answer: Any) -> dict[str, Any]:
    """A problem answered before the resolver runs (the body cannot even be read)."""
    return {
        "statusCode": answer.status_code,
        "headers": {"Content-Type": answer.content_type},
        "body": answer.body,
    }


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    request_id = request.get("requestId")
    logger.set_correlation_id(request_id)  # read here: correlation_id_path ran JMESPath per call
    if not telemetry.tracing():
        with telemetry.request(request_id):
            return _handle(event, context)
    http = request.get("http") or {}
    try:
        with telemetry.tracer.start_as_current_span(
            "api.request", context=telemetry.lambda_parent()
        ) as span:
            telemetry.set_attributes(
                span,
                {
                    "http.request.method": http.get("method"),
                    "url.path": http.get("path"),
                    "request_id": request_id,
                },
            )
            with telemetry.request(request_id):
                answer = _handle(event, context)
            span.set_attribute("http.response.status_code", int(answer.get("statusCode", 0)))
            return answer
    finally:
        telemetry.flush()  # Lambda may freeze the process before a batch is exported


def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    limit = get_settings().max_body_bytes
    if len(body) > limit:
        return _refuse(refuse(BODY_TOO_LARGE, f"the body may be at most {limit} bytes"))
    if event.get("isBase64Encoded") and body:
        # API Gateway base64-encodes a body it does not take for text; every body this API
        # reads is UTF-8 JSON, so decode it here, once, and refuse bytes that are not text.
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _refuse(refuse(MALFORMED_JSON, "the body is not UTF-8 JSON"))
        event = {**event, "body": body, "isBase64Encoded": False}
    headers = event.get("headers") or {}
    if body and "json" not in headers.get("content-type", ""):
        # Every body this API takes is JSON; a client that forgot the header (curl -d sends
        # a form type) gets its JSON read as JSON rather than a puzzling field error.
        event = {**event, "headers": {**headers, "content-type": "application/json"}}
    return app.resolve(event, context)

"""Service routes: health, the OpenAPI document and interactive docs.

The OpenAPI models and the Swagger UI assets are imported on first use only: they cost
about a third of a cold start, and only these two routes need them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from costguard.models import Health

from functions.api.access import Access, route

router = Router()


@route(router, "GET", "/v1/health", Access.PUBLIC, summary="Liveness", tags=["service"])
def health() -> Health:
    return Health(status="ok", version="1")


@cache
def openapi_document(app: APIGatewayHttpResolver) -> str:
    """The OpenAPI document of `app`, generated from its routes and models (built once per
    process). The app is the caller's (`router.api_resolver` here): importing the handler from
    its own routes was an import circle."""
    import json

    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from functions.api.document import complete

    generated = app.get_openapi_json_schema(
        title="costguard",
        version="1",
        description="Spend only what each tenant and user is allowed to. "
        "Money is a decimal string in USD; errors are RFC 9457 problem+json.",
        security_schemes={"apiKey": HTTPBearer(description="Authorization: Bearer <api key>")},
        security=[{"apiKey": []}],
    )
    return json.dumps(complete(json.loads(generated)), indent=2)


def _app() -> APIGatewayHttpResolver:
    """The resolver this router was included in (set by `include_router`)."""
    resolver = router.api_resolver
    assert isinstance(resolver, APIGatewayHttpResolver)
    return resolver


@route(router, "GET", "/v1/openapi.json", Access.PUBLIC, include_in_schema=False)
def openapi() -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body=openapi_document(_app()))


@route(router, "GET", "/v1/docs", Access.PUBLIC, include_in_schema=False)
def docs() -> Response[Any]:
    import aws_lambda_powertools.event_handler as handler_package
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(handler_package.__file__).parent / "openapi" / "swagger_ui"
    body = generate_swagger_html(
        openapi_document(_app()).replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text("utf-8"),
        (assets / "swagger-ui.min.css").read_text("utf-8"),
        "",  # no base URL: the assets are inline
        None,
        False,
    )
    return Response(status_code=200, content_type="text/html", body=body)

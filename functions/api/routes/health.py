"""Service routes: health, the OpenAPI document and interactive docs.

The OpenAPI models and the Swagger UI assets are imported on first use only: they cost
about a third of a cold start, and only these two routes need them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from costguard.models import Health

from functions.api.access import Access, route

router = Router()


@route(router, "GET", "/v1/health", Access.PUBLIC, summary="Liveness", tags=["service"])
def health() -> Health:
    return Health(status="ok", version="1")


@cache
def openapi_document() -> str:
    """The OpenAPI document generated from the routes and models (built once per process)."""
    import json

    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from functions.api.document import complete
    from functions.api.handler import app

    generated = app.get_openapi_json_schema(
        title="costguard",
        version="1",
        description="Spend only what each tenant and user is allowed to. "
        "Money is a decimal string in USD; errors are RFC 9457 problem+json.",
        security_schemes={"apiKey": HTTPBearer(description="Authorization: Bearer <api key>")},
        security=[{"apiKey": []}],
    )
    return json.dumps(complete(json.loads(generated)), indent=2)


@route(router, "GET", "/v1/openapi.json", Access.PUBLIC, include_in_schema=False)
def openapi() -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body=openapi_document())


@route(router, "GET", "/v1/docs", Access.PUBLIC, include_in_schema=False)
def docs() -> Response[Any]:
    import aws_lambda_powertools.event_handler as handler_package
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(handler_package.__file__).parent / "openapi" / "swagger_ui"
    body = generate_swagger_html(
        openapi_document().replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text("utf-8"),
        (assets / "swagger-ui.min.css").read_text("utf-8"),
        None,
        None,
        False,
    )
    return Response(status_code=200, content_type="text/html", body=body)

"""Service routes: health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from costguard.models import Health

from functions.api.access import Access, route

router = Router()


@route(router, "GET", "/v1/health", Access.PUBLIC, summary="Liveness", tags=["service"])
def health() -> Health:
    return Health(status="ok", version="1")


@route(
    router,
    "GET",
    "/v1/openapi.json",
    Access.PUBLIC,
    summary="This API's OpenAPI document",
    tags=["service"],
    include_in_schema=False,
)
def openapi() -> dict[str, Any]:
    from functions.api.handler import app

    return dict(app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True))

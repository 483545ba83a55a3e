"""Reading alerts: threshold crossings, anomalies and forecasts, newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from costguard.alerts import AlertType, public_alert
from costguard.models import Alert, AlertPage

from functions.api.access import Access, route
from functions.api.deps import CURSOR, TENANT, AlertsDep
from functions.api.problems import respond

router = Router()

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[
    str | None,
    Query(pattern=CURSOR, description="`next_cursor` of the previous page"),
]
Type = Annotated[
    Literal["threshold", "anomaly", "forecast", "recommendation", "overrun"] | None,
    Query(alias="type"),
]


def _page(
    book: AlertsDep, tenant_id: str | None, limit: int, cursor: str | None, kind: str | None
) -> Response[AlertPage]:
    items, after = book.recent(
        tenant_id, limit=limit, cursor=cursor, alert_type=AlertType(kind) if kind else None
    )
    alerts = [Alert.model_validate(public_alert(item)) for item in items]
    return respond(200, AlertPage(alerts=alerts, next_cursor=after))


@route(
    router,
    "GET",
    f"{TENANT}/alerts",
    Access.TENANT,
    tags=["alerts"],
    summary="Recent threshold, anomaly and forecast alerts of a tenant, newest first",
)
def tenant_alerts(
    tenant_id: str, book: AlertsDep, limit: Limit = 50, cursor: Cursor = None, type_: Type = None
) -> Response[AlertPage]:
    return _page(book, tenant_id, limit, cursor, type_)


@route(
    router,
    "GET",
    "/v1/platform/alerts",
    Access.ADMIN,
    tags=["alerts"],
    summary="Recent alerts of platform-wide quotas, newest first",
)
def platform_alerts(
    book: AlertsDep, limit: Limit = 50, cursor: Cursor = None, type_: Type = None
) -> Response[AlertPage]:
    return _page(book, None, limit, cursor, type_)

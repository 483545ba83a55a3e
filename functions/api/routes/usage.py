"""Reading usage: totals and breakdowns, cost records (paginated), the summary."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from costguard.models import RecordPage
from costguard.usage import (
    GroupBy,
    Summary,
    UsageReport,
    record_window,
    summary,
    usage_report,
)
from pydantic import BeforeValidator

from functions.api.access import Access, route
from functions.api.deps import CURSOR, TENANT, LedgerDep
from functions.api.problems import respond

router = Router()


def _day(value: Any) -> Any:
    """Only `YYYY-MM-DD`: pydantic alone would read `?to=0` as Unix time 0 (1970-01-01)."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("must be a UTC day, YYYY-MM-DD")
    return value


From = Annotated[
    date | None,
    BeforeValidator(_day),
    Query(alias="from", description="first UTC day (default: 1st of the month)"),
]
To = Annotated[
    date | None,
    BeforeValidator(_day),
    Query(alias="to", description="last UTC day, inclusive (default: today)"),
]


@route(
    router,
    "GET",
    f"{TENANT}/usage",
    Access.TENANT,
    tags=["usage"],
    summary="Totals and a breakdown over UTC days",
)
def usage(
    tenant_id: str,
    ledger: LedgerDep,
    from_: From = None,
    to: To = None,
    group_by: Annotated[GroupBy | None, Query()] = None,
) -> Response[UsageReport]:
    return respond(200, usage_report(ledger, tenant_id, from_, to, group_by))


@route(
    router,
    "GET",
    f"{TENANT}/usage/records",
    Access.TENANT,
    tags=["usage"],
    summary="Cost records, oldest first, paginated with `cursor`",
)
def records(
    tenant_id: str,
    ledger: LedgerDep,
    from_: From = None,
    to: To = None,
    user_id: Annotated[str | None, Query(max_length=128)] = None,
    conversation_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=CURSOR)] = None,
) -> Response[RecordPage]:
    first, last = record_window(ledger, tenant_id, from_, to)
    items, after = ledger.settled_records(
        tenant_id,
        first,
        last,
        limit=limit,
        after=cursor,
        user_id=user_id,
        conversation_id=conversation_id,
    )
    page = RecordPage(records=[ledger.cost_record(i) for i in items], next_cursor=after)
    return respond(200, page)


@route(
    router,
    "GET",
    f"{TENANT}/summary",
    Access.TENANT,
    tags=["usage"],
    summary="Month to date, today, top models and users, daily trend",
)
def tenant_summary(tenant_id: str, ledger: LedgerDep) -> Response[Summary]:
    return respond(200, summary(ledger, tenant_id))

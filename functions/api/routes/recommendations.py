"""Recommendations: what a tenant could change to spend less, from its own records."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from costguard.recommendations import RecommendationList, RecommendationRules, recommend

from functions.api.access import Access, route
from functions.api.deps import TENANT, LedgerDep
from functions.api.problems import respond

router = Router()

Days = Annotated[int, Query(ge=7, le=90, description="the window read, in days up to now")]


@route(
    router,
    "GET",
    f"{TENANT}/recommendations",
    Access.TENANT,
    tags=["usage"],
    summary="Recommendations with their monthly savings, evidence and confidence",
)
def tenant_recommendations(
    tenant_id: str, ledger: LedgerDep, days: Days = 30
) -> Response[RecommendationList]:
    return respond(200, recommend(ledger, tenant_id, RecommendationRules(window_days=days)))

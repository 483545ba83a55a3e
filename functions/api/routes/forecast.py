"""Reading forecasts: the latest projection of each quota with spend in its current period."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from costguard.models import ForecastList, QuotaForecast

from functions.api.access import Access, route
from functions.api.deps import TENANT, LedgerDep
from functions.api.problems import respond

router = Router()


@route(
    router,
    "GET",
    f"{TENANT}/forecast",
    Access.TENANT,
    tags=["alerts"],
    summary="Latest forecast per quota: projected spend, predicted breach day, risk",
)
def tenant_forecast(tenant_id: str, ledger: LedgerDep) -> Response[ForecastList]:
    # Imported here: the forecasting code (and statistics) is ≈ 10 ms of a cold start that
    # only this route reads (D122).
    from costguard.forecasts import current_forecasts

    forecasts = [
        QuotaForecast.model_validate(f, from_attributes=True)
        for f in current_forecasts(ledger, tenant_id)
    ]
    return respond(200, ForecastList(tenant_id=tenant_id, forecasts=forecasts))

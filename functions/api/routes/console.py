"""The web console: static files served by the API, and the admin overview it reads.

The page (functions/api/console/) signs in with an API key kept in the browser session and
calls only the public HTTP API. The files ship in the API function's asset with
`functions/api/`; nothing is fetched from a CDN at run time, and the Content-Security-Policy
lets the page load scripts, styles and data from this origin only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from costguard.overview import PlatformOverview, overview

from functions.api.access import Access, route
from functions.api.deps import LedgerDep
from functions.api.problems import problem, respond

router = Router()
ASSETS = Path(__file__).resolve().parents[1] / "console"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
Days = Annotated[int, Query(ge=1, le=90, description="the window, in days up to today")]


@cache
def _asset(name: str) -> tuple[str, str] | None:
    """A file of the console by its name (no sub-paths: nothing outside the folder)."""
    path = ASSETS / name
    kind = TYPES.get(path.suffix)
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        return None
    return kind, path.read_text("utf-8")


def _serve(name: str) -> Response[Any]:
    found = _asset(name)
    if found is None:
        return problem(404, "not-found", "Not found", f"the console has no file {name!r}")
    kind, body = found
    return Response(status_code=200, content_type=kind, body=body, headers=dict(HEADERS))


@route(router, "GET", "/console", Access.PUBLIC, include_in_schema=False)
def console() -> Response[Any]:
    return _serve("index.html")


@route(router, "GET", "/console/<asset>", Access.PUBLIC, include_in_schema=False)
def console_asset(asset: str) -> Response[Any]:
    return _serve(asset)


@route(
    router,
    "GET",
    "/v1/platform/overview",
    Access.ADMIN,
    tags=["usage"],
    summary="Spend by day, model and tenant; quotas near their limit; recent alerts",
)
def platform_overview(ledger: LedgerDep, days: Days = 30) -> Response[PlatformOverview]:
    return respond(200, overview(ledger, days))

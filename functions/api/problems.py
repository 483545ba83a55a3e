"""RFC 9457 problem+json responses: every refusal the API gives, built in one place."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from costguard.errors import Problem as CatalogProblem
from costguard.errors import QuotaExceeded
from costguard.money import format_usd

PROBLEM = "application/problem+json"
BASE = "https://costguard.dev/problems/"


def respond(status: int, model: Any) -> Response[Any]:
    """A success: the route's pydantic model, serialized (and validated) by the resolver."""
    return Response(status_code=status, content_type="application/json", body=model)


def no_content() -> Response[None]:
    """A success with nothing to say: 204, no body, no content type."""
    return Response(status_code=204, content_type=None, body=None)


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[Any]:
    body = {"type": BASE + slug, "title": title, "status": status, "detail": detail, **extensions}
    return Response(
        status_code=status, content_type=PROBLEM, body=json.dumps(body), headers=headers or {}
    )


def refuse(
    entry: CatalogProblem, detail: str, headers: dict[str, str] | None = None, **extensions: Any
) -> Response[Any]:
    """A refusal of a kind the error catalog (costguard.errors) describes."""
    return problem(entry.status, entry.type, entry.title, detail, headers, **extensions)


def quota_exceeded(exc: QuotaExceeded, accept: str) -> Response[Any]:
    b = exc.binding
    entry = QuotaExceeded.problem
    body = {
        "type": BASE + entry.type,
        "title": entry.title,
        "status": entry.status,
        "detail": f"{b.quota_id} allows {format_usd(b.remaining_usd)} more this {b.period}; "
        f"{format_usd(exc.requested_usd)} was requested",
        "quota_id": b.quota_id,
        "scope": b.scope,
        "resource": b.resource,
        "period": b.period,
        "limit_usd": format_usd(b.limit_usd),
        "spent_usd": format_usd(b.spent_usd),
        "reserved_usd": format_usd(b.held_usd),
        "remaining_usd": format_usd(b.remaining_usd),
        "requested_usd": format_usd(exc.requested_usd),
        "retry_after_seconds": b.retry_after_seconds,
        "resets_at": b.resets_at,
    }
    headers = {"Retry-After": str(b.retry_after_seconds)}
    if "text/event-stream" in accept:
        stream = (
            f"event: error\ndata: {json.dumps(body)}\n\n"
            f"event: done\ndata: {json.dumps({'status': 'quota_exceeded'})}\n\n"
        )
        return Response(
            status_code=429,
            content_type="text/event-stream",
            body=stream,
            headers=headers | {"Cache-Control": "no-cache"},
        )
    return Response(status_code=429, content_type=PROBLEM, body=json.dumps(body), headers=headers)

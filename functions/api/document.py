"""The OpenAPI document: what Powertools generates from the routes, completed with what the
generator cannot know. Every refusal is `application/problem+json` (errors.py) of a type the
error catalog (costguard.errors) lists for its status; public routes
need no key, a 204 has no body. The schemathesis run (tests/api/test_fuzz_openapi.py) checks
every answer against this document, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from costguard.errors import catalog
from costguard.settings import get_settings

from functions.api.access import RULES, Access, path_pattern
from functions.api.problems import BASE

PROBLEM = "application/problem+json"

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `invalid_params` names each refused field.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "invalid_params": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "reason"],
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
_USD = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{6,}$"}
_QUOTA_EXCEEDED_SCHEMA: dict[str, Any] = {
    "title": "QuotaExceeded",
    "description": "The binding quota's figures; `Retry-After` is the seconds until it resets.",
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {
            "type": "object",
            "required": [
                "quota_id",
                "scope",
                "resource",
                "period",
                "limit_usd",
                "spent_usd",
                "reserved_usd",
                "remaining_usd",
                "requested_usd",
                "retry_after_seconds",
            ],
            "properties": {
                "quota_id": {"type": "string"},
                "scope": {"enum": ["platform", "tenant", "user"]},
                "resource": {"enum": ["llm", "sandbox", "all"]},
                "period": {"enum": ["day", "week", "month"]},
                "limit_usd": _USD,
                "spent_usd": _USD,
                "reserved_usd": _USD,
                "remaining_usd": _USD,
                "requested_usd": _USD,
                "retry_after_seconds": {"type": "integer", "minimum": 0},
                "resets_at": {"type": "string"},
            },
        },
    ],
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
_MEANING = {
    400: "Malformed JSON",
    401: "No valid API key (`WWW-Authenticate: Bearer`)",
    403: "The key may not do this",
    404: "No such route or resource",
    405: "Method not allowed here (`Allow` lists the methods)",
    409: "Conflict",
    413: "Body too large",
    422: "Invalid request; `invalid_params` names each field",
    423: "The tenant or user is paused",
    429: "Over quota: the binding quota, its figures and `Retry-After`",
    500: "The ledger holds a malformed item, or an unexpected error",
    503: "Unavailable; nothing was recorded (`Retry-After`)",
}
"""What a status means to a caller in a sentence; the problem types come from the catalog."""
# Every route that needs a key can answer these; the table below adds route-specific ones.
_COMMON = (400, 401, 403, 404, 405, 413, 422, 500, 503)
_SPECIFIC: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/v1/tenants/<tenant_id>/reservations"): (423, 429),
    ("POST", "/v1/tenants/<tenant_id>/usage"): (423, 429),
    ("POST", "/v1/tenants/<tenant_id>/reservations/<reservation_id>/commit"): (409,),
    ("DELETE", "/v1/tenants/<tenant_id>/reservations/<reservation_id>"): (409,),
    ("POST", "/v1/tenants"): (409,),
}


def _openapi_path(rule: str) -> str:
    return rule.replace("<", "{").replace(">", "}")


def _problem_response(status: int) -> dict[str, Any]:
    kinds = sorted({p for p in catalog() if p.status == status}, key=lambda p: p.type)
    types = {"type": {"enum": [BASE + p.type for p in kinds]}}
    schema = "QuotaExceeded" if status == 429 else "Problem"
    content: dict[str, Any] = {
        PROBLEM: {
            "schema": {"allOf": [{"$ref": f"#/components/schemas/{schema}"}, {"properties": types}]}
        }
    }
    listed = "; ".join(f"`{p.type}` ({p.title})" for p in kinds)
    response: dict[str, Any] = {"description": f"{_MEANING[status]}. {listed}", "content": content}
    if status == 429:
        content["text/event-stream"] = {
            "schema": {"type": "string", "description": "event: error, then event: done"}
        }
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def _deployment_limits(schemas: dict[str, Any]) -> None:
    """Limits this deployment sets (settings), which the models cannot know."""
    ttl = schemas.get("ReserveRequest", {}).get("properties", {}).get("ttl_seconds", {})
    for branch in ttl.get("anyOf", [ttl]):
        if branch.get("type") == "integer":
            branch["maximum"] = get_settings().max_reservation_ttl_seconds


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the path parameters' patterns, the problem responses, the public routes' empty
    security and bodiless 204s."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _deployment_limits(schemas)
    schemas["Problem"] = _PROBLEM_SCHEMA
    schemas["QuotaExceeded"] = _QUOTA_EXCEEDED_SCHEMA
    for (method, rule), access in RULES.items():
        operation = document.get("paths", {}).get(_openapi_path(rule), {}).get(method.lower())
        if operation is None:
            continue  # include_in_schema=False
        for parameter in operation.get("parameters", []):
            pattern = path_pattern(rule, parameter["name"]) if parameter["in"] == "path" else None
            if pattern is not None:
                parameter.setdefault("schema", {})["pattern"] = pattern
        responses = operation.setdefault("responses", {})
        if access is Access.PUBLIC:
            operation["security"] = []
            responses.pop("422", None)
            continue
        for status in (*_COMMON, *_SPECIFIC.get((method, rule), ())):
            responses[str(status)] = _problem_response(status)
        if "204" in responses:
            responses["204"].pop("content", None)
    return document

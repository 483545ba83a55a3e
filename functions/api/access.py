"""Who may call what, declared next to each route and enforced in one middleware.

A route that is not declared here is refused (fail closed), so a new route cannot be
left open by forgetting its access rule.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from costguard.auth import Principal
from costguard.errors import Forbidden, Unauthenticated


class Access(StrEnum):
    PUBLIC = "public"
    TENANT = "tenant"
    """An admin, or a tenant key whose tenant is the path's `{tenant_id}`."""
    ADMIN = "admin"
    ANY = "any"
    """Any valid key, tenant or admin."""


RULES: dict[tuple[str, str], Access] = {}


def route(
    router: BaseRouter, method: str, path: str, access: Access, **kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route together with its access rule."""
    RULES[(method, path)] = access
    return router.route(path, method, **kwargs)


def bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authorize(rule: Access | None, principal: Principal | None, tenant_id: str | None) -> None:
    """Raise unless `principal` may use a route with `rule` for `tenant_id`."""
    if rule is Access.PUBLIC:
        return
    if rule is None:
        raise Forbidden("this route has no access rule")
    if principal is None:
        raise Unauthenticated("a valid API key is required: Authorization: Bearer <key>")
    if rule is Access.ANY:
        return
    if rule is Access.ADMIN and principal.role != "admin":
        raise Forbidden("this route needs an admin key")
    if rule is Access.TENANT and (tenant_id is None or not principal.may_act_for(tenant_id)):
        raise Forbidden("this key may not act for that tenant")

"""Who may call what, declared next to each route and enforced in one middleware.

A route that is not declared here is refused (fail closed), so a new route cannot be
left open by forgetting its access rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from costguard.auth import Principal
from costguard.errors import Forbidden, InvalidRequest, Unauthenticated
from costguard.quotas import TENANT_ID, Scope, quota_id_pattern


class Access(StrEnum):
    PUBLIC = "public"
    TENANT = "tenant"
    """An admin, or a tenant key whose tenant is the path's `{tenant_id}`."""
    ADMIN = "admin"
    ANY = "any"
    """Any valid key, tenant or admin."""


RULES: dict[tuple[str, str], Access] = {}

_TENANT_QUOTA_ID = quota_id_pattern(Scope.TENANT, Scope.USER)
_PLATFORM_QUOTA_ID = quota_id_pattern(Scope.PLATFORM)


def path_pattern(rule: str, name: str) -> str | None:
    """The pattern a path parameter of `rule` must match, for the parameters every route shares
    (a route-specific one is declared on the route with `Path(pattern=...)`). The document
    declares it (document.py), the access guard enforces it (`check_path`)."""
    if name == "tenant_id":
        return TENANT_ID.pattern
    if name == "quota_id":
        return _PLATFORM_QUOTA_ID if rule.startswith("/v1/platform/") else _TENANT_QUOTA_ID
    return None


def check_path(rule: str, arguments: dict[str, str]) -> None:
    """Refuse (422) a path parameter outside its pattern, before anything reads it."""
    for name, value in arguments.items():
        pattern = path_pattern(rule, name)
        if pattern is not None and not re.fullmatch(pattern, value):
            raise InvalidRequest(f"{name} must match {pattern}", field=name)


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

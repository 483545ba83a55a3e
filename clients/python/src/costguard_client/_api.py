"""Every API route as a `Call`, and the bodies a hold sends; shared by both clients."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal

from costguard_client._core import Call, document, model, nothing, segment, validated
from costguard_client.adapters import TokenUsage, _get, token_usage
from costguard_client.errors import CommitNotLanded, InvalidArgument, local
from costguard_client.models import (
    AlertPage,
    CheckResult,
    CommitRequest,
    CostRecord,
    GroupBy,
    Health,
    IssuedApiKey,
    ModelPriceOut,
    PauseRequest,
    PauseState,
    PriceList,
    PricePut,
    QuotaList,
    QuotaPut,
    QuotaState,
    RecommendationList,
    RecordPage,
    RecordRequest,
    Release,
    Reservation,
    ReserveRequest,
    Summary,
    Tenant,
    TenantCreate,
    TenantSettings,
    TenantSettingsState,
    Usage,
    UsageReport,
)

Money = Decimal | str | int
"""An amount given by the caller: a Decimal, a decimal string or an integer; never a float."""

MILLISECOND = Decimal("0.001")


def _tenant(tenant_id: str) -> str:
    return f"/v1/tenants/{segment(tenant_id)}"


def seconds_of(value: Decimal | int | float | str) -> Decimal:
    """Seconds as the API takes them: at most 3 decimals, rounded up (a run is never undercounted).

    A float is accepted here because it is a duration (`time.monotonic()` differences), not
    money; it is converted through its shortest repr, so no binary noise reaches the ledger.
    """
    try:
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return exact.quantize(MILLISECOND, rounding=ROUND_CEILING)
    except (ArithmeticError, TypeError, ValueError):
        raise local(
            InvalidArgument,
            "Invalid argument",
            f"seconds: not a number of seconds: {value!r}",
            invalid_params=[{"name": "seconds", "reason": "not a number of seconds"}],
        ) from None


# ---------------------------------------------------------------------------- bodies
def estimate(
    *,
    resource: Literal["llm", "sandbox"] = "llm",
    model: str | None = None,
    provider: str | None = None,
    input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    cached_input_tokens: int | None = None,
    estimated_cost_usd: Money | None = None,
    tier: str | None = None,
    seconds: Decimal | int | float | str | None = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
    task_id: str | None = None,
    operation: str | None = None,
    metadata: Mapping[str, str] | None = None,
    ttl_seconds: int | None = None,
) -> ReserveRequest:
    """The body of a reservation: an LLM call priced from its tokens, or an explicit estimate.

    `max_output_tokens` is the output cap the call will send (the hold is its worst case);
    absent, the server holds the model's maximum output from its catalog."""
    return validated(
        ReserveRequest,
        {
            "resource": resource,
            "model": model,
            "provider": provider,
            "input_tokens": input_tokens,
            "output_tokens": max_output_tokens,
            "cached_input_tokens": cached_input_tokens,
            "estimated_cost_usd": estimated_cost_usd,
            "tier": tier,
            "seconds": seconds_of(seconds) if seconds is not None else None,
            "user_id": user_id,
            "conversation_id": conversation_id,
            "task_id": task_id,
            "operation": operation,
            "metadata": dict(metadata) if metadata is not None else None,
            "ttl_seconds": ttl_seconds,
        },
    )


def no_usage_in(obj: Any) -> bool:
    """Nothing, or a provider response that reports no usage (`usage` / `usage_metadata`
    absent or None, e.g. a stream without `include_usage`): what the call used cannot be
    known from it."""
    if obj is None:
        return True
    if isinstance(obj, Usage | TokenUsage):
        return False
    names = ("usage", "usage_metadata", "usageMetadata")
    if isinstance(obj, Mapping):
        present = any(n in obj for n in names)
    else:
        present = any(hasattr(obj, n) for n in names)
    return present and _get(obj, *names) is None


UNKNOWN_FIELDS = frozenset(
    {"usage_unknown", "resource", "user_id", "conversation_id", "task_id", "operation", "metadata"}
)


def unknown(reserved: ReserveRequest | None = None) -> CommitRequest:
    """The body of a commit whose usage cannot be known: the server charges the whole hold.
    Only the reservation's resource and attribution go with it (no usage field may)."""
    if reserved is None:
        return CommitRequest(usage_unknown=True)
    return CommitRequest(
        usage_unknown=True,
        resource=reserved.resource,
        user_id=reserved.user_id,
        conversation_id=reserved.conversation_id,
        task_id=reserved.task_id,
        operation=reserved.operation,
        metadata=reserved.metadata,
    )


def tokens_of(usage: Any) -> dict[str, Any]:
    """costguard's counts (and the model the provider named) from a provider usage object or
    response; a shape it does not know is `InvalidArgument`."""
    try:
        tokens = token_usage(usage)
    except (TypeError, ValueError) as error:
        raise local(InvalidArgument, "Invalid argument", f"usage: {error}") from None
    # Zero cache writes and reasoning are left out, as a v1.0 body would be.
    counts: dict[str, Any] = {
        "input_tokens": tokens.input_tokens,
        "output_tokens": tokens.output_tokens,
        "cached_input_tokens": tokens.cached_input_tokens,
        "cache_write_input_tokens": tokens.cache_write_input_tokens or None,
        "cache_write_1h_input_tokens": tokens.cache_write_1h_input_tokens or None,
        "reasoning_tokens": tokens.reasoning_tokens or None,
    }
    if tokens.service_tier is not None:
        counts["service_tier"] = tokens.service_tier
    return {"counts": counts, "model": tokens.model}


def actual(
    reserved: ReserveRequest,
    usage: Any = None,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cached_input_tokens: int | None = None,
    seconds: Decimal | int | float | str | None = None,
    cost_usd: Money | None = None,
    model: str | None = None,
) -> CommitRequest:
    """The body of a commit: what was really used, priced like the reservation.

    `usage` is a provider's usage object or response (OpenAI, Anthropic, Google; see
    `adapters`), a mapping of the same, or a ready `Usage`. The model and provider are the
    reservation's unless given: a response often names a dated snapshot
    (`gpt-4o-2024-08-06`) that the price book may not list. Attribution (user, conversation,
    task, operation, metadata) is the reservation's.
    """
    if isinstance(usage, CommitRequest):
        return usage
    if isinstance(usage, Usage):
        return validated(CommitRequest, usage.model_dump(exclude_none=True))
    counts: dict[str, Any] = {}
    reported_model: str | None = None
    if usage is not None:
        read = tokens_of(usage)
        counts, reported_model = read["counts"], read["model"]
    for name, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cached_input_tokens", cached_input_tokens),
    ):
        if value is not None:
            counts[name] = value
    body: dict[str, Any] = {
        "resource": reserved.resource,
        "cost_usd": cost_usd,
        "user_id": reserved.user_id,
        "conversation_id": reserved.conversation_id,
        "task_id": reserved.task_id,
        "operation": reserved.operation,
        "metadata": reserved.metadata,
    }
    if reserved.resource == "llm":
        chosen = model or reserved.model or reported_model
        # the reservation's service tier unless the provider's answer says which it ran at
        body |= (
            {"service_tier": reserved.service_tier}
            | counts
            | {
                "model": chosen,
                "provider": reserved.provider if chosen == reserved.model else None,
            }
        )
    else:
        body |= {
            "tier": reserved.tier,
            "seconds": seconds_of(seconds) if seconds is not None else None,
        }
    return validated(CommitRequest, body)


def record_body(
    usage: Any,
    *,
    model: str | None = None,
    provider: str | None = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
    task_id: str | None = None,
    operation: str | None = None,
    metadata: Mapping[str, str] | None = None,
    enforce: bool | None = None,
) -> RecordRequest:
    """The body of a direct record: a `RecordRequest` as it is, a `Usage` (or the `usage` of a
    `CommitNotLanded`), a mapping of the API's fields, or a provider's usage object or
    response (priced as `model`, else the model the response names)."""
    extra: dict[str, Any] = {
        "user_id": user_id,
        "conversation_id": conversation_id,
        "task_id": task_id,
        "operation": operation,
        "metadata": dict(metadata) if metadata is not None else None,
        "enforce": enforce,
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    if isinstance(usage, RecordRequest) and not extra and model is None and provider is None:
        return usage
    if isinstance(usage, CommitRequest) and usage.usage_unknown:
        raise local(
            InvalidArgument,
            "Invalid argument",
            "unknown usage has no price to record: record the hold's amount as cost_usd "
            "(CommitNotLanded.record() does)",
        )
    if isinstance(usage, Usage):
        fields = usage.model_dump(exclude_none=True, exclude={"usage_unknown"})
    elif isinstance(usage, Mapping) and "resource" in usage:
        fields = dict(usage)
    else:
        read = tokens_of(usage)
        fields = {"resource": "llm", **read["counts"], "model": model or read["model"]}
    if model is not None:
        fields["model"] = model
    if provider is not None:
        fields["provider"] = provider
    return validated(RecordRequest, fields | extra)


def unlanded_request(error: CommitNotLanded) -> RecordRequest | None:
    """The record still owed for a commit that never landed; None when the expiry already
    charged the whole hold and the usage was unknown (the hold is all it could be)."""
    if error.charged_usd is not None and error.usage.usage_unknown:
        return None
    return error.record()


def unlanded_key(error: CommitNotLanded) -> str:
    """One Idempotency-Key per reservation: recording its unlanded spend twice counts once."""
    return f"cg-unlanded-{error.reservation_id}"


def priced_as(request: RecordRequest) -> Usage:
    """The usage of a record, as a quota check prices it."""
    return Usage.model_validate(request.model_dump(exclude_none=True, exclude={"enforce"}))


def beyond(request: RecordRequest, cost: Decimal, charged: Decimal) -> RecordRequest | None:
    """The part of `request` (costing `cost`) the expiry's charge did not cover, as a cost."""
    excess = cost - charged
    if excess <= 0:
        return None
    fields = request.model_dump(exclude_none=True)
    for name in list(fields):
        if name.endswith("_tokens") or name in ("seconds", "estimated_cost_usd", "service_tier"):
            del fields[name]
    metadata = dict(fields.get("metadata") or {})
    metadata["beyond_expiry_charge_usd"] = format(charged, "f")
    return validated(RecordRequest, fields | {"cost_usd": excess, "metadata": metadata})


# ---------------------------------------------------------------------------- spending
def reserve(
    tenant_id: str,
    body: ReserveRequest,
    *,
    minimal: bool = False,
    idempotency_key: str | None = None,
) -> Call[Reservation]:
    return Call(
        "POST",
        f"{_tenant(tenant_id)}/reservations",
        model(Reservation),
        body=body,
        headers={"Prefer": "return=minimal"} if minimal else {},
        idempotency_key=idempotency_key,
    )


def commit(tenant_id: str, reservation_id: str, usage: CommitRequest) -> Call[CostRecord]:
    # One Idempotency-Key for the whole retry-until-expiry: a commit whose answer was lost is
    # counted once however many times it is sent.
    if usage.usage_unknown:
        # Only what may go with it: no usage field (not even a default service tier).
        body = usage.model_dump(mode="json", exclude_none=True, include=set(UNKNOWN_FIELDS))
    else:
        body = usage.model_dump(mode="json", exclude_none=True, exclude={"usage_unknown"})
    return Call(
        "POST",
        f"{_tenant(tenant_id)}/reservations/{segment(reservation_id)}/commit",
        model(CostRecord),
        body=body,
    )


def release(tenant_id: str, reservation_id: str) -> Call[Release]:
    return Call(
        "DELETE",
        f"{_tenant(tenant_id)}/reservations/{segment(reservation_id)}",
        model(Release),
    )


def record_usage(
    tenant_id: str, body: RecordRequest, *, idempotency_key: str | None = None
) -> Call[CostRecord]:
    return Call(
        "POST",
        f"{_tenant(tenant_id)}/usage",
        model(CostRecord),
        body=body,
        idempotency_key=idempotency_key,
    )


def check(tenant_id: str, usage: Usage) -> Call[CheckResult]:
    return Call("POST", f"{_tenant(tenant_id)}/quota-checks", model(CheckResult), body=usage)


# ---------------------------------------------------------------------------- quotas
def _quota_body(
    limit_usd: Money,
    mode: Literal["hard", "soft"],
    thresholds: list[int] | None,
    grace_pct: Money | None,
) -> QuotaPut:
    fields: dict[str, Any] = {"limit_usd": limit_usd, "mode": mode}
    if thresholds is not None:
        fields["thresholds"] = thresholds
    if grace_pct is not None:
        fields["grace_pct"] = grace_pct
    return validated(QuotaPut, fields)


def _quotas_path(tenant_id: str | None) -> str:
    return "/v1/platform/quotas" if tenant_id is None else f"{_tenant(tenant_id)}/quotas"


def quotas(tenant_id: str | None) -> Call[QuotaList]:
    """A tenant's quotas, or the platform's with `tenant_id=None`."""
    return Call("GET", _quotas_path(tenant_id), model(QuotaList))


def put_quota(
    tenant_id: str | None,
    quota_id: str,
    limit_usd: Money,
    mode: Literal["hard", "soft"] = "hard",
    thresholds: list[int] | None = None,
    grace_pct: Money | None = None,
) -> Call[QuotaState]:
    return Call(
        "PUT",
        f"{_quotas_path(tenant_id)}/{segment(quota_id)}",
        model(QuotaState),
        body=_quota_body(limit_usd, mode, thresholds, grace_pct),
    )


def delete_quota(tenant_id: str | None, quota_id: str) -> Call[None]:
    return Call("DELETE", f"{_quotas_path(tenant_id)}/{segment(quota_id)}", nothing)


# ---------------------------------------------------------------------------- tenants, keys
def create_tenant(
    name: str,
    tenant_id: str | None = None,
    plan: str | None = None,
    settings: TenantSettings | None = None,
) -> Call[Tenant]:
    body = validated(
        TenantCreate, {"tenant_id": tenant_id, "name": name, "plan": plan, "settings": settings}
    )
    return Call("POST", "/v1/tenants", model(Tenant), body=body)


def tenant_settings(tenant_id: str) -> Call[TenantSettingsState]:
    return Call("GET", f"{_tenant(tenant_id)}/settings", model(TenantSettingsState))


def merged_settings(
    current: TenantSettings,
    *,
    overrun: Literal["record", "reject"] | None = None,
    on_expiry: Literal["charge", "release"] | None = None,
    timezone: str | None = None,
) -> TenantSettings:
    """`current` with the settings given changed (only the settable fields are sent)."""
    given = {"overrun": overrun, "on_expiry": on_expiry, "timezone": timezone}
    changes = {k: v for k, v in given.items() if v is not None}
    settable = current.model_dump(include=set(TenantSettings.model_fields))
    return validated(TenantSettings, settable | changes)


def put_tenant_settings(tenant_id: str, body: TenantSettings) -> Call[TenantSettingsState]:
    return Call("PUT", f"{_tenant(tenant_id)}/settings", model(TenantSettingsState), body=body)


def set_paused(tenant_id: str, paused: bool, user_id: str | None = None) -> Call[PauseState]:
    verb = "pause" if paused else "unpause"
    return Call(
        "POST",
        f"{_tenant(tenant_id)}/{verb}",
        model(PauseState),
        body=PauseRequest(user_id=user_id),
    )


def issue_key(tenant_id: str) -> Call[IssuedApiKey]:
    # The key is shown once and never stored: a retry after the request may have arrived
    # would issue a second key, so only a request that surely never left is retried.
    return Call("POST", f"{_tenant(tenant_id)}/api-keys", model(IssuedApiKey), replayable=False)


def revoke_key(tenant_id: str, key_id: str) -> Call[None]:
    return Call("DELETE", f"{_tenant(tenant_id)}/api-keys/{segment(key_id)}", nothing)


# ---------------------------------------------------------------------------- reading
def _params(**values: object) -> dict[str, str]:
    return {
        name.rstrip("_"): v.isoformat() if isinstance(v, date) else str(v)
        for name, v in values.items()
        if v is not None
    }


def usage(
    tenant_id: str,
    from_: date | None = None,
    to: date | None = None,
    group_by: GroupBy | None = None,
) -> Call[UsageReport]:
    return Call(
        "GET",
        f"{_tenant(tenant_id)}/usage",
        model(UsageReport),
        params=_params(from_=from_, to=to, group_by=group_by),
    )


def usage_records(
    tenant_id: str,
    from_: date | None = None,
    to: date | None = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[RecordPage]:
    return Call(
        "GET",
        f"{_tenant(tenant_id)}/usage/records",
        model(RecordPage),
        params=_params(
            from_=from_,
            to=to,
            user_id=user_id,
            conversation_id=conversation_id,
            limit=limit,
            cursor=cursor,
        ),
    )


def summary(tenant_id: str) -> Call[Summary]:
    return Call("GET", f"{_tenant(tenant_id)}/summary", model(Summary))


AlertType = Literal["threshold", "anomaly", "forecast", "recommendation", "overrun"]


def alerts(
    tenant_id: str | None,
    limit: int | None = None,
    cursor: str | None = None,
    type_: AlertType | None = None,
) -> Call[AlertPage]:
    """A tenant's alerts, newest first, or the platform quotas' with `tenant_id=None`."""
    path = "/v1/platform/alerts" if tenant_id is None else f"{_tenant(tenant_id)}/alerts"
    return Call(
        "GET", path, model(AlertPage), params=_params(limit=limit, cursor=cursor, type_=type_)
    )


def forecast(tenant_id: str, params: Mapping[str, str] | None = None) -> Call[dict[str, Any]]:
    return Call("GET", f"{_tenant(tenant_id)}/forecast", document, params=params)


def recommendations(tenant_id: str, days: int | None = None) -> Call[RecommendationList]:
    """What the tenant could change to spend less, over the last `days` (7–90, default 30)."""
    return Call(
        "GET",
        f"{_tenant(tenant_id)}/recommendations",
        model(RecommendationList),
        params=_params(days=days),
    )


# ---------------------------------------------------------------------------- pricing, service
def pricing(
    provider: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[PriceList]:
    """One page of price schedules (the first with no cursor); `next_cursor` gives the next."""
    return Call(
        "GET",
        "/v1/pricing",
        model(PriceList),
        params=_params(provider=provider, limit=limit, cursor=cursor),
    )


def price(provider: str, model_name: str) -> Call[ModelPriceOut]:
    """The schedule a model name is priced with now; its provider and model say which."""
    return Call(
        "GET",
        f"/v1/pricing/{segment(provider)}/{segment(model_name)}",
        model(ModelPriceOut),
    )


def put_price(provider: str, model_name: str, body: PricePut) -> Call[ModelPriceOut]:
    return Call(
        "PUT",
        f"/v1/pricing/{segment(provider)}/{segment(model_name)}",
        model(ModelPriceOut),
        body=body,
    )


def health() -> Call[Health]:
    return Call("GET", "/v1/health", model(Health))


def openapi() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/openapi.json", document)

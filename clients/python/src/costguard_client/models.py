"""The API's request and response bodies, as the server publishes them in `/v1/openapi.json`.

Every class here has the name of a component of the server's OpenAPI document and the same
fields and types; `tests/client/test_drift.py` compares them, so the two cannot drift apart.
Constraints (patterns, bounds) are left to the server: it refuses a bad value with a 422 that
names the field, and keeping one copy of the rules is what keeps them right.

Money is `decimal.Decimal` everywhere and travels as a decimal string; a binary float is
refused before it can leave the process.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float | bool):
        raise ValueError('money is a decimal string such as "0.05" or a Decimal, never a float')
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise ValueError("must be a decimal string or a Decimal")
    if not result.is_finite():
        raise ValueError("must be a finite number")
    return result


def plain(value: Decimal) -> str:
    """A Decimal as the API writes it: fixed point, never exponent notation."""
    return format(value, "f")


Usd = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    PlainSerializer(plain, return_type=str),
    # What goes out is a decimal string, and the API's document says money is a string only.
    WithJsonSchema({"type": "string"}),
]
"""An amount in USD (or any exact decimal the API carries as a string)."""


class Body(BaseModel):
    """A response body: unknown fields from a newer server are ignored, not an error."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Request(BaseModel):
    """A request body: a misspelt field fails here, before any call is made."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------- requests
class Usage(Request):
    """An estimate (reserve, check) or actual usage (commit, record), with attribution."""

    resource: Literal["llm", "sandbox"]
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None
    cache_write_1h_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    service_tier: Literal["standard", "batch", "flex", "priority"] = "standard"
    tier: str | None = None
    seconds: Usd | None = None
    estimated_cost_usd: Usd | None = None
    cost_usd: Usd | None = None
    user_id: str | None = None
    conversation_id: str | None = None
    task_id: str | None = None
    operation: str | None = None
    metadata: dict[str, str] | None = None


class ReserveRequest(Usage):
    ttl_seconds: int | None = None


class CommitRequest(Usage):
    """A commit: the actual usage, or `usage_unknown=True` (no usage fields) to charge the
    whole hold when what the call used cannot be known."""

    resource: Literal["llm", "sandbox"] | None = None  # type: ignore[assignment]
    usage_unknown: bool = False


class RecordRequest(Usage):
    enforce: bool = True


class QuotaPut(Request):
    limit_usd: Usd
    mode: Literal["hard", "soft"] = "hard"
    thresholds: list[int] = [50, 80, 90, 100]
    grace_pct: Usd = Decimal(0)
    slices: int = 1
    leased: bool = False


class TenantSettings(Body):
    """How a tenant's holds settle at their edges.

    `overrun`: a commit above its hold is recorded in full (`record`) or refused with a 409
    and the hold charged instead (`reject`). `on_expiry`: a hold that expires without a
    commit is charged in full (`charge`) or returned (`release`).
    """

    overrun: Literal["record", "reject"] = "record"
    on_expiry: Literal["charge", "release"] = "charge"
    timezone: str = "UTC"
    """The IANA zone of the tenant's days, weeks and months; a change takes effect at the next
    local midnight of the zone in effect."""


class TenantSettingsState(TenantSettings):
    """The settings as the server shows them, with the zone in effect right now."""

    timezone_in_effect: str = "UTC"
    timezone_effective_at: datetime | None = None
    """When a changed `timezone` takes effect; None once it has."""


class TenantCreate(Request):
    tenant_id: str | None = None
    name: str
    plan: str | None = None
    settings: TenantSettings | None = None


class PauseRequest(Request):
    user_id: str | None = None


class LongContextPut(Request):
    above_input_tokens: int
    input_per_million_usd: Usd
    output_per_million_usd: Usd
    cached_input_per_million_usd: Usd | None = None
    cache_write_per_million_usd: Usd | None = None
    cache_write_1h_per_million_usd: Usd | None = None


class PricePut(Request):
    input_per_million_usd: Usd
    output_per_million_usd: Usd
    cached_input_per_million_usd: Usd | None = None
    cache_write_per_million_usd: Usd | None = None
    cache_write_1h_per_million_usd: Usd | None = None
    request_usd: Usd | None = None
    max_output_tokens: int | None = None
    long_context: list[LongContextPut] | None = None
    effective_from: datetime


# ---------------------------------------------------------------------------- responses
class QuotaState(Body):
    """One quota with its live figures in the current (or the reservation's) period."""

    quota_id: str
    scope: Literal["platform", "tenant", "user"]
    user_id: str | None = None
    resource: Literal["llm", "sandbox", "all"]
    period: Literal["day", "week", "month"]
    mode: Literal["hard", "soft"]
    limit_usd: Usd
    spent_usd: Usd
    reserved_usd: Usd
    remaining_usd: Usd
    utilization: Usd
    thresholds: list[int]
    period_key: str
    resets_at: datetime
    effective_at: datetime | None = None
    """On the answer to a platform quota write: when every reserve applies it (within 5 s)."""


class QuotaList(Body):
    quotas: list[QuotaState]
    settings: TenantSettingsState | None = None
    """The tenant's settlement settings (absent for platform quotas)."""


class HoldBasis(Body):
    """How a reservation's hold was derived: the worst case of the call."""

    basis: Literal["tokens", "estimated_cost", "sandbox_seconds"]
    input_tokens: int | None = None
    output_tokens: int | None = None
    """The output cap the hold was priced with."""
    output_cap_from: Literal["request", "catalog"] | None = None
    seconds: Usd | None = None
    priced_as: str | None = None


class Reservation(Body):
    reservation_id: str
    tenant_id: str
    user_id: str | None = None
    resource: Literal["llm", "sandbox"]
    reserved_usd: Usd
    created_at: datetime
    expires_at: datetime
    guarded: bool = True
    hold: HoldBasis | None = None
    quotas: list[QuotaState] | None = None


class CostRecord(Body):
    record_id: str
    tenant_id: str
    reservation_id: str | None = None
    status: Literal["committed", "recorded"]
    resource: Literal["llm", "sandbox"]
    cost_usd: Usd
    estimated_usd: Usd | None = None
    overrun: bool = False
    overrun_usd: Usd = Decimal(0)
    """What the commit spent beyond its hold (recorded and counted in full)."""
    usage_unknown: bool = False
    """The caller could not tell what the call used: the whole hold was charged."""
    settled_by: Literal["commit", "usage_unknown", "expiry", "overrun_rejected"] | None = None
    actual_usd: Usd | None = None
    """An overrun-rejected commit: what the caller reported (the hold was charged instead)."""
    provider: str | None = None
    model: str | None = None
    tier: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None
    cache_write_1h_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    service_tier: str | None = None
    seconds: Usd | None = None
    price: dict[str, str] | None = None
    user_id: str | None = None
    conversation_id: str | None = None
    task_id: str | None = None
    operation: str | None = None
    metadata: dict[str, str] | None = None
    occurred_at: datetime
    recorded_at: datetime


class CheckResult(Body):
    allowed: bool
    requested_usd: Usd
    binding_quota_id: str | None = None
    paused: bool = False
    quotas: list[QuotaState]


class Release(Body):
    reservation_id: str
    status: Literal["released", "expired"]
    released_usd: Usd


class Tenant(Body):
    tenant_id: str
    name: str
    plan: str | None = None
    created_at: datetime
    settings: TenantSettingsState | None = None


class PauseState(Body):
    tenant_id: str
    user_id: str | None = None
    paused: bool


class IssuedApiKey(Body):
    key_id: str
    api_key: str
    role: Literal["tenant"]
    tenant_id: str


class RatesOut(Body):
    input_per_million_usd: Usd
    output_per_million_usd: Usd
    cached_input_per_million_usd: Usd
    cache_write_per_million_usd: Usd
    cache_write_1h_per_million_usd: Usd
    reasoning_per_million_usd: Usd


class LongContextOut(RatesOut):
    above_input_tokens: int


class ServiceTierOut(RatesOut):
    long_context: list[LongContextOut]


class ModelPriceOut(Body):
    provider: str
    model: str
    input_per_million_usd: Usd
    output_per_million_usd: Usd
    cached_input_per_million_usd: Usd
    cache_write_per_million_usd: Usd | None = None
    cache_write_1h_per_million_usd: Usd | None = None
    reasoning_per_million_usd: Usd | None = None
    request_usd: Usd | None = None
    long_context: list[LongContextOut] | None = None
    service_tiers: dict[str, ServiceTierOut] | None = None
    max_output_tokens: int | None = None
    max_input_tokens: int | None = None
    effective_from: datetime
    source: str
    override: str | None = None


class TierPriceOut(Body):
    tier: str
    per_second_usd: Usd
    effective_from: datetime
    source: str


class PriceList(Body):
    models: list[ModelPriceOut]
    sandbox_tiers: list[TierPriceOut]
    next_cursor: str | None = None


class Health(Body):
    status: Literal["ok"]
    version: str


class RecordPage(Body):
    records: list[CostRecord]
    next_cursor: str | None = None


GroupBy = Literal["model", "user", "conversation", "task", "operation", "resource", "day"]


class UsageGroup(Body):
    key: str
    cost_usd: Usd


class UsageReport(Body):
    tenant_id: str
    from_date: date
    to_date: date
    group_by: GroupBy | None = None
    total_usd: Usd
    calls: int
    groups: list[UsageGroup]
    truncated: bool = False


class DailyCost(Body):
    day: date
    cost_usd: Usd


class Summary(Body):
    tenant_id: str
    month_to_date_usd: Usd
    today_usd: Usd
    top_models: list[UsageGroup]
    top_users: list[UsageGroup]
    daily_trend: list[DailyCost]
    truncated: bool = False


class Alert(Body):
    """A threshold crossing, an anomaly or a breach forecast, as recorded (exactly once)."""

    alert_id: str
    alert_type: Literal["threshold", "anomaly", "forecast", "recommendation", "overrun"]
    event: Literal[
        "QuotaThresholdCrossed",
        "CostAnomalyDetected",
        "QuotaBreachForecast",
        "RecommendationsDigest",
        "SpendOverrun",
    ]
    severity: Literal["info", "warning", "critical"]
    tenant_id: str | None = None
    title: str
    message: str
    quota_id: str | None = None
    period_key: str | None = None
    threshold_pct: int | None = None
    spent_usd: Usd | None = None
    limit_usd: Usd | None = None
    utilization: Usd | None = None
    resets_at: datetime | None = None
    created_at: datetime
    notify: bool
    grouped: list[int] | None = None
    notified_in: str | None = None
    delivery: Literal["pending", "sending", "sent", "grouped", "failed"]
    delivered_at: datetime | None = None
    details: dict[str, str] | None = None


class AlertPage(Body):
    alerts: list[Alert]
    next_cursor: str | None = None


class Recommendation(Body):
    """One piece of advice: what it saves per month, why (evidence), how sure (confidence)."""

    recommendation_id: str
    kind: Literal[
        "model_right_sizing", "prompt_caching", "output_caps", "sandbox_time", "quota_limits"
    ]
    title: str
    action: str
    monthly_savings_usd: Usd
    confidence: Literal["low", "medium", "high"]
    period_from: datetime
    period_to: datetime
    evidence: dict[str, str]


class RecommendationList(Body):
    tenant_id: str
    generated_at: datetime
    period_from: datetime
    period_to: datetime
    days_observed: int
    records_examined: int
    truncated: bool
    monthly_savings_usd: Usd
    recommendations: list[Recommendation]


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    Usage,
    ReserveRequest,
    CommitRequest,
    RecordRequest,
    QuotaPut,
    TenantCreate,
    PauseRequest,
    PricePut,
    LongContextPut,
    TenantSettings,
)
"""Sent to the server: checked against its OpenAPI components in validation mode."""

RESPONSE_MODELS: tuple[type[Body], ...] = (
    QuotaState,
    QuotaList,
    HoldBasis,
    Reservation,
    CostRecord,
    CheckResult,
    Release,
    Tenant,
    TenantSettingsState,
    PauseState,
    IssuedApiKey,
    ModelPriceOut,
    LongContextOut,
    ServiceTierOut,
    TierPriceOut,
    PriceList,
    Health,
    RecordPage,
    UsageGroup,
    UsageReport,
    DailyCost,
    Summary,
    Alert,
    AlertPage,
    Recommendation,
    RecommendationList,
)
"""Read from the server: checked against its OpenAPI components in serialization mode."""

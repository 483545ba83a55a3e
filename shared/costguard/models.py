"""Pydantic models at the domain's boundary: what callers send and what the ledger returns."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_serializer,
    model_validator,
)

from costguard.money import format_usd, parse_usd
from costguard.periods import ZONE_NAME, zone

MAX_TOKENS = 100_000_000
MAX_SECONDS = Decimal(31 * 24 * 3600)
MAX_USD = Decimal(1_000_000)


class Model(BaseModel):
    """Every boundary model: validators are built on first use, not at import (cold start)."""

    model_config = ConfigDict(defer_build=True)


_PLAIN_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _decimal_string(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float | int):
        # JSON numbers are binary floats to most clients; and 5 and 5.0 are the same JSON
        # Schema integer, so accepting one would make the document lie about the other.
        raise ValueError('must be a decimal string such as "0.05", not a JSON number')
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        # Decimal() alone also reads "1e2", " 1", "1_000" and non-ASCII digits ("١" is 1)
        raise ValueError('must be a plain decimal string such as "0.05"')
    if isinstance(value, str):
        return parse_usd(value)
    raise ValueError("must be a decimal string")


def _below(limit: int) -> str:
    """A regular expression of the integers 1 … limit − 1, written without leading zeros."""
    if limit <= 1:
        return "(?!)"
    top = str(limit - 1)
    shorter = [f"[1-9][0-9]{{{n - 1}}}" if n > 1 else "[1-9]" for n in range(1, len(top))]
    same = []
    for i, digit in enumerate(top):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(top) - i - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            same.append(f"{top[:i]}[{low}-{int(digit) - 1}]{tail}")
    return "|".join([*shorter, *same, top])


def decimal_schema(maximum: Decimal | int, places: int, positive: bool = False) -> dict[str, Any]:
    """The JSON Schema of what `_decimal_string` with `ge=0, le=maximum, decimal_places=places`
    accepts, exactly: a plain decimal string (leading zeros, "5." and ".5" included, trailing
    zeros not counted as places, "-0" being zero) within the bounds; `positive`: above 0. The
    OpenAPI document carries it, so what it calls valid the API takes, and nothing more."""
    top = int(maximum)
    fraction = f"[0-9]{{0,{places}}}0*"
    above_zero = f"0*\\.[0-9]{{0,{places - 1}}}[1-9]0*" if places else None
    if positive:  # above 0: zero in any spelling is refused
        forms = [f"0*(?:{_below(top)})(?:\\.{fraction})?", above_zero, f"0*{top}(?:\\.0*)?"]
    else:
        forms = [
            f"0*(?:{_below(top)}|0)(?:\\.{fraction})?",
            f"\\.(?:[0-9]{{1,{places}}}0*|0+)" if places else "\\.0+",
            f"0*{top}(?:\\.0*)?",
            "-(?:0+(?:\\.0*)?|\\.0+)",
        ]
    pattern = "|".join(f for f in forms if f)
    return {"type": "string", "pattern": f"^(?:{pattern})$"}


def _whole_number(value: Any) -> Any:
    """A JSON integer: 5, or 5.0 (JSON Schema's integer too), never "5", true or 5.5."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


def _timestamp_text(value: Any) -> Any:
    """An ISO-8601 string: pydantic alone reads the JSON number 0 as Unix time 0."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO-8601 timestamp string")
    return value


UsdOut = Annotated[Decimal, PlainSerializer(format_usd, return_type=str)]
"""An amount the ledger returns, serialized as a decimal string."""

Identifier = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+/-]*$")
]


_LLM_ONLY = (
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "cache_write_1h_input_tokens",
    "reasoning_tokens",
)


def _usage_rules(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The usage's cross-field rules (`_check_usage`, `CommitRequest._complete`, and for an
    estimate `holds.worst_case`) in JSON Schema, for the OpenAPI document: an llm usage has no
    tier or seconds and names a model or a cost; a sandbox usage has no model, provider,
    tokens or service tier and names tier and seconds or a cost; an estimate's cost (the first
    of `cost_usd`, `estimated_cost_usd` given) and a sandbox estimate's seconds are above 0; a
    commit sends a usage or `usage_unknown: true` alone. (Sums of token parts against
    `input_tokens`/`output_tokens` are comparisons JSON Schema cannot state; said in words.)"""
    null = {"type": "null"}
    estimate = model.__name__ in ("Usage", "ReserveRequest")  # the reserve and check bodies

    def given(*names: str) -> dict[str, Any]:
        return {"required": list(names), "properties": {n: {"not": null} for n in names}}

    def positive(name: str, maximum: Decimal, places: int) -> dict[str, Any]:
        return {
            "required": [name],
            "properties": {name: decimal_schema(maximum, places, positive=True)},
        }

    if estimate:
        cost = [
            positive("cost_usd", MAX_USD, 6),
            {"properties": {"cost_usd": null}, **positive("estimated_cost_usd", MAX_USD, 6)},
        ]
        seconds = {"allOf": [given("tier"), positive("seconds", MAX_SECONDS, 3)]}
    else:
        cost = [given("cost_usd"), given("estimated_cost_usd")]
        seconds = given("tier", "seconds")
    usage = [
        {
            "properties": {"resource": {"const": "llm"}, "tier": null, "seconds": null},
            "anyOf": [given("model"), *cost],
        },
        {
            "properties": {
                "resource": {"const": "sandbox"},
                "service_tier": {"const": "standard"},
                **{n: null for n in _LLM_ONLY},
            },
            "anyOf": [seconds, *cost],
        },
    ]
    if estimate:  # whatever the resource: an explicit cost, when given, is above 0
        schema["allOf"] = [
            {
                "anyOf": [
                    {"properties": {"cost_usd": null, "estimated_cost_usd": null}},
                    *cost,
                ]
            }
        ]
    if "usage_unknown" in schema.get("properties", {}):
        unknown = {
            "required": ["usage_unknown"],
            "properties": {
                "usage_unknown": {"const": True},
                "service_tier": {"const": "standard"},
                **{
                    n: null
                    for n in (*_LLM_ONLY, "tier", "seconds", "estimated_cost_usd", "cost_usd")
                },
            },
        }
        known = {
            "properties": {"usage_unknown": {"const": False}},
            "allOf": [given("resource"), {"anyOf": usage}],
        }
        schema["anyOf"] = [unknown, known]
    else:
        schema["anyOf"] = usage
    schema["description"] = (
        f"{schema.get('description', '')} An llm usage names `model` (with token counts) or a "
        "cost; a sandbox usage names `tier` and `seconds` or a cost. The cached and cache-write "
        "parts may not add up to more than `input_tokens`, nor `reasoning_tokens` exceed "
        "`output_tokens`."
    ).strip()


TokenCount = Annotated[int, Field(ge=0, le=MAX_TOKENS), BeforeValidator(_whole_number)]
UsdIn = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(ge=0, le=MAX_USD, decimal_places=6),
    WithJsonSchema(decimal_schema(MAX_USD, 6)),
]
"""An amount a caller sends: a decimal string (or a number), at most `MAX_USD`, to the
millionth of a dollar."""
"""A count of tokens: a whole number (5.0 is read as 5), never negative, at most 100 M."""


class Usage(Model):
    """An estimate (reserve, check) or actual usage (commit, record), with attribution."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_usage_rules)

    resource: Literal["llm", "sandbox"]
    provider: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")] | None
    ) = None
    model: (
        Annotated[
            str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
        ]
        | None
    ) = None
    input_tokens: TokenCount | None = None
    output_tokens: TokenCount | None = None
    cached_input_tokens: TokenCount | None = None
    """The part of `input_tokens` read from a prompt cache."""
    cache_write_input_tokens: TokenCount | None = None
    """The part of `input_tokens` written to a cache that lives 5 minutes (Anthropic: 1.25×)."""
    cache_write_1h_input_tokens: TokenCount | None = None
    """The part of `input_tokens` written with long retention: Anthropic's 1-hour cache (2×
    input), OpenAI's 12-hour one."""
    reasoning_tokens: TokenCount | None = None
    """The part of `output_tokens` spent reasoning (billed as output unless priced apart)."""
    service_tier: Literal["standard", "batch", "flex", "priority"] = "standard"
    tier: (
        Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9-]*$")] | None
    ) = None
    seconds: (
        Annotated[
            Decimal,
            BeforeValidator(_decimal_string),
            Field(ge=0, le=MAX_SECONDS, decimal_places=3),
            WithJsonSchema(decimal_schema(MAX_SECONDS, 3)),
        ]
        | None
    ) = None
    estimated_cost_usd: UsdIn | None = None
    cost_usd: UsdIn | None = None

    user_id: (
        Annotated[
            str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
        ]
        | None
    ) = None
    conversation_id: Identifier | None = None
    task_id: Identifier | None = None
    operation: (
        Annotated[
            str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
        ]
        | None
    ) = None
    metadata: (
        Annotated[
            dict[
                Annotated[str, Field(min_length=1, max_length=64)],
                Annotated[str, Field(max_length=256)],
            ],
            Field(max_length=16),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _complete(self) -> Usage:
        _check_usage(self)
        return self

    @property
    def explicit_usd(self) -> Decimal | None:
        return self.cost_usd if self.cost_usd is not None else self.estimated_cost_usd

    def attribution(self) -> dict[str, Any]:
        """The attribution fields that were set, for storage on a cost record."""
        return {
            k: v
            for k, v in (
                ("user_id", self.user_id),
                ("conversation_id", self.conversation_id),
                ("task_id", self.task_id),
                ("operation", self.operation),
                ("metadata", self.metadata),
            )
            if v is not None
        }


def _check_usage(self: Usage) -> None:
    """The cross-field rules of a usage (shared with the commit body)."""
    explicit = self.explicit_usd is not None
    if self.resource == "llm":
        if self.tier is not None or self.seconds is not None:
            raise ValueError("tier and seconds belong to resource 'sandbox'")
        if not explicit and self.model is None:
            raise ValueError("an llm usage needs 'model' (with token counts) or an explicit cost")
        parts = (
            (self.cached_input_tokens or 0)
            + (self.cache_write_input_tokens or 0)
            + (self.cache_write_1h_input_tokens or 0)
        )
        if parts > (self.input_tokens or 0):
            raise ValueError(
                "cached_input_tokens + cache_write_input_tokens + "
                "cache_write_1h_input_tokens cannot exceed input_tokens (which counts "
                "every prompt token)"
            )
        if (self.reasoning_tokens or 0) > (self.output_tokens or 0):
            raise ValueError("reasoning_tokens cannot exceed output_tokens")
    else:
        if any(
            v is not None
            for v in (
                self.model,
                self.provider,
                self.input_tokens,
                self.output_tokens,
                self.cached_input_tokens,
                self.cache_write_input_tokens,
                self.cache_write_1h_input_tokens,
                self.reasoning_tokens,
            )
        ):
            raise ValueError("model, provider and token counts belong to resource 'llm'")
        if self.service_tier != "standard":
            raise ValueError("service_tier belongs to resource 'llm'")
        if not explicit and (self.tier is None or self.seconds is None):
            raise ValueError("a sandbox usage needs 'tier' and 'seconds' or an explicit cost")


class QuotaState(Model):
    """One quota with its live figures in the current (or the reservation's) period."""

    quota_id: str
    scope: Literal["platform", "tenant", "user"]
    user_id: str | None = None
    resource: Literal["llm", "sandbox", "all"]
    period: Literal["day", "week", "month"]
    mode: Literal["hard", "soft"]
    limit_usd: UsdOut
    spent_usd: UsdOut
    reserved_usd: UsdOut
    remaining_usd: UsdOut
    utilization: UsdOut
    thresholds: list[int]
    period_key: str
    resets_at: datetime
    effective_at: datetime | None = None
    """After a platform quota write: every reserve applies it from this instant on (a write
    is announced 5 s ahead, docs/decisions.md D71); absent otherwise."""


def _known_zone(name: str) -> str:
    try:
        zone(name)
    except ValueError:
        raise ValueError(
            f"must be an IANA time zone such as UTC or Europe/Berlin, not {name!r}"
        ) from None
    return name


TimeZone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=ZONE_NAME.pattern,
        examples=["UTC", "America/Los_Angeles"],
    ),
    AfterValidator(_known_zone),
]
"""An IANA time zone name: the document states its shape, the zone database which names are
zones (a name of the right shape that is not one is a 422 naming the field)."""


class TenantSettings(Model):
    """How a tenant's holds settle at their edges (see the README's guarantee).

    `overrun`: a commit above its hold is recorded in full (`record`, money already spent is
    never dropped) or refused with 409 and the hold charged instead (`reject`, for platforms
    that enforce output caps themselves). `on_expiry`: a hold that expires without a commit is
    charged in full (`charge`: a crashed app cannot turn spend into $0) or returned
    (`release`).
    """

    model_config = ConfigDict(extra="forbid")

    overrun: Literal["record", "reject"] = "record"
    on_expiry: Literal["charge", "release"] = "charge"
    timezone: TimeZone = "UTC"
    """The IANA zone of the tenant's days, ISO weeks and months (its and its users' quotas,
    `Retry-After`, forecasts, anomalies; platform quotas stay UTC). A change takes effect at
    the next local midnight of the zone in effect, never in the middle of a day."""


class TenantSettingsState(TenantSettings):
    """The tenant's settings, and the zone its periods are counted in right now."""

    timezone_in_effect: str = "UTC"
    """The zone of the current periods: `timezone`, or the zone it replaces until
    `timezone_effective_at`."""
    timezone_effective_at: datetime | None = None
    """When a changed `timezone` takes effect (the next local midnight of the zone in effect);
    null when it is in effect."""


class QuotaList(Model):
    quotas: list[QuotaState]
    settings: TenantSettingsState | None = None
    """The tenant's settlement settings (absent for platform quotas)."""


class HoldBasis(Model):
    """How a reservation's hold was derived: always the worst case of the call."""

    basis: Literal["tokens", "estimated_cost", "sandbox_seconds"]
    input_tokens: int | None = None
    output_tokens: int | None = None
    """The output cap the hold was priced with."""
    output_cap_from: Literal["request", "catalog"] | None = None
    """`request`: the caller's `output_tokens`; `catalog`: the model's maximum output."""
    seconds: Decimal | None = None
    priced_as: str | None = None


class Reservation(Model):
    reservation_id: str
    tenant_id: str
    user_id: str | None = None
    resource: Literal["llm", "sandbox"]
    reserved_usd: UsdOut
    created_at: datetime
    expires_at: datetime
    guarded: bool = True
    hold: HoldBasis | None = None
    quotas: list[QuotaState] | None = None


class CostRecord(Model):
    record_id: str
    tenant_id: str
    reservation_id: str | None = None
    status: Literal["committed", "recorded"]
    resource: Literal["llm", "sandbox"]
    cost_usd: UsdOut
    estimated_usd: UsdOut | None = None
    overrun: bool = False
    overrun_usd: UsdOut = Decimal(0)
    """What the commit spent beyond its hold (recorded and counted in full)."""
    usage_unknown: bool = False
    """The caller could not tell what the call used: the whole hold was charged."""
    settled_by: Literal["commit", "usage_unknown", "expiry", "overrun_rejected"] | None = None
    """How a reservation was settled (None for usage recorded without a reservation)."""
    actual_usd: UsdOut | None = None
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
    seconds: Decimal | None = None
    price: dict[str, str] | None = None
    """The rates used (tier, long-context band, `priced_as`) and each cost component."""
    user_id: str | None = None
    conversation_id: str | None = None
    task_id: str | None = None
    operation: str | None = None
    metadata: dict[str, str] | None = None
    occurred_at: datetime
    recorded_at: datetime


class CheckResult(Model):
    allowed: bool
    requested_usd: UsdOut
    binding_quota_id: str | None = None
    paused: bool = False
    quotas: list[QuotaState]


class ReserveRequest(Usage):
    """A reservation: the estimate, its attribution, and how long the hold may live."""

    ttl_seconds: (
        Annotated[int, Field(ge=1, le=7 * 86_400), BeforeValidator(_whole_number)] | None
    ) = None


class CommitRequest(Usage):
    """A commit: the actual usage, or `{"usage_unknown": true}` to charge the whole hold.

    With `usage_unknown` no usage field is needed (resource, model and tokens come from the
    reservation); attribution fields may still be sent.
    """

    resource: Literal["llm", "sandbox"] | None = None  # type: ignore[assignment]
    usage_unknown: bool = False

    @model_validator(mode="after")
    def _complete(self) -> CommitRequest:  # replaces Usage's: `usage_unknown` needs no usage
        if self.usage_unknown:
            usage_fields = (
                self.provider,
                self.model,
                self.input_tokens,
                self.output_tokens,
                self.cached_input_tokens,
                self.cache_write_input_tokens,
                self.cache_write_1h_input_tokens,
                self.reasoning_tokens,
                self.tier,
                self.seconds,
                self.estimated_cost_usd,
                self.cost_usd,
            )
            if any(v is not None for v in usage_fields) or self.service_tier != "standard":
                raise ValueError("usage_unknown charges the whole hold: send no usage with it")
            return self
        if self.resource is None:
            raise ValueError("resource is required (or usage_unknown: true)")
        _check_usage(self)
        return self

    def usage(self) -> Usage:
        """The actual usage (not for `usage_unknown`)."""
        return Usage.model_validate(self.model_dump(exclude={"usage_unknown"}, exclude_none=True))


class RecordRequest(Usage):
    """Usage recorded without a reservation; `enforce: false` records it even over quota."""

    enforce: Annotated[bool, Field(strict=True)] = True


class QuotaPut(Model):
    model_config = ConfigDict(extra="forbid")

    limit_usd: Annotated[
        Decimal,
        BeforeValidator(_decimal_string),
        Field(ge=0, le=MAX_USD * 1000, decimal_places=6),
        WithJsonSchema(decimal_schema(MAX_USD * 1000, 6)),
    ]
    mode: Literal["hard", "soft"] = "hard"
    thresholds: Annotated[
        list[Annotated[int, Field(ge=1, le=1000), BeforeValidator(_whole_number)]],
        Field(max_length=10),
    ] = [
        50,
        80,
        90,
        100,
    ]
    grace_pct: Annotated[
        Decimal,
        BeforeValidator(_decimal_string),
        Field(ge=0, le=100, decimal_places=2),
        WithJsonSchema(decimal_schema(100, 2)),
    ] = Decimal(0)
    slices: Annotated[int, Field(ge=1, le=64), BeforeValidator(_whole_number)] = 1
    """Escrow slices for a hot quota (each its own item; their grants sum to the limit).
    Changing it later moves the unused allowance by transaction."""
    leased: Annotated[bool, Field(strict=True)] = False
    """A hard platform quota held through per-tenant leases of its allowance, so that a
    reserve does not write the platform counter (D78). Once leased, it stays leased."""


class TenantCreate(Model):
    model_config = ConfigDict(extra="forbid")

    tenant_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    plan: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")] | None
    ) = None
    settings: TenantSettings | None = None


class Tenant(Model):
    tenant_id: str
    name: str
    plan: str | None = None
    created_at: datetime
    settings: TenantSettingsState | None = None


class PauseRequest(Model):
    model_config = ConfigDict(extra="forbid")

    user_id: (
        Annotated[
            str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
        ]
        | None
    ) = None


class PauseState(Model):
    tenant_id: str
    user_id: str | None = None
    paused: bool


class Release(Model):
    reservation_id: str
    status: Literal["released", "expired"]
    released_usd: UsdOut


class IssuedApiKey(Model):
    key_id: str
    api_key: str
    role: Literal["tenant"]
    tenant_id: str


RatePut = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(ge=0, le=100_000, decimal_places=6),
    WithJsonSchema(decimal_schema(100_000, 6)),
]
"""A rate an operator sets, USD per million tokens."""


class LongContextPut(Model):
    """Rates for every token of a request whose prompt exceeds `above_input_tokens`."""

    model_config = ConfigDict(extra="forbid")

    above_input_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS), BeforeValidator(_whole_number)]
    input_per_million_usd: RatePut
    output_per_million_usd: RatePut
    cached_input_per_million_usd: RatePut | None = None
    cache_write_per_million_usd: RatePut | None = None
    cache_write_1h_per_million_usd: RatePut | None = None


class PricePut(Model):
    """A new price for a model (per million tokens), in force from `effective_from`.

    Rates left out are filled as the catalog fills them: no cached discount, cache writes at
    1.25× (5 minutes) and 2× (1 hour) the input rate for Claude models, at the input rate
    otherwise. An operator's price wins over the shipped catalog's while it is in force.
    """

    model_config = ConfigDict(extra="forbid")

    input_per_million_usd: RatePut
    output_per_million_usd: RatePut
    cached_input_per_million_usd: RatePut | None = None
    cache_write_per_million_usd: RatePut | None = None
    cache_write_1h_per_million_usd: RatePut | None = None
    request_usd: (
        Annotated[
            Decimal,
            BeforeValidator(_decimal_string),
            Field(ge=0, le=1_000, decimal_places=6),
            WithJsonSchema(decimal_schema(1_000, 6)),
        ]
        | None
    ) = None
    max_output_tokens: (
        Annotated[int, Field(ge=1, le=MAX_TOKENS), BeforeValidator(_whole_number)] | None
    ) = None
    long_context: Annotated[list[LongContextPut], Field(max_length=8)] | None = None
    effective_from: Annotated[datetime, BeforeValidator(_timestamp_text)]


class RatesOut(Model):
    input_per_million_usd: UsdOut
    output_per_million_usd: UsdOut
    cached_input_per_million_usd: UsdOut
    cache_write_per_million_usd: UsdOut
    cache_write_1h_per_million_usd: UsdOut
    reasoning_per_million_usd: UsdOut


class LongContextOut(RatesOut):
    above_input_tokens: int


class ServiceTierOut(RatesOut):
    long_context: list[LongContextOut]


class ModelPriceOut(Model):
    """A model's price schedule: the standard tier's rates at the top level, its long-context
    bands, and the other service tiers it is sold at."""

    provider: str
    model: str
    input_per_million_usd: UsdOut
    output_per_million_usd: UsdOut
    cached_input_per_million_usd: UsdOut
    cache_write_per_million_usd: UsdOut | None = None
    cache_write_1h_per_million_usd: UsdOut | None = None
    reasoning_per_million_usd: UsdOut | None = None
    request_usd: UsdOut | None = None
    long_context: list[LongContextOut] | None = None
    service_tiers: dict[str, ServiceTierOut] | None = None
    max_output_tokens: int | None = None
    max_input_tokens: int | None = None
    effective_from: datetime
    source: str
    override: str | None = None


class TierPriceOut(Model):
    tier: str
    per_second_usd: UsdOut
    effective_from: datetime
    source: str


class PriceList(Model):
    models: list[ModelPriceOut]
    sandbox_tiers: list[TierPriceOut]
    next_cursor: str | None = None


class Health(Model):
    status: Literal["ok"]
    version: str


class RecordPage(Model):
    records: list[CostRecord]
    next_cursor: str | None = None


class Alert(Model):
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
    spent_usd: UsdOut | None = None
    limit_usd: UsdOut | None = None
    utilization: Decimal | None = Field(default=None, description="spent / limit, 4 decimals")
    resets_at: datetime | None = None
    created_at: datetime
    notify: bool = Field(description="whether this record carried the notification")
    grouped: list[int] | None = Field(
        default=None, description="thresholds one change crossed together, notified once"
    )
    notified_in: str | None = Field(
        default=None, description="the alert that notified for this one (a jump across several)"
    )
    delivery: Literal["pending", "sending", "sent", "grouped", "failed"]
    delivered_at: datetime | None = None
    details: dict[str, str] | None = None

    @field_serializer("utilization")
    def _utilization(self, value: Decimal | None) -> str | None:
        return None if value is None else str(value)


class AlertPage(Model):
    alerts: list[Alert]
    next_cursor: str | None = None


class QuotaForecast(Model):
    """A quota's latest forecast (the forecast schedule writes it every 6 hours)."""

    quota_id: str
    scope: Literal["tenant", "user"]
    user_id: str | None = None
    resource: Literal["llm", "sandbox", "all"]
    period: Literal["day", "week", "month"]
    period_key: str
    resets_at: datetime
    computed_at: datetime
    spent_usd: UsdOut = Field(description="spent in the period when the forecast was made")
    limit_usd: UsdOut
    projected_usd: UsdOut = Field(description="expected spend at the end of the period")
    projected_utilization: Decimal | None = Field(
        default=None, description="projected / limit, 4 decimals"
    )
    daily_usd: UsdOut = Field(description="expected spend of the next whole day")
    breach_on: date | None = Field(
        default=None, description="the UTC day the limit is expected to be reached, if it is"
    )
    risk: Literal["low", "medium", "high", "critical"]
    method: Literal["profile", "level", "run_rate"] = Field(
        description="profile: trend + weekday profile of the tenant's days; level: its "
        "average day (7–13 days of history); run_rate: the period's spend so far over its time"
    )
    history_days: int

    @field_serializer("projected_utilization")
    def _projected_utilization(self, value: Decimal | None) -> str | None:
        return None if value is None else str(value)


class ForecastList(Model):
    tenant_id: str
    forecasts: list[QuotaForecast]

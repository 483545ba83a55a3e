"""Tenant onboarding: a `TenantCreated` event seeds the tenant's default quotas, once.

Which quotas a new tenant gets is deployment configuration: named plans (e.g. free / pro /
enterprise), each a set of tenant quotas, and a fallback plan for an event whose plan is
missing or unknown. The seeds ship one plan, `default`: LLM $100/month, sandbox $50/month,
all $150/month, alerting at 50/80/90/100 % (80 % is the warning).

Seeding is `Ledger.seed_quotas`: conditional, once per tenant, never replacing a quota an
operator set — so EventBridge's at-least-once delivery, replays and concurrent duplicates
are harmless.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from costguard.errors import CostguardError, InvalidRequest, Problem, Stage
from costguard.ledger.service import Ledger, SeedResult
from costguard.money import parse_usd
from costguard.notify import EventSink, PublishFailed
from costguard.quotas import (
    DEFAULT_THRESHOLDS,
    TENANT_ID,
    Mode,
    QuotaDefinition,
    QuotaId,
    Scope,
)
from costguard.settings import EnvSettings
from costguard.store.items import TenantItem

TENANT_CREATED = "TenantCreated"
"""The `detail-type` of the event."""
PLAN_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
DEFAULT_PLAN = "default"


class MalformedEvent(CostguardError):
    """An event onboarding cannot act on, whatever the retry: it goes to the dead-letter queue."""

    code = "malformed_event"
    problem = Problem(422, "malformed-event", "Malformed event", Stage.VALIDATION)

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownPlan(MalformedEvent):
    code = "unknown_plan"
    problem = Problem(422, "unknown-plan", "Unknown plan", Stage.VALIDATION)


# ------------------------------------------------------------------------------------ plans
class QuotaSpec(BaseModel):
    """One default quota in the configuration: `{"limit_usd": "100"}` or just `"100"`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit_usd: Decimal
    mode: Mode = Mode.HARD
    thresholds: tuple[Annotated[int, Field(ge=1, le=1000)], ...] = DEFAULT_THRESHOLDS
    grace_pct: Decimal = Decimal(0)

    @field_validator("limit_usd", "grace_pct", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Decimal:
        amount = parse_usd(value)  # refuses floats: money is a decimal string
        if amount < 0:
            raise ValueError("must not be negative")
        return amount


@dataclass(frozen=True)
class Plans:
    """Named sets of default tenant quotas, and the plan used when an event names none we know."""

    sets: Mapping[str, tuple[QuotaDefinition, ...]]
    fallback: str | None = DEFAULT_PLAN

    def resolve(self, plan: str | None) -> tuple[str, tuple[QuotaDefinition, ...]]:
        """(the plan applied, its quotas); UnknownPlan when neither it nor a fallback exists."""
        name = plan.strip().lower() if plan else None
        if name and name in self.sets:
            return name, self.sets[name]
        if self.fallback is not None:
            return self.fallback, self.sets[self.fallback]
        known = ", ".join(sorted(self.sets))
        raise UnknownPlan(f"plan {plan!r} is not one of [{known}] and there is no fallback plan")

    def to_json(self) -> str:
        """The canonical, compact form (function environment, docs): defaults left out."""
        out: dict[str, dict[str, Any]] = {}
        for name, quotas in sorted(self.sets.items()):
            out[name] = {}
            for q in quotas:
                spec: dict[str, Any] = {"limit_usd": str(q.limit_usd)}
                if q.mode is not Mode.HARD:
                    spec["mode"] = q.mode.value
                if q.thresholds != DEFAULT_THRESHOLDS:
                    spec["thresholds"] = list(q.thresholds)
                if q.grace_pct:
                    spec["grace_pct"] = str(q.grace_pct)
                out[name][str(q.quota_id)] = spec
        return json.dumps(out, separators=(",", ":"))


SEED_PLANS: dict[str, dict[str, Any]] = {
    DEFAULT_PLAN: {
        "tenant:llm:month": {"limit_usd": "100"},
        "tenant:sandbox:month": {"limit_usd": "50"},
        "tenant:all:month": {"limit_usd": "150"},
    }
}
"""The product's seeds; a deployment replaces them (CDK context `costguard:default_quotas`)."""


def parse_plans(raw: Mapping[str, Any] | str, fallback: str | None = DEFAULT_PLAN) -> Plans:
    """Validate a plans configuration (a JSON object or its text); ValueError says what is wrong.

    `{"pro": {"tenant:llm:month": {"limit_usd": "500", "mode": "soft"}, ...}, ...}`. Only
    tenant-scope quotas (`tenant:<resource>:<period>`): a default applies to a whole new tenant.
    """
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, Mapping) or not data:
        raise ValueError("default quotas must be a non-empty JSON object of plans")
    sets: dict[str, tuple[QuotaDefinition, ...]] = {}
    for name, quotas in data.items():
        if not isinstance(name, str) or not _plan_name_ok(name):
            raise ValueError(f"plan name {name!r}: lowercase letters, digits, '-' and '_'")
        if not isinstance(quotas, Mapping):
            raise ValueError(f"plan {name!r}: an object of quota_id → spec")
        definitions = []
        for text, spec in quotas.items():
            try:
                quota_id = QuotaId.parse(text)
            except InvalidRequest as exc:
                raise ValueError(f"plan {name!r}: {exc.detail}") from None
            if quota_id.scope is not Scope.TENANT:
                raise ValueError(f"plan {name!r}: {text} is not a tenant quota (tenant:…)")
            try:
                parsed = QuotaSpec.model_validate(
                    spec if isinstance(spec, Mapping) else {"limit_usd": spec}
                )
            except (ValidationError, TypeError) as exc:
                raise ValueError(f"plan {name!r}, {text}: {_first_error(exc)}") from None
            definitions.append(
                QuotaDefinition(
                    quota_id, parsed.limit_usd, parsed.mode, parsed.thresholds, parsed.grace_pct
                )
            )
        sets[name] = tuple(sorted(definitions, key=lambda q: str(q.quota_id)))
    if fallback is not None and fallback not in sets:
        raise ValueError(f"fallback plan {fallback!r} is not one of {sorted(sets)}")
    return Plans(sets, fallback)


def _plan_name_ok(name: str) -> bool:
    return re.match(PLAN_NAME, name) is not None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)


class OnboardingSettings(EnvSettings):
    """The function environment onboarding reads, once per cold start."""

    default_quotas: str = Field(default_factory=lambda: json.dumps(SEED_PLANS))
    """Plans as JSON (see `parse_plans`)."""
    fallback_plan: str | None = DEFAULT_PLAN
    """Empty: an event with a missing or unknown plan is refused (dead-letter queue)."""
    dead_letter_queue_url: str | None = None
    """Where the onboarding function puts the events it refuses (SQS)."""


@lru_cache(maxsize=1)
def plans_from_settings() -> Plans:
    """This deployment's plans; a bad configuration fails the cold start."""
    settings = OnboardingSettings()
    return parse_plans(settings.default_quotas, settings.fallback_plan or None)


# ----------------------------------------------------------------------------------- events
class TenantCreatedDetail(BaseModel):
    """The `detail` of a `TenantCreated` event: the tenant's id, and the plan that picks its
    default quotas. Other fields (name, created_at, whatever the platform adds) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: Annotated[str, Field(pattern=TENANT_ID.pattern)]
    plan: Annotated[str, Field(max_length=64)] | None = None
    name: Annotated[str, Field(max_length=200)] | None = None


def malformed_reason(exc: ValidationError) -> str:
    """One line naming every offending field, for the log and the dead-letter message."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Onboarded:
    tenant_id: str
    plan: str
    result: SeedResult

    def summary(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "plan": self.plan,
            "seeded": list(self.result.seeded),
            "kept": list(self.result.kept),
            "first": self.result.first,
        }


class Onboarding:
    """Seeds a new tenant's default quotas from its plan."""

    def __init__(self, ledger: Ledger, plans: Plans) -> None:
        self.ledger = ledger
        self.plans = plans

    def seed(self, detail: TenantCreatedDetail, event_id: str | None = None) -> Onboarded:
        """Write the defaults of the tenant's plan; a repeat writes nothing (see seed_quotas).

        UnknownPlan (a MalformedEvent) when the plan is unknown and there is no fallback.
        """
        plan, quotas = self.plans.resolve(detail.plan)
        result = self.ledger.seed_quotas(
            detail.tenant_id,
            quotas,
            seeded_by={"plan": plan, "event_id": event_id or ""},
        )
        return Onboarded(detail.tenant_id, plan, result)


def announce_tenant(
    sink: EventSink,
    tenant: TenantItem,
    onboarding: Onboarding,
    unpublished: Callable[[PublishFailed], None] = lambda _: None,
) -> Onboarded | None:
    """Put `TenantCreated` on the bus; if the bus refuses it, seed the defaults right here.

    Returns None when the event was published (the onboarding function seeds), or what the
    direct seeding did. A tenant is never left without its defaults because an event was lost.
    `unpublished` is told first (other subscribers of the event will not get it), so the loss
    is reported even when the direct seeding fails too.
    """
    detail = tenant.to_item()
    try:
        sink.put(TENANT_CREATED, detail)
    except PublishFailed as exc:
        unpublished(exc)
        return onboarding.seed(TenantCreatedDetail.model_validate(detail))
    return None


# ------------------------------------------------------------------------------ dead letters
class DeadLetters(Protocol):
    def send(self, event: Mapping[str, Any], reason: str) -> None:
        """Keep an event that will never succeed, with why; raises when it could not."""


class SqsDeadLetters:
    """The onboarding DLQ: the message body is the event itself, as EventBridge's and Lambda's
    own dead-letter messages are, so every message in the queue is replayed the same way."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, event: Mapping[str, Any], reason: str) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(event, default=str),
            MessageAttributes={
                "ErrorCode": {"DataType": "String", "StringValue": MalformedEvent.code},
                "ErrorMessage": {"DataType": "String", "StringValue": reason[:1024] or "-"},
            },
        )


def dead_letters_from_settings() -> DeadLetters | None:
    """The configured DLQ, or None (then a refused event is raised for Lambda to dead-letter)."""
    url = OnboardingSettings().dead_letter_queue_url
    if not url:
        return None
    import boto3

    return SqsDeadLetters(boto3.client("sqs"), url)

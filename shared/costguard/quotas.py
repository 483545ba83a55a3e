"""Quota definitions, their readable ids, and which quotas apply to a request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from costguard.errors import InvalidRequest
from costguard.periods import Period, period_end, zone

DEFAULT_THRESHOLDS: tuple[int, ...] = (50, 80, 90, 100)
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")


class Scope(StrEnum):
    PLATFORM = "platform"
    TENANT = "tenant"
    USER = "user"

    @property
    def letter(self) -> str:
        return self.value[0]


class Resource(StrEnum):
    LLM = "llm"
    SANDBOX = "sandbox"
    ALL = "all"

    @property
    def letter(self) -> str:
        return self.value[0]

    @classmethod
    def from_letter(cls, letter: str) -> Resource:
        return {"l": cls.LLM, "s": cls.SANDBOX, "a": cls.ALL}[letter]


class Mode(StrEnum):
    HARD = "hard"
    SOFT = "soft"


class OnOverrun(StrEnum):
    """What a commit above its hold does (a tenant setting)."""

    RECORD = "record"
    REJECT = "reject"


class OnExpiry(StrEnum):
    """What a hold that expires without a commit becomes (a tenant setting)."""

    CHARGE = "charge"
    RELEASE = "release"


def validate_timezone(name: str, field: str = "timezone") -> str:
    """An IANA zone name the machine knows (`UTC`, `Europe/Berlin`), else InvalidRequest."""
    try:
        zone(name)
    except ValueError:
        raise InvalidRequest(
            f"{field} must be an IANA time zone such as UTC or Europe/Berlin, not {name!r}",
            field=field,
        ) from None
    return name


def validate_tenant_id(tenant_id: str) -> str:
    if not TENANT_ID.match(tenant_id):
        raise InvalidRequest(
            "tenant_id must be 3-64 lowercase letters, digits or '-'", field="tenant_id"
        )
    return tenant_id


def quota_id_pattern(*scopes: Scope) -> str:
    """The regular expression (JSON Schema dialect too) of the quota ids of these scopes that
    `QuotaId.parse` accepts: the OpenAPI document declares it, the API enforces it."""
    resources = "|".join(r.value for r in Resource)
    periods = "|".join(p.value for p in Period)
    user = USER_ID.pattern.removeprefix("^").removesuffix("$")
    kinds = [f"user:{user}" if scope is Scope.USER else scope.value for scope in scopes]
    return f"^(?:{'|'.join(kinds)}):(?:{resources}):(?:{periods})$"


def validate_user_id(user_id: str) -> str:
    if not USER_ID.match(user_id):
        raise InvalidRequest(
            "user_id must be 1-128 characters of letters, digits and ._@+-", field="user_id"
        )
    return user_id


@dataclass(frozen=True, order=True)
class QuotaId:
    """`tenant:llm:month`, `user:u-42:all:day`, `platform:sandbox:week`."""

    scope: Scope
    resource: Resource
    period: Period
    user_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> QuotaId:
        parts = text.split(":")
        try:
            if len(parts) == 4 and parts[0] == Scope.USER:
                return cls(
                    Scope.USER, Resource(parts[2]), Period(parts[3]), validate_user_id(parts[1])
                )
            if len(parts) == 3 and parts[0] in (Scope.TENANT, Scope.PLATFORM):
                return cls(Scope(parts[0]), Resource(parts[1]), Period(parts[2]))
        except ValueError:
            pass
        raise InvalidRequest(
            "quota_id must look like tenant:llm:month, user:<user_id>:all:day "
            "or platform:sandbox:week (resource llm|sandbox|all, period day|week|month)",
            field="quota_id",
        )

    def __str__(self) -> str:
        if self.scope is Scope.USER:
            return f"user:{self.user_id}:{self.resource}:{self.period}"
        return f"{self.scope}:{self.resource}:{self.period}"


@dataclass(frozen=True)
class QuotaDefinition:
    """What an operator set: a limit, hard or soft, and when to alert."""

    quota_id: QuotaId
    limit_usd: Decimal
    mode: Mode = Mode.HARD
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    grace_pct: Decimal = Decimal(0)
    slices: int = 1
    """Escrow slices the quota's counter is split into (1–64; decisions D74)."""
    span: int = 1
    """The largest slice count it ever had: every slice index that may hold anything."""
    solo_period: str | None = None
    """The period whose limit was cut below its use: reserves take slice 0 only there (D76)."""
    leased: bool = False
    """A platform quota held through per-tenant leases of its allowance (D78, D87)."""
    lease_epoch: int = 0
    """The platform policy version from which its leases count: set when the quota is created
    leased or its limit is cut; a lease granted under an older one is not spent (D94)."""

    @property
    def sliced(self) -> bool:
        return self.slices > 1 or self.span > 1

    def denial_threshold(self, amount: Decimal) -> Decimal | None:
        """The least `avail` a counter must have for `amount` to pass, None if never denied.

        `avail` is limit − spent − held, so a hard quota needs avail ≥ amount and a soft quota
        with grace g % needs avail ≥ amount − limit·g/100. A soft quota without grace only alerts.
        """
        if self.mode is Mode.HARD:
            return amount
        if self.grace_pct > 0:
            return amount - self.limit_usd * self.grace_pct / 100
        return None


@dataclass(frozen=True)
class Policy:
    """The quotas and pause flags of one principal set (the platform, or one tenant)."""

    version: int = 0
    exists: bool = False
    paused: bool = False
    paused_users: frozenset[str] = field(default_factory=frozenset)
    quotas: tuple[QuotaDefinition, ...] = ()
    overrun: OnOverrun = OnOverrun.RECORD
    on_expiry: OnExpiry = OnExpiry.CHARGE
    timezone: str = "UTC"
    """The tenant's zone (its calendar: days, weeks, months) from `timezone_from` on."""
    timezone_from: datetime | None = None
    """When `timezone` took or takes effect; None: since always."""
    timezone_before: str = "UTC"
    """The zone in effect before `timezone_from`."""
    lanes: int = 1
    """The tenant's record lanes (D98): its records, `holds` index keys and day rollups are
    spread over lanes 0..lanes−1. The largest slice count any of its quotas ever had; it
    never shrinks, so every lane a record was ever written in is read."""
    replicas: int = 1
    """Copies of the policy's version a spend in lane i proves instead of the policy item
    (copy i mod replicas; D99): written with every version since the tenant's lanes were."""

    def zone_at(self, at: datetime) -> str:
        """The zone whose calendar a spend at `at` is counted in (platform quotas: UTC)."""
        if self.timezone_from is not None and at < self.timezone_from:
            return self.timezone_before
        return self.timezone

    def zone_change(self, new: str, now: datetime) -> tuple[str, datetime | None, str]:
        """(timezone, timezone_from, timezone_before) after asking for `new` at `now`.

        The zone in effect now keeps its current day: `new` takes effect at its next local
        midnight (docs/decisions.md D64), so the day in progress is never cut short or
        reopened. Asking again for the zone in effect cancels a pending change.
        """
        current = self.zone_at(now)
        pending = self.timezone_from is not None and now < self.timezone_from
        if new == current:
            if pending:
                return current, None, "UTC"
            return self.timezone, self.timezone_from, self.timezone_before
        return new, period_end(Period.DAY, now, zone(current)), current

    def applicable(self, resource: Resource, user_id: str | None) -> list[QuotaDefinition]:
        """Every quota that a spend of `resource` by `user_id` counts against."""
        return [
            q
            for q in self.quotas
            if q.quota_id.resource in (resource, Resource.ALL)
            and (q.quota_id.scope is not Scope.USER or q.quota_id.user_id == user_id)
        ]

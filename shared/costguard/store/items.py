"""Typed codecs of the table's items: each kind decoded once, where it leaves the table.

A reader gets a frozen dataclass (or, for a policy, the domain's `Policy`), never a bare
`dict[str, Any]`; a malformed item is `LedgerCorrupted` here, not a `KeyError` somewhere
downstream. Plain dataclasses, no validation library: commit decodes its record on the request
path, and a dataclass costs a few microseconds where a pydantic model costs tens (D90).

- `policy_of` / `quota_spec`: the `POLICY` item of the platform or a tenant ⇄ `Policy`;
- `CostRecordItem`: a reservation or cost record (`TENANT#<t>#REC / <ulid>`);
- `DayRollup`: a tenant's day item read as its rollup (spend by resource, model, tier, user
  bucket; written by `ADD`s, so it has no `to_item`);
- `AlertItem`: an alert record (`…#ALERT / A#<ulid>`), with its delivery bookkeeping;
- `ForecastItem`: a quota's latest forecast (`TENANT#<t> / FORECAST#<quota>`);
- `ApiKeyItem`: a tenant's API key, hashed (`APIKEY#<id> / APIKEY`);
- `TenantItem`: a tenant's registration (`TENANT#<t> / TENANT`).

Counter items have their own codec, `costguard.store.counters.CounterItem` (D114): their
attributes are named by quota and slice (D80), so it is a lazy view over the map that decodes
only the figures, holds and lease terms asked for (a default reserve reads three figures of its
`ALL_NEW` item); the spend engine's counter reads and the stream's counter images go through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from costguard.errors import InvalidRequest, LedgerCorrupted
from costguard.money import ZERO
from costguard.periods import zone
from costguard.quotas import (
    DEFAULT_THRESHOLDS,
    Mode,
    OnExpiry,
    OnOverrun,
    Policy,
    QuotaDefinition,
    QuotaId,
    Scope,
)
from costguard.store.codec import iso, opt_int, parse_iso
from costguard.store.keys import (
    OUTBOX,
    POLICY_REPLICAS,
    ROLLUP_BUCKET,
    ROLLUP_BUCKET_USER,
    ROLLUP_MODEL,
    ROLLUP_TIER,
    alert_sk,
    day_of,
    key_id_of,
)
from costguard.store.schema import HOLDS_PK, HOLDS_SK, TTL_ATTRIBUTE

Item = Mapping[str, Any]
LANES = "lanes"
"""A tenant policy's record lanes (D98): written by a sliced quota's PUT, never lowered."""

# ------------------------------------------------------------------------------ policy


def zone_fields(item: Item) -> dict[str, Any]:
    """The zone fields of a stored policy item (absent: UTC since always), as `Policy` takes
    them; ValueError if a stored zone is unknown."""
    since = item.get("timezone_from")
    found: dict[str, Any] = {
        "timezone": str(item.get("timezone", "UTC")),
        "timezone_before": str(item.get("timezone_before", "UTC")),
        "timezone_from": datetime.fromisoformat(since) if since else None,
    }
    zone(found["timezone"])
    zone(found["timezone_before"])
    return found


def quota_of(quota_id: str, spec: Item) -> QuotaDefinition:
    """One quota of a policy item's `quotas` map (the slicing fields only when sliced, D74;
    `leased` and its `lease_epoch` only when leased, D78, D94)."""
    sliced: dict[str, Any] = {}
    if "slices" in spec:
        sliced = {
            "slices": int(spec["slices"]),
            "span": int(spec.get("span", spec["slices"])),
            "solo_period": spec.get("solo"),
        }
    return QuotaDefinition(
        quota_id=QuotaId.parse(quota_id),
        limit_usd=Decimal(spec["limit_usd"]),
        mode=Mode(spec.get("mode", "hard")),
        thresholds=tuple(int(t) for t in spec.get("thresholds", DEFAULT_THRESHOLDS)),
        grace_pct=Decimal(spec.get("grace_pct", 0)),
        leased=bool(spec.get("leased", False)),
        lease_epoch=int(spec.get("lease_epoch", 0)),
        **sliced,
    )


def quota_spec(quota: QuotaDefinition) -> dict[str, Any]:
    """A quota as the policy item stores it (the slicing fields are written by the re-grant,
    `costguard.ledger.slicing`, which knows the period a cut applies to)."""
    return {
        "limit_usd": quota.limit_usd,
        "mode": quota.mode.value,
        "thresholds": list(quota.thresholds),
        "grace_pct": quota.grace_pct,
        **({"leased": True, "lease_epoch": quota.lease_epoch} if quota.leased else {}),
    }


def policy_of(item: Item | None) -> Policy:
    """The `Policy` a policy item holds (no item: the empty policy); malformed: corrupted."""
    if item is None:
        return Policy()
    try:
        quotas = tuple(
            quota_of(quota_id, spec) for quota_id, spec in sorted(item.get("quotas", {}).items())
        )
        return Policy(
            version=int(item.get("version", 0)),
            exists=True,
            paused=bool(item.get("paused", False)),
            paused_users=frozenset(item.get("paused_users", set())),
            quotas=quotas,
            overrun=OnOverrun(item.get("overrun", OnOverrun.RECORD)),
            on_expiry=OnExpiry(item.get("on_expiry", OnExpiry.CHARGE)),
            replicas=min(int(item.get(LANES, 1)), POLICY_REPLICAS),
            lanes=max(
                int(item.get(LANES, 1)),
                *(max(q.slices, q.span) for q in quotas if q.quota_id.scope is not Scope.PLATFORM),
                1,
            ),
            **zone_fields(item),
        )
    # InvalidRequest: a stored quota id that does not parse is the ledger's fault, not the
    # caller's (it was a 422); AttributeError: `quotas` that is not a map (a 500).
    except (
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
        ArithmeticError,
        InvalidRequest,
    ) as exc:
        raise LedgerCorrupted(f"policy item {item.get('pk')} is malformed") from exc


def policy_version(item: Item | None) -> int | None:
    """A policy item's `version` alone (what a snapshot checks; None: no item, or a version
    never written); not a whole number: corrupted."""
    if item is None or item.get("version") is None:
        return None
    version = item["version"]
    try:
        if isinstance(version, bool) or int(version) != version:
            raise ValueError(version)
        return int(version)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise LedgerCorrupted(f"policy item {item.get('pk')} has a malformed version") from exc


# ------------------------------------------------------------------------- cost record

SETTLED = frozenset({"committed", "recorded"})
"""The statuses whose `cost_usd` is spend (a usage page, a breakdown, recommendations)."""


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else parse_iso(value)


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _opt_decimal(value: Any) -> Decimal | None:
    if value is None or type(value) is Decimal:  # what the deserializer gives: no copy
        return value
    return Decimal(value)


@dataclass(frozen=True, slots=True)
class CostRecordItem:
    """A reservation or a cost record as stored: `held`, then `committed`, `released` or
    `expired`; or `recorded` (usage without a reservation)."""

    record_id: str
    """The sort key: a ULID, the record's creation time."""
    tenant_id: str
    status: str
    terms: str
    """The reservation id's part after the ULID (`costguard.ledger.terms.ReservationRef`),
    stored as `plan` (D91: renaming the stored attribute would rewrite every live hold)."""
    resource: str
    created_at: datetime
    estimate_usd: Decimal | None = None
    """The hold (a reservation's worst case); None for a `recorded` record."""
    cost_usd: Decimal | None = None
    """What was charged; None while held, released or expired."""
    recorded_at: datetime | None = None
    expires_at: datetime | None = None
    settled_at: datetime | None = None
    settled_by: str | None = None
    overrun: bool | None = None
    """None, False and the zero `overrun_usd` (and `usage_unknown`) read alike; they are kept
    apart so that an item is written back exactly as it was read."""
    overrun_usd: Decimal | None = None
    usage_unknown: bool | None = None
    actual_usd: Decimal | None = None
    commit_hash: str | None = None
    hold: dict[str, Any] | None = None
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
    price: dict[str, Any] | None = None
    user_id: str | None = None
    conversation_id: str | None = None
    task_id: str | None = None
    operation: str | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.settled and (self.cost_usd is None or self.recorded_at is None):
            raise ValueError(f"a {self.status} record without cost_usd or recorded_at")
        if self.status == "held" and self.estimate_usd is None:
            raise ValueError("a held record without estimate_usd")

    @property
    def reservation_id(self) -> str:
        return f"{self.record_id}~{self.terms}"

    @property
    def settled(self) -> bool:
        return self.status in SETTLED

    @property
    def charged_usd(self) -> Decimal:
        """What this record adds to spend (zero unless settled)."""
        return self.cost_usd if self.cost_usd is not None and self.settled else ZERO

    @classmethod
    def from_item(cls, item: Item) -> CostRecordItem:
        """Decode a record item; a missing or mistyped attribute is a corrupted ledger."""
        try:
            g = item.get
            return cls(
                record_id=str(item["sk"]),
                tenant_id=item["tenant_id"],
                status=item["status"],
                terms=item["plan"],
                resource=item["resource"],
                created_at=parse_iso(item["created_at"]),
                estimate_usd=_opt_decimal(g("estimate_usd")),
                cost_usd=_opt_decimal(g("cost_usd")),
                recorded_at=_opt_time(g("recorded_at")),
                expires_at=_opt_time(g("expires_at")),
                settled_at=_opt_time(g("settled_at")),
                settled_by=g("settled_by"),
                overrun=_opt_bool(g("overrun")),
                overrun_usd=_opt_decimal(g("overrun_usd")),
                usage_unknown=_opt_bool(g("usage_unknown")),
                actual_usd=_opt_decimal(g("actual_usd")),
                commit_hash=g("commit_hash"),
                hold=g("hold"),
                provider=g("provider"),
                model=g("model"),
                tier=g("tier"),
                input_tokens=opt_int(g("input_tokens")),
                output_tokens=opt_int(g("output_tokens")),
                cached_input_tokens=opt_int(g("cached_input_tokens")),
                cache_write_input_tokens=opt_int(g("cache_write_input_tokens")),
                cache_write_1h_input_tokens=opt_int(g("cache_write_1h_input_tokens")),
                reasoning_tokens=opt_int(g("reasoning_tokens")),
                service_tier=g("service_tier"),
                seconds=_opt_decimal(g("seconds")),
                price=g("price"),
                user_id=g("user_id"),
                conversation_id=g("conversation_id"),
                task_id=g("task_id"),
                operation=g("operation"),
                metadata=g("metadata"),
            )
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise LedgerCorrupted(f"cost record {item.get('sk')} is malformed") from exc

    def to_item(self) -> dict[str, Any]:
        """The stored attributes (absent when None; `sk` for the id; the index keys and the
        TTL belong to the writes that set them)."""
        return CostRecordItem.encode(
            {RECORD_ATTRIBUTE[name]: getattr(self, name) for name in RECORD_ATTRIBUTE}
        )

    @staticmethod
    def encode(attributes: Item) -> dict[str, Any]:
        """The stored form of record attributes, whole or in part, named as stored: what the
        spend engine puts and sets (hold, record, commit, release, expiry). Absent when None,
        times as `iso`; a name the record does not declare is a ValueError (the keys and TTL
        written beside it pass). It builds the map directly, not through the dataclass: the
        request path writes a record per reserve, commit and record, and a frozen instance of
        forty fields costs microseconds there (D107)."""
        out: dict[str, Any] = {}
        for name, value in attributes.items():
            if value is None:
                continue
            if name not in WRITTEN_NAMES:
                raise ValueError(f"a cost record has no attribute {name!r}")
            out[name] = iso(value) if type(value) is datetime else value
        return out

    def attribute(self, name: str) -> str | None:
        """An attribution a breakdown groups by: `user`, `conversation`, `task`, `operation`."""
        value = getattr(self, f"{name}_id" if name in ("user", "conversation", "task") else name)
        return None if value is None else str(value)


RECORD_ATTRIBUTE = {
    f.name: {"record_id": "sk", "terms": "plan"}.get(f.name, f.name) for f in fields(CostRecordItem)
}
"""Each field of `CostRecordItem` → the attribute it is stored as."""
WRITTEN_NAMES = frozenset(RECORD_ATTRIBUTE.values()) | {"pk", HOLDS_PK, HOLDS_SK, TTL_ATTRIBUTE}
"""What a record write may carry: the record's attributes and the keys and TTL beside them."""


# --------------------------------------------------------------------------- day rollup


@dataclass(frozen=True, slots=True)
class DayRollup:
    """A tenant's day item read as its rollup (the tenant's local day, D37)."""

    day: date
    usd: Mapping[str, Decimal]
    """Spend by resource: `llm`, `sandbox` and `all`."""
    calls: int = 0
    by_model: Mapping[str, Decimal] = field(default_factory=dict)
    """`<provider>/<model>` → spend (llm)."""
    by_tier: Mapping[str, Decimal] = field(default_factory=dict)
    """`<tier>` → spend (sandbox)."""
    by_bucket: Mapping[str, Decimal] = field(default_factory=dict)
    """User bucket (`07`) → spend; `bucket_users` has the last user seen in each."""
    bucket_users: Mapping[str, str] = field(default_factory=dict)

    def spent(self, resource: str = "all") -> Decimal:
        return self.usd.get(resource, ZERO)

    def by_model_or_tier(self) -> dict[str, Decimal]:
        """Spend by model, and by sandbox tier as `sandbox:<tier>`: the keys
        `GET …/usage?group_by=model` shows."""
        return dict(self.by_model) | {f"sandbox:{t}": v for t, v in self.by_tier.items()}

    @classmethod
    def summed(cls, parts: list[DayRollup]) -> DayRollup:
        """One day's rollup from its lanes' (D98): every figure summed; a bucket's last user
        is the first lane's that has one (lane 0 first)."""
        if len(parts) == 1:
            return parts[0]

        def total(maps: list[Mapping[str, Decimal]]) -> dict[str, Decimal]:
            out: dict[str, Decimal] = {}
            for m in maps:
                for k, v in m.items():
                    out[k] = out.get(k, ZERO) + v
            return out

        users: dict[str, str] = {}
        for part in parts:
            users = {**part.bucket_users, **users}
        return cls(
            day=parts[0].day,
            usd=total([p.usd for p in parts]),
            calls=sum(p.calls for p in parts),
            by_model=total([p.by_model for p in parts]),
            by_tier=total([p.by_tier for p in parts]),
            by_bucket=total([p.by_bucket for p in parts]),
            bucket_users=users,
        )

    @classmethod
    def from_item(cls, item: Item) -> DayRollup:
        usd: dict[str, Decimal] = {}
        by: dict[str, dict[str, Decimal]] = {ROLLUP_MODEL: {}, ROLLUP_TIER: {}, ROLLUP_BUCKET: {}}
        users: dict[str, str] = {}
        try:
            for attribute, value in item.items():
                if attribute.startswith("usd_"):
                    usd[attribute.removeprefix("usd_")] = Decimal(value)
                elif attribute.startswith(ROLLUP_BUCKET_USER):
                    users[attribute.removeprefix(ROLLUP_BUCKET_USER)] = str(value)
                else:
                    for prefix, found in by.items():
                        if attribute.startswith(prefix):
                            found[attribute.removeprefix(prefix)] = Decimal(value)
            return cls(
                day=date.fromisoformat(day_of(str(item["sk"]))),
                usd=usd,
                calls=int(item.get("calls", 0)),
                by_model=by[ROLLUP_MODEL],
                by_tier=by[ROLLUP_TIER],
                by_bucket=by[ROLLUP_BUCKET],
                bucket_users=users,
            )
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise LedgerCorrupted(f"day item {item.get('sk')} is malformed") from exc


# -------------------------------------------------------------------------------- alert


@dataclass(frozen=True, slots=True)
class AlertItem:
    """An alert record as stored: what happened, and how its delivery stands."""

    alert_id: str
    alert_type: str
    event: str
    severity: str
    title: str
    message: str
    created_at: datetime
    notify: bool
    delivery: str
    """`pending` → `sending` → `sent`; `grouped` (another alert notified); `failed`."""
    tenant_id: str | None = None
    quota_id: str | None = None
    period_key: str | None = None
    threshold_pct: int | None = None
    spent_usd: Decimal | None = None
    limit_usd: Decimal | None = None
    utilization: Decimal | None = None
    resets_at: datetime | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    dedup_key: str | None = None
    caused_by_request: str | None = None
    grouped: list[int] | None = None
    notified_in: str | None = None
    outbox: str | None = None
    """The `holds` index sort key under `OUTBOX` while the alert waits for delivery."""
    lease_until: datetime | None = None
    attempts: int | None = None
    redrives: int | None = None
    channels_sent: frozenset[str] | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = None

    @property
    def sk(self) -> str:
        return alert_sk(self.alert_id)

    @classmethod
    def from_item(cls, item: Item) -> AlertItem:
        """Decode an alert record; a missing or mistyped attribute is a corrupted ledger."""
        try:
            g = item.get
            grouped = g("grouped")
            sent = g("channels_sent")
            return cls(
                alert_id=item["alert_id"],
                alert_type=item["alert_type"],
                event=item["event"],
                severity=item["severity"],
                title=item["title"],
                message=item["message"],
                created_at=parse_iso(item["created_at"]),
                notify=bool(item["notify"]),
                delivery=item["delivery"],
                tenant_id=g("tenant_id"),
                quota_id=g("quota_id"),
                period_key=g("period_key"),
                threshold_pct=opt_int(g("threshold_pct")),
                spent_usd=_opt_decimal(g("spent_usd")),
                limit_usd=_opt_decimal(g("limit_usd")),
                utilization=_opt_decimal(g("utilization")),
                resets_at=_opt_time(g("resets_at")),
                details=g("details") or {},
                dedup_key=g("dedup_key"),
                caused_by_request=g("caused_by_request"),
                grouped=None if grouped is None else [int(p) for p in grouped],
                notified_in=g("notified_in"),
                outbox=g(HOLDS_SK) if g(HOLDS_PK) is not None else None,
                lease_until=_opt_time(g("lease_until")),
                attempts=opt_int(g("attempts")),
                redrives=opt_int(g("redrives")),
                channels_sent=None if sent is None else frozenset(sent),
                delivered_at=_opt_time(g("delivered_at")),
                failed_at=_opt_time(g("failed_at")),
                last_error=g("last_error"),
            )
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise LedgerCorrupted(f"alert {item.get('sk')} is malformed") from exc

    def to_item(self) -> dict[str, Any]:
        """The stored attributes, absent when None (`sk` and the outbox index keys included;
        `pk` is the tenant's, `alerts_pk`)."""
        out: dict[str, Any] = {"sk": self.sk}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name == "details" and not value):
                continue
            if f.name == "outbox":
                out[HOLDS_PK], out[HOLDS_SK] = OUTBOX, value
            elif isinstance(value, datetime):
                out[f.name] = iso(value)
            elif isinstance(value, frozenset):
                out[f.name] = set(value)
            elif isinstance(value, list | dict):
                out[f.name] = type(value)(value)
            else:
                out[f.name] = value
        return out


# ----------------------------------------------------------------------------- forecast

FORECAST_RISKS = frozenset({"low", "medium", "high", "critical"})
FORECAST_METHODS = frozenset({"profile", "level", "run_rate"})


def _iso_seconds(at: datetime) -> str:
    """A forecast's times: whole seconds, UTC, `Z` (what `GET …/forecast` has always shown)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


@dataclass(frozen=True, slots=True)
class ForecastItem:
    """The latest forecast of a quota as stored (`TENANT#<t>` / `FORECAST#<quota>`), replaced
    each run; the API serves it as `QuotaForecast`."""

    quota_id: str
    scope: str
    """`tenant` or `user` (platform quotas are not forecast)."""
    resource: str
    period: str
    period_key: str
    resets_at: datetime
    computed_at: datetime
    spent_usd: Decimal
    limit_usd: Decimal
    projected_usd: Decimal
    daily_usd: Decimal
    risk: str
    """`low`, `medium`, `high` or `critical` (`costguard.forecasts.Risk`)."""
    method: str
    history_days: int
    projected_utilization: Decimal | None = None
    breach_on: date | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if self.risk not in FORECAST_RISKS or self.method not in FORECAST_METHODS:
            raise ValueError(f"a forecast with risk {self.risk!r} by {self.method!r}")

    @classmethod
    def from_item(cls, item: Item) -> ForecastItem:
        """Decode a forecast; a missing or mistyped attribute is a corrupted ledger."""
        try:
            g = item.get
            breach_on = g("breach_on")
            return cls(
                quota_id=str(item["quota_id"]),
                scope=str(item["scope"]),
                resource=str(item["resource"]),
                period=str(item["period"]),
                period_key=str(item["period_key"]),
                resets_at=parse_iso(item["resets_at"]),
                computed_at=parse_iso(item["computed_at"]),
                spent_usd=Decimal(item["spent_usd"]),
                limit_usd=Decimal(item["limit_usd"]),
                projected_usd=Decimal(item["projected_usd"]),
                daily_usd=Decimal(item["daily_usd"]),
                risk=str(item["risk"]),
                method=str(item["method"]),
                history_days=int(item["history_days"]),
                projected_utilization=_opt_decimal(g("projected_utilization")),
                breach_on=None if breach_on is None else date.fromisoformat(breach_on),
                user_id=g("user_id"),
            )
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise LedgerCorrupted(f"forecast {item.get('sk')} is malformed") from exc

    def to_item(self) -> dict[str, Any]:
        """The stored attributes, absent when None (the key is `forecast_key`'s)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, datetime):
                value = _iso_seconds(value)
            elif isinstance(value, date):
                value = value.isoformat()
            out[f.name] = value
        return out


# ------------------------------------------------------------------------------ API key


@dataclass(frozen=True, slots=True)
class ApiKeyItem:
    """A tenant's API key as stored (`APIKEY#<key_id>` / `APIKEY`): only its SHA-256 (D13)."""

    key_id: str
    tenant_id: str
    fingerprint: str
    created_at: datetime
    role: str = "tenant"
    revoked: bool = False

    @classmethod
    def from_item(cls, item: Item) -> ApiKeyItem:
        """Decode a key item; a missing or mistyped attribute is a corrupted ledger."""
        try:
            fingerprint, tenant_id = item["fingerprint"], item["tenant_id"]
            if not isinstance(fingerprint, str) or not isinstance(tenant_id, str):
                raise TypeError("fingerprint and tenant_id are strings")
            return cls(
                key_id=key_id_of(str(item["pk"])),
                tenant_id=tenant_id,
                fingerprint=fingerprint,
                created_at=parse_iso(item["created_at"]),
                role=str(item.get("role", "tenant")),
                revoked=bool(item.get("revoked", False)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise LedgerCorrupted(f"API key item {item.get('pk')} is malformed") from exc

    def to_item(self) -> dict[str, Any]:
        """The stored attributes (the key is `api_key_pk(key_id)` / `API_KEY_SK`)."""
        return {
            "tenant_id": self.tenant_id,
            "role": self.role,
            "fingerprint": self.fingerprint,
            "created_at": iso(self.created_at),
            "revoked": self.revoked,
        }


# ------------------------------------------------------------------------ registration


@dataclass(frozen=True, slots=True)
class TenantItem:
    """A tenant's registration (`TENANT#<t>` / `TENANT`): what `POST /v1/tenants` wrote and
    `TenantCreated` announces."""

    tenant_id: str
    name: str
    created_at: datetime
    plan: str | None = None

    @classmethod
    def from_item(cls, item: Item) -> TenantItem:
        """Decode a registration; a missing or mistyped attribute is a corrupted ledger."""
        try:
            name, plan = item["name"], item.get("plan")
            if not isinstance(name, str) or not isinstance(plan, str | None):
                raise TypeError("name and plan are strings")
            return cls(
                tenant_id=str(item["tenant_id"]),
                name=name,
                created_at=parse_iso(item["created_at"]),
                plan=plan,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise LedgerCorrupted(f"tenant item {item.get('pk')} is malformed") from exc

    def to_item(self) -> dict[str, Any]:
        """The stored attributes, `plan` absent when None (also `TenantCreated`'s detail)."""
        out = {"tenant_id": self.tenant_id, "name": self.name, "plan": self.plan}
        out["created_at"] = iso(self.created_at)
        return {k: v for k, v in out.items() if v is not None}

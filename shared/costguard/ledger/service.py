"""The ledger: reserve, commit, release, expire, record, check, pause, quotas, prices.

Every spend goes through one DynamoDB transaction whose conditions make it atomic against
every quota that applies. See docs/data-model.md for the items and why they look like this.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ulid import ULID

from costguard import telemetry
from costguard.errors import (
    IdempotencyMismatch,
    InvalidRequest,
    LedgerCorrupted,
    LedgerUnavailable,
    OverrunRejected,
    Paused,
    QuotaExceeded,
    QuotaFigures,
    QuotaNotFound,
    ReservationNotFound,
    ReservationNotHeld,
    TenantExists,
)
from costguard.holds import Hold, worst_case
from costguard.ledger.dynamo import Cancelled, LedgerTable
from costguard.ledger.plan import (
    PLATFORM_PK,
    POLICY_SK,
    TENANT_SK,
    Key,
    ReservationRef,
    Slot,
    active_pk,
    active_shard,
    day_key,
    field_prefix,
    holds_pk,
    records_pk,
    slot_for,
    tenant_pk,
    user_bucket,
)
from costguard.ledger.schema import (
    ACTIVE_PK,
    ACTIVE_SK,
    HOLDS_INDEX,
    HOLDS_PK,
    HOLDS_SK,
    TTL_ATTRIBUTE,
)
from costguard.ledger.writes import ItemWrite, TransactionBuilder
from costguard.models import (
    CheckResult,
    CostRecord,
    HoldBasis,
    QuotaState,
    Reservation,
    TenantSettings,
    TenantSettingsState,
    Usage,
)
from costguard.money import ZERO
from costguard.periods import period_end, seconds_until_reset, zone
from costguard.pricing import ModelPrice, Price, PriceBook, TierPrice, shipped_catalog
from costguard.pricing.stored import stored_model_item, stored_model_price
from costguard.quotas import (
    DEFAULT_THRESHOLDS,
    Mode,
    OnExpiry,
    OnOverrun,
    Policy,
    QuotaDefinition,
    QuotaId,
    Resource,
    Scope,
    stored_zone,
    validate_tenant_id,
    validate_timezone,
)
from costguard.settings import Enforcement, FailMode, Settings

Clock = Callable[[], datetime]
GARBAGE_AFTER = timedelta(days=7)
OPEN_PREFIX = "open~"
"""Reservations granted unguarded while the ledger was unreachable (fail_mode=open)."""
IDEMPOTENCY_WINDOW = timedelta(hours=24)
POLICY_ATTEMPTS = 4
UNKNOWN_USAGE = "usage_unknown"
"""The commit hash of a `usage_unknown` commit (its retries are the same commit)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    """Fixed-width UTC timestamps: they sort and compare as strings inside conditions.

    Not `strftime("%Y")`: glibc does not pad years before 1000 ("211-04-16"), which neither
    sorts nor reads back with `fromisoformat`.
    """
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _record_id_bounds(first: datetime, last: datetime) -> tuple[str, str]:
    """The least and greatest record id (a ULID) created between `first` and `last`.

    ULIDs count milliseconds from 1970: an earlier day is clamped to the epoch, not overflowed.
    """
    low = str(ULID.from_timestamp(max(first.timestamp(), 0)))[:10] + "0" * 16
    high = str(ULID.from_timestamp(max(last.timestamp(), 0)))[:10] + "Z" * 16
    return low, high


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def request_hash(usage: Usage) -> str:
    canonical = json.dumps(usage.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ReleaseResult:
    reservation_id: str
    status: str
    released_usd: Decimal


@dataclass(frozen=True)
class SeedResult:
    """What `seed_quotas` did: the quotas it wrote and those an operator had already set."""

    seeded: tuple[str, ...]
    kept: tuple[str, ...]
    first: bool
    """False when the tenant had been seeded before: nothing was written this time."""


class Ledger:
    """The domain entry point every function uses. Thread-safe; keep one per process."""

    def __init__(
        self,
        table: LedgerTable,
        settings: Settings,
        clock: Clock = utc_now,
        policy_cache_size: int = 10_000,
    ) -> None:
        self.table = table
        self.settings = settings
        self._clock = clock
        self._policies: OrderedDict[str, Policy] = OrderedDict()
        self._policy_cache_size = policy_cache_size
        self._lock = threading.Lock()
        self._price_book: PriceBook | None = None
        self._prices_loaded_at: datetime | None = None

    # ------------------------------------------------------------------ time, prices, policies
    def now(self) -> datetime:
        at = self._clock()
        if at.tzinfo is None:
            raise ValueError("the clock must return aware UTC datetimes")
        return at.astimezone(UTC)

    def price_book(self) -> PriceBook:
        """The shipped catalog overlaid with prices stored in the table, cached briefly."""
        now = self.now()
        loaded = self._prices_loaded_at
        ttl = timedelta(seconds=self.settings.price_cache_seconds)
        if self._price_book is None or loaded is None or now - loaded >= ttl or now < loaded:
            fallback = None
            s = self.settings
            if (
                s.fallback_input_per_million_usd is not None
                and s.fallback_output_per_million_usd is not None
            ):
                fallback = ModelPrice(
                    "fallback",
                    "fallback",
                    s.fallback_input_per_million_usd,
                    s.fallback_output_per_million_usd,
                    s.fallback_input_per_million_usd,
                    datetime.min.replace(tzinfo=UTC),
                )
            # The shipped catalog is parsed once per process; stored (operator) prices win.
            self._price_book = PriceBook(
                self._stored_prices(), fallback=fallback, catalog=shipped_catalog()
            )
            self._prices_loaded_at = now
        return self._price_book

    def _stored_prices(self) -> list[Price]:
        items = self.table.query_all("pk = :p", {":p": "PRICING"})
        out: list[Price] = []
        for item in items:
            try:
                if item["sk"].startswith("m#"):
                    out.append(stored_model_price(item))
                else:
                    out.append(
                        TierPrice(
                            item["tier"],
                            Decimal(item["per_second_usd"]),
                            datetime.fromisoformat(item["effective_from"].replace("Z", "+00:00")),
                            item.get("source", ""),
                        )
                    )
            except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
                raise LedgerCorrupted(f"price item {item.get('sk')!r} is malformed") from exc
        return out

    def _price(self, usage: Usage, at: datetime) -> tuple[Decimal, Price | None]:
        """The cost of a usage at a time, and the price used (a `pricing` span)."""
        with telemetry.span(
            "pricing", resource=usage.resource, model=usage.model, tier=usage.tier
        ) as span:
            cost, price = self.price_book().cost(usage, at)
            telemetry.set_attributes(span, {"cost_usd": cost})
            return cost, price

    def _hold(self, usage: Usage, at: datetime) -> Hold:
        """The worst-case hold of a reservation (a `pricing` span)."""
        with telemetry.span(
            "pricing", resource=usage.resource, model=usage.model, tier=usage.tier
        ) as span:
            hold = worst_case(usage, self.price_book(), at)
            telemetry.set_attributes(span, {"cost_usd": hold.amount, "hold_basis": hold.basis})
            return hold

    def put_price(self, price: Price) -> None:
        """Add a price from its effective date on; earlier prices stay for history."""
        if isinstance(price, ModelPrice):
            sk = f"m#{price.provider}#{price.model}#{iso(price.effective_from)}"
            item: dict[str, Any] = stored_model_item(price)
        else:
            sk = f"t#{price.tier}#{iso(price.effective_from)}"
            item = {"tier": price.tier, "per_second_usd": price.per_second_usd}
        item |= {"effective_from": iso(price.effective_from), "source": price.source or "operator"}
        self.table.put(ItemWrite(key=("PRICING", sk), kind="Put", item=item))
        self._price_book = None

    def _cache_get(self, pk: str) -> Policy | None:
        with self._lock:
            policy = self._policies.get(pk)
            if policy is not None:
                self._policies.move_to_end(pk)
            return policy

    def _cache_put(self, pk: str, policy: Policy) -> None:
        with self._lock:
            self._policies[pk] = policy
            self._policies.move_to_end(pk)
            while len(self._policies) > self._policy_cache_size:
                self._policies.popitem(last=False)

    def forget_policy(self, pk: str) -> None:
        with self._lock:
            self._policies.pop(pk, None)

    @staticmethod
    def policy_from_item(item: dict[str, Any] | None) -> Policy:
        if item is None:
            return Policy()
        try:
            quotas = tuple(
                QuotaDefinition(
                    quota_id=QuotaId.parse(quota_id),
                    limit_usd=Decimal(spec["limit_usd"]),
                    mode=Mode(spec.get("mode", "hard")),
                    thresholds=tuple(int(t) for t in spec.get("thresholds", DEFAULT_THRESHOLDS)),
                    grace_pct=Decimal(spec.get("grace_pct", 0)),
                )
                for quota_id, spec in sorted(item.get("quotas", {}).items())
            )
            return Policy(
                version=int(item.get("version", 0)),
                exists=True,
                paused=bool(item.get("paused", False)),
                paused_users=frozenset(item.get("paused_users", set())),
                quotas=quotas,
                overrun=OnOverrun(item.get("overrun", OnOverrun.RECORD)),
                on_expiry=OnExpiry(item.get("on_expiry", OnExpiry.CHARGE)),
                **stored_zone(item),
            )
        # InvalidRequest: a stored quota id that does not parse is the ledger's fault, not
        # the caller's (it was a 422); AttributeError: `quotas` that is not a map (a 500).
        except (
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
            ArithmeticError,
            InvalidRequest,
        ) as exc:
            raise LedgerCorrupted(f"policy item {item.get('pk')} is malformed") from exc

    def policies(self, tenant_id: str, fresh: bool = False) -> tuple[Policy, Policy]:
        """(platform, tenant) policies, from the cache unless `fresh` or not cached."""
        keys = [(PLATFORM_PK, POLICY_SK), (tenant_pk(tenant_id), POLICY_SK)]
        cached = [None if fresh else self._cache_get(pk) for pk, _ in keys]
        missing = [k for k, c in zip(keys, cached, strict=True) if c is None]
        if missing:
            found = self.table.batch_get(missing, consistent=True)
            for k in missing:
                self._cache_put(k[0], self.policy_from_item(found.get(k)))
        platform = self._cache_get(keys[0][0]) or Policy()
        tenant = self._cache_get(keys[1][0]) or Policy()
        return platform, tenant

    @staticmethod
    def _check_policy(tx: TransactionBuilder, pk: str, policy: Policy) -> None:
        w = tx.check((pk, POLICY_SK), "attribute_not_exists(pk)")
        if policy.exists:
            w.conditions = [f"{w.name('version')} = {w.value(policy.version)}"]

    def _refuse_if_paused(self, tenant_id: str, user_id: str | None, tenant: Policy) -> Policy:
        """Refuse a paused principal; a cached pause is re-read before it refuses anyone."""
        if tenant.paused or (user_id and user_id in tenant.paused_users):
            _, tenant = self.policies(tenant_id, fresh=True)
            if tenant.paused:
                raise Paused(tenant_id)
            if user_id and user_id in tenant.paused_users:
                raise Paused(tenant_id, user_id)
        return tenant

    def _apply_policy_failures(self, failed: dict[Key, dict[str, Any] | None]) -> bool:
        """Refresh cached policies from the items a cancellation returned; True if any."""
        refreshed = False
        for (pk, sk), item in failed.items():
            if sk == POLICY_SK:
                self._cache_put(pk, self.policy_from_item(item))
                refreshed = True
        return refreshed

    # ------------------------------------------------------------------ figures
    def _figures(
        self, quota: QuotaDefinition, slot: Slot, counter: dict[str, Any] | None, at: datetime
    ) -> QuotaFigures:
        p = slot.prefix
        counter = counter or {}
        limit = _amount(counter, p + "limit", quota.limit_usd)
        return QuotaFigures(
            quota_id=str(quota.quota_id),
            scope=quota.quota_id.scope.value,
            resource=quota.quota_id.resource.value,
            period=quota.quota_id.period.value,
            mode=quota.mode.value,
            limit_usd=limit,
            spent_usd=_amount(counter, p + "spent", ZERO),
            held_usd=_amount(counter, p + "held", ZERO),
            period_key=slot.key[1],
            resets_at=iso(period_end(quota.quota_id.period, at, zone(slot.tz))),
            retry_after_seconds=seconds_until_reset(quota.quota_id.period, at, zone(slot.tz)),
        )

    @staticmethod
    def _state(quota: QuotaDefinition, f: QuotaFigures) -> QuotaState:
        utilization = (f.spent_usd + f.held_usd) / f.limit_usd if f.limit_usd > 0 else Decimal(1)
        return QuotaState(
            quota_id=f.quota_id,
            scope=quota.quota_id.scope.value,
            user_id=quota.quota_id.user_id,
            resource=quota.quota_id.resource.value,
            period=quota.quota_id.period.value,
            mode=quota.mode.value,
            limit_usd=f.limit_usd,
            spent_usd=f.spent_usd,
            reserved_usd=f.held_usd,
            remaining_usd=f.remaining_usd,
            utilization=utilization.quantize(Decimal("0.0001")),
            thresholds=list(quota.thresholds),
            period_key=f.period_key,
            resets_at=parse_iso(f.resets_at),
        )

    def _states(
        self,
        tenant_id: str,
        quotas: Iterable[QuotaDefinition],
        at: datetime,
        consistent: bool,
        tz: str = "UTC",
    ) -> list[QuotaState]:
        pairs = [(q, slot_for(q.quota_id, tenant_id, at, tz)) for q in quotas]
        counters = (
            self.table.batch_get([s.key for _, s in pairs], consistent=consistent) if pairs else {}
        )
        return [self._state(q, self._figures(q, s, counters.get(s.key), at)) for q, s in pairs]

    # ------------------------------------------------------------------ writes of every spend
    def _enforcing(self) -> bool:
        return self.settings.enforcement is Enforcement.ENFORCE

    def _charge_new(
        self,
        tx: TransactionBuilder,
        quota: QuotaDefinition,
        slot: Slot,
        amount: Decimal,
        target: str,
        enforce: bool,
    ) -> None:
        """Hold (`target='held'`) or spend (`'spent'`) `amount` on a quota, creating the
        period's counter with the verified limit if it is the period's first spend."""
        w = tx.update(slot.key)
        p = slot.prefix
        avail, limit = w.name(p + "avail"), w.name(p + "limit")
        lim = w.value(quota.limit_usd)
        w.sets.append(f"{avail} = if_not_exists({avail}, {lim}) - {w.value(amount)}")
        w.sets.append(f"{limit} = if_not_exists({limit}, {lim})")
        w.add(p + target, amount)
        _stamp(w)
        threshold = quota.denial_threshold(amount) if enforce else None
        if threshold is not None:
            w.condition(f"attribute_not_exists({avail}) OR {avail} >= {w.value(threshold)}")

    @staticmethod
    def _roll_up(
        tx: TransactionBuilder,
        tenant_id: str,
        at: datetime,
        usage: Usage,
        cost: Decimal,
        price: Price | None,
        user_id: str | None,
        tz: str,
    ) -> None:
        """Add a spend to the tenant's day rollup (same item as its day counter, no extra
        write; the local day in `tz`): per resource, model or tier, and user bucket; the first
        spend of the day also lists the tenant in the `active` index (the schedules' list)."""
        key = day_key(tenant_id, at, tz)
        w = tx.update(key)
        w.add(f"usd_{usage.resource}", cost)
        w.add("usd_all", cost)
        w.add("calls", 1)
        if usage.resource == "llm":
            provider = price.provider if isinstance(price, ModelPrice) else (usage.provider or "-")
            w.add(f"usd#m#{provider}/{usage.model or '-'}", cost)
        else:
            w.add(f"usd#t#{usage.tier or '-'}", cost)
        if user_id:
            bucket = user_bucket(user_id)
            w.add(f"usd#b#{bucket}", cost)
            w.sets.append(f"{w.name(f'usr#b#{bucket}')} = {w.value(user_id)}")
        day = key[1].removeprefix("DAY#")
        for attribute, value in (
            (ACTIVE_PK, active_pk(day, active_shard(tenant_id))),
            (ACTIVE_SK, tenant_id),
        ):
            n = w.name(attribute)
            w.sets.append(f"{n} = if_not_exists({n}, {w.value(value)})")

    def _binding(
        self,
        quotas: list[tuple[QuotaDefinition, Slot]],
        amount: Decimal,
        failed: dict[Key, dict[str, Any] | None],
        at: datetime,
    ) -> QuotaFigures | None:
        for quota, slot in quotas:
            if slot.key not in failed:
                continue
            counter = failed[slot.key] or {}
            threshold = quota.denial_threshold(amount)
            avail = _amount(counter, slot.prefix + "avail", quota.limit_usd)
            if threshold is not None and avail < threshold:
                return self._figures(quota, slot, counter, at)
        return None

    # ------------------------------------------------------------------ reserve
    def reserve(
        self,
        tenant_id: str,
        usage: Usage,
        *,
        ttl_seconds: int | None = None,
        with_figures: bool = True,
        idempotency_key: str | None = None,
    ) -> Reservation:
        """Hold the estimated cost against every applicable quota, atomically, or refuse.

        Raises QuotaExceeded naming the binding quota, Paused, UnknownPrice, InvalidRequest.
        When the ledger cannot be reached: LedgerUnavailable (fail closed, the default), or
        with `fail_mode=open` an unguarded reservation whose commit is recorded unenforced.
        """
        with telemetry.span(
            "ledger.reserve", tenant_id=tenant_id, resource=usage.resource, user_id=usage.user_id
        ) as span:
            try:
                reservation = self._reserve_or_fail_open(
                    tenant_id, usage, ttl_seconds, with_figures, idempotency_key
                )
            except QuotaExceeded as refused:
                b = refused.binding
                telemetry.set_attributes(span, {"binding_quota_id": b.quota_id})
                telemetry.dimensional(
                    "Denials", telemetry.MetricUnit.Count, 1, scope=b.scope, resource=b.resource
                )
                raise
            telemetry.set_attributes(
                span,
                {
                    "reservation_id": reservation.reservation_id.split("~", 1)[0],
                    "reserved_usd": reservation.reserved_usd,
                    "guarded": reservation.guarded,
                    "outcome": "held",
                },
            )
            telemetry.count("Reservations")
            telemetry.usd("ReservedUsd", reservation.reserved_usd)
            return reservation

    def _reserve_or_fail_open(
        self,
        tenant_id: str,
        usage: Usage,
        ttl_seconds: int | None,
        with_figures: bool,
        idempotency_key: str | None,
    ) -> Reservation:
        try:
            return self._reserve(tenant_id, usage, ttl_seconds, with_figures, idempotency_key)
        except LedgerUnavailable:
            if self.settings.fail_mode is not FailMode.OPEN:
                raise
            now = self.now()
            ttl = ttl_seconds or self.settings.reservation_ttl_seconds
            # The worst case rides in the id, so that a commit of unknown usage can charge it
            # once the ledger is back (when even the prices cannot be read, it is unknown).
            amount = ""
            with contextlib.suppress(LedgerUnavailable):
                amount = f"~{usage.resource}~{self._hold(usage, now).amount}"
            return Reservation(
                reservation_id=f"{OPEN_PREFIX}{ULID.from_datetime(now)}{amount}",
                tenant_id=tenant_id,
                user_id=usage.user_id,
                resource=usage.resource,
                reserved_usd=ZERO,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
                guarded=False,
            )

    def _reserve(
        self,
        tenant_id: str,
        usage: Usage,
        ttl_seconds: int | None,
        with_figures: bool,
        idempotency_key: str | None,
    ) -> Reservation:
        validate_tenant_id(tenant_id)
        now = self.now()
        ttl = ttl_seconds if ttl_seconds is not None else self.settings.reservation_ttl_seconds
        if not 1 <= ttl <= self.settings.max_reservation_ttl_seconds:
            raise InvalidRequest(
                f"ttl_seconds must be between 1 and {self.settings.max_reservation_ttl_seconds}",
                field="ttl_seconds",
            )
        hold = self._hold(usage, now)
        amount, price = hold.amount, hold.price
        resource = Resource(usage.resource)
        expires_at = now + timedelta(seconds=ttl)
        ulid = ULID.from_datetime(now)
        expired_lazily = False
        enforce = self._enforcing()
        marker_key = self._marker_key(tenant_id, "reserve", idempotency_key)
        digest = request_hash(usage) if marker_key else ""
        for _ in range(POLICY_ATTEMPTS + 1):
            platform, tenant = self.policies(tenant_id)
            if enforce:
                tenant = self._refuse_if_paused(tenant_id, usage.user_id, tenant)
            quotas = [
                *platform.applicable(resource, None),
                *tenant.applicable(resource, usage.user_id),
            ]
            tz = tenant.zone_at(now)
            pairs = [(q, slot_for(q.quota_id, tenant_id, now, tz)) for q in quotas]
            telemetry.annotate(quota_ids=[str(q.quota_id) for q in quotas], amount_usd=amount)
            if enforce:
                self._refuse_beyond_limit(pairs, amount, now)
            ref = ReservationRef.build(ulid, resource, amount, quotas, usage.user_id, tz)
            tx = TransactionBuilder()
            self._check_policy(tx, PLATFORM_PK, platform)
            self._check_policy(tx, tenant_pk(tenant_id), tenant)
            for quota, slot in pairs:
                self._charge_new(tx, quota, slot, amount, "held", enforce)
            record = {
                "tenant_id": tenant_id,
                "status": "held",
                "plan": ref.plan,
                "resource": usage.resource,
                "estimate_usd": amount,
                "created_at": iso(now),
                "expires_at": iso(expires_at),
                HOLDS_PK: holds_pk(tenant_id),
                HOLDS_SK: f"{iso(expires_at)}#{ulid}",
                "hold": hold.describe(),
                **self._usage_fields(hold.usage, price),
                **usage.attribution(),
            }
            tx.put((records_pk(tenant_id), str(ulid)), record, "attribute_not_exists(pk)")
            if marker_key:
                self._put_marker(tx, marker_key, str(ulid), digest, now)
            try:
                self.table.transact(tx.writes)
            except Cancelled as cancelled:
                failed = {tx.writes[i].key: item for i, item in cancelled.failed()}
                if self._apply_policy_failures(failed):
                    continue
                if marker_key and marker_key in failed:
                    first = self._replayed(tenant_id, failed[marker_key], digest)
                    return self._reservation_from(first, with_figures)
                if (records_pk(tenant_id), str(ulid)) in failed:
                    ulid = ULID.from_datetime(now)
                    continue
                binding = self._binding(pairs, amount, failed, now)
                if binding is None:
                    continue
                if binding.held_usd > 0 and not expired_lazily:
                    expired_lazily = True
                    self.expire_due(None if binding.scope == "platform" else tenant_id)
                    continue
                raise QuotaExceeded(binding, amount) from None
            states = None
            # The hold is made: a reservation without figures beats a lost one.
            with contextlib.suppress(LedgerUnavailable):
                if with_figures:
                    states = self._states(tenant_id, quotas, now, consistent=False, tz=tz)
            return Reservation(
                reservation_id=ref.reservation_id,
                tenant_id=tenant_id,
                user_id=usage.user_id,
                resource=usage.resource,
                reserved_usd=amount,
                created_at=now,
                expires_at=expires_at,
                hold=HoldBasis.model_validate(hold.describe()),
                quotas=states,
            )
        raise LedgerBusy()

    def _reservation_from(self, item: dict[str, Any], with_figures: bool) -> Reservation:
        """The reservation a record holds, as its first response showed it (figures: now)."""
        tenant_id = str(item["tenant_id"])
        ref = ReservationRef.parse(f"{item['sk']}~{item['plan']}")
        states = None
        if with_figures:
            platform, tenant = self.policies(tenant_id)
            quotas = [
                *platform.applicable(ref.resource, None),
                *tenant.applicable(ref.resource, ref.user_id),
            ]
            states = self._states(tenant_id, quotas, ref.created_at, consistent=False, tz=ref.tz)
        return Reservation(
            reservation_id=ref.reservation_id,
            tenant_id=tenant_id,
            user_id=ref.user_id,
            resource=ref.resource.value,
            reserved_usd=ref.estimate_usd,
            created_at=parse_iso(item["created_at"]),
            expires_at=parse_iso(item["expires_at"]),
            hold=HoldBasis.model_validate(item["hold"]) if item.get("hold") else None,
            quotas=states,
        )

    def _refuse_beyond_limit(
        self, pairs: list[tuple[QuotaDefinition, Slot]], amount: Decimal, at: datetime
    ) -> None:
        """An amount above a quota's whole limit can never pass: refuse without writing."""
        for quota, slot in pairs:
            threshold = quota.denial_threshold(amount)
            if threshold is not None and threshold > quota.limit_usd:
                counter = self.table.get(slot.key, consistent=True)
                raise QuotaExceeded(self._figures(quota, slot, counter, at), amount)

    @staticmethod
    def _usage_fields(usage: Usage, price: Price | None) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "model": usage.model,
            "tier": usage.tier,
            "provider": price.provider if isinstance(price, ModelPrice) else usage.provider,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "cache_write_input_tokens": usage.cache_write_input_tokens,
            "cache_write_1h_input_tokens": usage.cache_write_1h_input_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "service_tier": usage.service_tier if usage.resource == "llm" else None,
            "seconds": usage.seconds,
            "price": price.describe() if price is not None else None,
        }
        return {k: v for k, v in fields.items() if v is not None}

    # ------------------------------------------------------------------ commit
    def commit(self, tenant_id: str, reservation_id: str, usage: Usage | None) -> CostRecord:
        """Record the actual cost and free the hold, atomically and at most once.

        `usage=None` means the caller cannot tell what the call used (a stream cut before its
        usage, a provider error after the request was sent): the whole hold is charged, since
        the hold is the worst case. A retry of the same commit returns the first record. An
        actual above the hold is recorded in full (the money is spent) with `overrun_usd`,
        unless the tenant's `overrun` setting is `reject`: then the hold is charged and
        OverrunRejected raised.
        """
        with telemetry.span(
            "ledger.commit",
            tenant_id=tenant_id,
            reservation_id=reservation_id.split("~", 1)[0],
            resource=usage.resource if usage else None,
            usage_unknown=usage is None,
        ) as span:
            record = self._commit(tenant_id, reservation_id, usage)
            telemetry.set_attributes(span, {"cost_usd": record.cost_usd, "outcome": "committed"})
            telemetry.count("Commits")
            telemetry.usd("SpendUsd", record.cost_usd)
            if record.overrun_usd:
                telemetry.usd("OverrunUsd", record.overrun_usd)
            if record.estimated_usd and usage is not None:
                error = (record.cost_usd - record.estimated_usd) / record.estimated_usd * 100
                telemetry.count("EstimateErrorPct", float(error), telemetry.MetricUnit.Percent)
            return record

    def _commit_open(self, tenant_id: str, reservation_id: str, usage: Usage | None) -> CostRecord:
        """A reservation granted while the ledger was unreachable (fail open): record what
        was spent, unenforced and once (the id is the idempotency key); unknown usage is
        charged at the worst case its id carries."""
        if usage is None:
            parts = reservation_id.split("~")
            if len(parts) != 4 or parts[2] not in ("llm", "sandbox"):
                raise InvalidRequest(
                    "this reservation was granted while the ledger was unreachable and its "
                    "worst case is unknown: record the usage you can estimate",
                    field="usage_unknown",
                )
            try:
                usage = Usage.model_validate({"resource": parts[2], "cost_usd": parts[3]})
            except ValueError as exc:
                raise ReservationNotFound("unknown reservation") from exc
        return self.record_usage(tenant_id, usage, enforce=False, idempotency_key=reservation_id)

    def _commit(self, tenant_id: str, reservation_id: str, usage: Usage | None) -> CostRecord:
        validate_tenant_id(tenant_id)
        if reservation_id.startswith(OPEN_PREFIX):
            return self._commit_open(tenant_id, reservation_id, usage)
        ref = ReservationRef.parse(reservation_id)
        now = self.now()
        estimate = ref.estimate_usd
        if usage is None:
            # The usage comes from the reservation itself: what it held is what is charged.
            digest = UNKNOWN_USAGE
            held = self.table.get((records_pk(tenant_id), str(ref.ulid)), consistent=True)
            if held is None or held.get("plan") != ref.plan or held.get("status") != "held":
                return self._commit_refused(tenant_id, ref, held, digest, now)
            rolled = _usage_of(held)
            cost, price = estimate, None
            fields: dict[str, Any] = {"usage_unknown": True, "settled_by": "usage_unknown"}
        else:
            if usage.resource != ref.resource.value:
                raise InvalidRequest(
                    f"this reservation is for resource {ref.resource.value!r}", field="resource"
                )
            if usage.user_id is not None and usage.user_id != ref.user_id:
                raise InvalidRequest("user_id differs from the reservation's", field="user_id")
            digest = request_hash(usage)
            rolled = usage
            cost, price = self._price(usage, ref.created_at)
            fields = {
                **self._usage_fields(usage, price),
                **usage.attribution(),
                "settled_by": "commit",
            }
            if cost > estimate:
                _, tenant = self.policies(tenant_id, fresh=True)
                if tenant.overrun is OnOverrun.REJECT:
                    fields |= {"settled_by": "overrun_rejected", "actual_usd": cost}
                    cost = estimate
                else:
                    fields |= {"overrun": True, "overrun_usd": cost - estimate}
        fields = {
            "status": "committed",
            "cost_usd": cost,
            "commit_hash": digest,
            "recorded_at": iso(now),
            "overrun": False,
            "overrun_usd": ZERO,
            **fields,
        }
        tx = TransactionBuilder()
        self._settle_hold(tx, tenant_id, ref, cost, rolled, price)
        rec = tx.update((records_pk(tenant_id), str(ref.ulid)))
        rec.sets.extend(f"{rec.name(k)} = {rec.value(v)}" for k, v in fields.items())
        rec.removes.extend([rec.name(HOLDS_PK), rec.name(HOLDS_SK)])
        rec.condition(
            f"{rec.name('status')} = {rec.value('held')} AND {rec.name('plan')} = "
            f"{rec.value(ref.plan)} AND {rec.name('expires_at')} > {rec.value(iso(now))}"
        )
        try:
            self.table.transact(tx.writes)
        except Cancelled as cancelled:
            old = dict(cancelled.failed()).get(len(tx.writes) - 1)
            return self._commit_refused(tenant_id, ref, old, digest, now)
        item = {
            "pk": records_pk(tenant_id),
            "sk": str(ref.ulid),
            "tenant_id": tenant_id,
            "resource": ref.resource.value,
            "estimate_usd": estimate,
            "created_at": iso(ref.created_at),
            "user_id": ref.user_id,
            "plan": ref.plan,
            **fields,
        }
        if usage is None:
            assert held is not None
            item = {**held, **item}  # the reservation's model, tokens and attribution
        record = self.cost_record(item)
        if record.settled_by == "overrun_rejected":
            raise OverrunRejected(record)
        return record

    def _settle_hold(
        self,
        tx: TransactionBuilder,
        tenant_id: str,
        ref: ReservationRef,
        charged: Decimal,
        usage: Usage,
        price: Price | None,
    ) -> None:
        """The counter and rollup writes of settling a hold by charging `charged`: the hold
        leaves every counter it was on, the charge is spent there (avail moves by the
        difference) and rolled up on the reservation's day (commit, unknown usage, expiry)."""
        estimate = ref.estimate_usd
        for slot in ref.slots(tenant_id):
            w = tx.update(slot.key)
            w.add(slot.prefix + "held", -estimate)
            w.add(slot.prefix + "spent", charged)
            if charged != estimate:
                w.add(slot.prefix + "avail", estimate - charged)
            _stamp(w)
        self._roll_up(tx, tenant_id, ref.created_at, usage, charged, price, ref.user_id, ref.tz)

    def _commit_refused(
        self,
        tenant_id: str,
        ref: ReservationRef,
        old: dict[str, Any] | None,
        digest: str,
        now: datetime,
    ) -> CostRecord:
        if old is None or old.get("plan") != ref.plan:
            raise ReservationNotFound("unknown reservation")
        status = old.get("status")
        if status == "committed":
            if old.get("settled_by") == "expiry":
                raise ReservationNotHeld(ref.reservation_id, "expired", old.get("cost_usd"))
            if old.get("commit_hash") == digest:
                record = self.cost_record(old)
                if record.settled_by == "overrun_rejected":
                    raise OverrunRejected(record)
                return record
            raise ReservationNotHeld(ref.reservation_id, "committed with a different body")
        if status == "held":
            self._expire(tenant_id, ref, now)
            settled = self.table.get((records_pk(tenant_id), str(ref.ulid)), consistent=True)
            charged = (settled or {}).get("cost_usd") if (settled or {}).get("settled_by") else None
            raise ReservationNotHeld(ref.reservation_id, "expired", charged)
        raise ReservationNotHeld(ref.reservation_id, str(status))

    # ------------------------------------------------------------------ release and expiry
    def _return_hold(
        self, tenant_id: str, ref: ReservationRef, status: str, now: datetime, only_if_expired: bool
    ) -> dict[str, Any] | None:
        """Give the hold back; None on success, else the record's current item (or {}).

        A release (`only_if_expired=False`) needs the hold alive: an expired hold is settled
        by the tenant's `on_expiry` setting, never by a late release (as a late commit)."""
        tx = TransactionBuilder()
        for slot in ref.slots(tenant_id):
            w = tx.update(slot.key)
            w.add(slot.prefix + "held", -ref.estimate_usd)
            w.add(slot.prefix + "avail", ref.estimate_usd)
        rec = tx.update((records_pk(tenant_id), str(ref.ulid)))
        for k, v in (
            ("status", status),
            ("settled_at", iso(now)),
            (TTL_ATTRIBUTE, int((now + GARBAGE_AFTER).timestamp())),
        ):
            rec.sets.append(f"{rec.name(k)} = {rec.value(v)}")
        rec.removes.extend([rec.name(HOLDS_PK), rec.name(HOLDS_SK)])
        rec.condition(
            f"{rec.name('status')} = {rec.value('held')} AND "
            f"{rec.name('plan')} = {rec.value(ref.plan)}"
        )
        if only_if_expired:
            rec.condition(f"{rec.name('expires_at')} <= {rec.value(iso(now))}")
        else:
            rec.condition(f"{rec.name('expires_at')} > {rec.value(iso(now))}")
        try:
            self.table.transact(tx.writes)
        except Cancelled as cancelled:
            return dict(cancelled.failed()).get(len(tx.writes) - 1) or {}
        return None

    def _charge_expired(self, tenant_id: str, ref: ReservationRef, now: datetime) -> bool:
        """Settle an expired hold by charging it in full (`on_expiry: charge`): the app may
        have spent it and never said so. True if this call settled it."""
        held = self.table.get((records_pk(tenant_id), str(ref.ulid)), consistent=True)
        if held is None or held.get("status") != "held" or held.get("plan") != ref.plan:
            return False
        estimate = ref.estimate_usd
        tx = TransactionBuilder()
        self._settle_hold(tx, tenant_id, ref, estimate, _usage_of(held), None)
        rec = tx.update((records_pk(tenant_id), str(ref.ulid)))
        for k, v in (
            ("status", "committed"),
            ("cost_usd", estimate),
            ("commit_hash", "expiry"),
            ("settled_by", "expiry"),
            ("usage_unknown", True),
            ("overrun", False),
            ("overrun_usd", ZERO),
            ("recorded_at", iso(now)),
        ):
            rec.sets.append(f"{rec.name(k)} = {rec.value(v)}")
        rec.removes.extend([rec.name(HOLDS_PK), rec.name(HOLDS_SK)])
        rec.condition(
            f"{rec.name('status')} = {rec.value('held')} AND "
            f"{rec.name('plan')} = {rec.value(ref.plan)} AND "
            f"{rec.name('expires_at')} <= {rec.value(iso(now))}"
        )
        try:
            self.table.transact(tx.writes)
        except Cancelled:
            return False
        telemetry.usd("ExpiredChargedUsd", estimate)
        return True

    def release(self, tenant_id: str, reservation_id: str) -> ReleaseResult:
        """Return a hold that will not be used. Releasing twice is harmless."""
        with telemetry.span(
            "ledger.release", tenant_id=tenant_id, reservation_id=reservation_id.split("~", 1)[0]
        ) as span:
            result = self._release(tenant_id, reservation_id)
            telemetry.set_attributes(
                span, {"outcome": result.status, "released_usd": result.released_usd}
            )
            telemetry.count("Releases")
            return result

    def _release(self, tenant_id: str, reservation_id: str) -> ReleaseResult:
        validate_tenant_id(tenant_id)
        if reservation_id.startswith(OPEN_PREFIX):
            return ReleaseResult(reservation_id, "released", ZERO)  # it never held anything
        ref = ReservationRef.parse(reservation_id)
        now = self.now()
        old = self._return_hold(tenant_id, ref, "released", now, only_if_expired=False)
        if old is None:
            return ReleaseResult(reservation_id, "released", ref.estimate_usd)
        if not old or old.get("plan") != ref.plan:
            raise ReservationNotFound("unknown reservation")
        if old.get("status") == "held":  # expired, not yet swept: settled as expiry says
            self._expire(tenant_id, ref, now)
            return ReleaseResult(reservation_id, "expired", ZERO)
        if old.get("status") in ("released", "expired"):
            return ReleaseResult(reservation_id, str(old["status"]), ZERO)
        if old.get("settled_by") == "expiry":
            return ReleaseResult(reservation_id, "expired", ZERO)  # expired and charged
        raise ReservationNotHeld(reservation_id, str(old.get("status")))

    def _expire(self, tenant_id: str, ref: ReservationRef, now: datetime) -> bool:
        """Settle an expired hold as the tenant's `on_expiry` setting says (read fresh: a
        sweeper's cache would otherwise never see a change)."""
        _, tenant = self.policies(tenant_id, fresh=True)
        if tenant.on_expiry is OnExpiry.CHARGE:
            return self._charge_expired(tenant_id, ref, now)
        return self._return_hold(tenant_id, ref, "expired", now, only_if_expired=True) is None

    def expire_due(self, tenant_id: str | None = None, limit: int = 200) -> int:
        """Return the holds of reservations past their expiry; the number returned.

        For one tenant (the lazy path of a refused reserve) or for everyone (the sweeper).
        """
        now = self.now()
        # gsi1sk is "<expires_at>#<ulid>": "$" sorts right after "#", so every hold that
        # expires at `now` exactly is due too (commit already refuses it: expires_at > now).
        due_bound = f"{iso(now)}$"
        if tenant_id is not None:
            due, _ = self.table.query(
                f"{HOLDS_PK} = :p AND {HOLDS_SK} < :now",
                {":p": holds_pk(tenant_id), ":now": due_bound},
                index=HOLDS_INDEX,
                limit=limit,
            )
        else:
            # The index also holds the alerts outbox (costguard.alerts): holds only.
            due = self.table.scan_index(
                HOLDS_INDEX,
                f"begins_with({HOLDS_PK}, :hold) AND {HOLDS_SK} < :now",
                {":hold": "HOLD#", ":now": due_bound},
                limit,
            )
        returned = 0
        for item in due:
            tenant = item["gsi1pk"].removeprefix("HOLD#")
            ulid_text = item["gsi1sk"].rsplit("#", 1)[1]
            try:
                ref = ReservationRef.parse(f"{ulid_text}~{item['plan']}")
            except ReservationNotFound:
                continue  # a malformed hold is reported by reconcile(), not retried forever
            try:
                returned += self._expire(tenant, ref, now)
            except LedgerCorrupted:
                continue  # its counter is malformed (reconcile() reports it); the others go on
        if returned:
            telemetry.count("Expiries", returned)
        return returned

    # ------------------------------------------------------------------ direct record
    def record_usage(
        self,
        tenant_id: str,
        usage: Usage,
        *,
        enforce: bool = True,
        idempotency_key: str | None = None,
    ) -> CostRecord:
        """Record usage that had no reservation, atomically with every applicable quota.

        With `enforce`, a hard quota refuses it (QuotaExceeded); without, it is always
        recorded (the money was already spent). A repeated `idempotency_key` returns the
        first record.
        """
        with telemetry.span(
            "ledger.record", tenant_id=tenant_id, resource=usage.resource, enforce=enforce
        ) as span:
            try:
                record = self._record_usage(tenant_id, usage, enforce, idempotency_key)
            except QuotaExceeded as refused:
                b = refused.binding
                telemetry.set_attributes(span, {"binding_quota_id": b.quota_id})
                telemetry.dimensional(
                    "Denials", telemetry.MetricUnit.Count, 1, scope=b.scope, resource=b.resource
                )
                raise
            telemetry.set_attributes(span, {"cost_usd": record.cost_usd, "outcome": "recorded"})
            telemetry.count("Records")
            telemetry.usd("SpendUsd", record.cost_usd)
            return record

    def _record_usage(
        self, tenant_id: str, usage: Usage, enforce: bool, idempotency_key: str | None
    ) -> CostRecord:
        validate_tenant_id(tenant_id)
        now = self.now()
        cost, price = self._price(usage, now)
        resource = Resource(usage.resource)
        digest = request_hash(usage)
        enforce = enforce and self._enforcing()
        ulid = ULID.from_datetime(now)
        expired_lazily = False
        marker_key = self._marker_key(tenant_id, "record", idempotency_key)
        for _ in range(POLICY_ATTEMPTS + 1):
            platform, tenant = self.policies(tenant_id)
            if enforce:
                tenant = self._refuse_if_paused(tenant_id, usage.user_id, tenant)
            quotas = [
                *platform.applicable(resource, None),
                *tenant.applicable(resource, usage.user_id),
            ]
            tz = tenant.zone_at(now)
            pairs = [(q, slot_for(q.quota_id, tenant_id, now, tz)) for q in quotas]
            if enforce:
                self._refuse_beyond_limit(pairs, cost, now)
            ref = ReservationRef.build(ulid, resource, ZERO, quotas, usage.user_id, tz)
            tx = TransactionBuilder()
            self._check_policy(tx, PLATFORM_PK, platform)
            self._check_policy(tx, tenant_pk(tenant_id), tenant)
            for quota, slot in pairs:
                self._charge_new(tx, quota, slot, cost, "spent", enforce)
            self._roll_up(tx, tenant_id, now, usage, cost, price, usage.user_id, tz)
            item = {
                "tenant_id": tenant_id,
                "status": "recorded",
                "plan": ref.plan,
                "resource": usage.resource,
                "cost_usd": cost,
                "commit_hash": digest,
                "created_at": iso(now),
                "recorded_at": iso(now),
                "overrun": False,
                **self._usage_fields(usage, price),
                **usage.attribution(),
            }
            tx.put((records_pk(tenant_id), str(ulid)), item, "attribute_not_exists(pk)")
            if marker_key:
                self._put_marker(tx, marker_key, str(ulid), digest, now)
            try:
                self.table.transact(tx.writes)
            except Cancelled as cancelled:
                failed = {tx.writes[i].key: old for i, old in cancelled.failed()}
                if self._apply_policy_failures(failed):
                    continue
                if marker_key and marker_key in failed:
                    return self.cost_record(self._replayed(tenant_id, failed[marker_key], digest))
                if (records_pk(tenant_id), str(ulid)) in failed:
                    ulid = ULID.from_datetime(now)
                    continue
                binding = self._binding(pairs, cost, failed, now)
                if binding is None:
                    continue
                if binding.held_usd > 0 and not expired_lazily:
                    expired_lazily = True
                    self.expire_due(None if binding.scope == "platform" else tenant_id)
                    continue
                raise QuotaExceeded(binding, cost) from None
            return self.cost_record({"pk": records_pk(tenant_id), "sk": str(ulid), **item})
        raise LedgerBusy()

    @staticmethod
    def _marker_key(tenant_id: str, operation: str, idempotency_key: str | None) -> Key | None:
        """Where the marker of a keyed request lives (one per tenant, operation and key)."""
        if not idempotency_key:
            return None
        digest = hashlib.sha256(f"{operation}\x1f{idempotency_key}".encode()).hexdigest()
        return f"TENANT#{tenant_id}#IDEM", digest

    @staticmethod
    def _put_marker(
        tx: TransactionBuilder, key: Key, record_id: str, digest: str, now: datetime
    ) -> None:
        """The marker is written in the same transaction as the effect: both or neither."""
        item = {
            "record_id": record_id,
            "request_hash": digest,
            TTL_ATTRIBUTE: int((now + IDEMPOTENCY_WINDOW).timestamp()),
        }
        tx.put(key, item, "attribute_not_exists(pk)")

    def _replayed(
        self, tenant_id: str, marker: dict[str, Any] | None, digest: str
    ) -> dict[str, Any]:
        """The record a repeated key refers to; a different request under it is refused."""
        if marker is None or marker.get("request_hash") != digest:
            raise IdempotencyMismatch("idempotency key reused with a different request")
        item = self.table.get((records_pk(tenant_id), marker["record_id"]))
        if item is None:
            raise LedgerCorrupted("idempotency marker without its record")
        return item

    # ------------------------------------------------------------------ reads
    def cost_record(self, item: dict[str, Any]) -> CostRecord:
        try:
            status = item["status"]
            reservation_id = None
            if status == "committed":
                reservation_id = f"{item['sk']}~{item['plan']}"
            return CostRecord(
                record_id=item["sk"],
                tenant_id=item["tenant_id"],
                reservation_id=reservation_id,
                status=status,
                resource=item["resource"],
                cost_usd=item["cost_usd"],
                estimated_usd=item.get("estimate_usd"),
                overrun=bool(item.get("overrun", False)),
                overrun_usd=item.get("overrun_usd", ZERO),
                usage_unknown=bool(item.get("usage_unknown", False)),
                settled_by=item.get("settled_by"),
                actual_usd=item.get("actual_usd"),
                provider=item.get("provider"),
                model=item.get("model"),
                tier=item.get("tier"),
                input_tokens=_int(item.get("input_tokens")),
                output_tokens=_int(item.get("output_tokens")),
                cached_input_tokens=_int(item.get("cached_input_tokens")),
                cache_write_input_tokens=_int(item.get("cache_write_input_tokens")),
                cache_write_1h_input_tokens=_int(item.get("cache_write_1h_input_tokens")),
                reasoning_tokens=_int(item.get("reasoning_tokens")),
                service_tier=item.get("service_tier"),
                seconds=item.get("seconds"),
                price=item.get("price"),
                user_id=item.get("user_id"),
                conversation_id=item.get("conversation_id"),
                task_id=item.get("task_id"),
                operation=item.get("operation"),
                metadata=item.get("metadata"),
                occurred_at=parse_iso(item["created_at"]),
                recorded_at=parse_iso(item["recorded_at"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise LedgerCorrupted(f"cost record {item.get('sk')} is malformed") from exc

    def check(self, tenant_id: str, usage: Usage) -> CheckResult:
        """Dry run: would this estimate be allowed now? Writes nothing but expired holds."""
        telemetry.count("QuotaChecks")
        validate_tenant_id(tenant_id)
        now = self.now()
        amount = self._hold(usage, now).amount
        resource = Resource(usage.resource)
        platform, tenant = self.policies(tenant_id, fresh=True)
        paused = tenant.paused or bool(usage.user_id and usage.user_id in tenant.paused_users)
        quotas = [*platform.applicable(resource, None), *tenant.applicable(resource, usage.user_id)]
        for attempt in range(2):
            states = self._states(tenant_id, quotas, now, consistent=True, tz=tenant.zone_at(now))
            binding = None
            if self._enforcing():
                for quota, state in zip(quotas, states, strict=True):
                    threshold = quota.denial_threshold(amount)
                    if threshold is not None and state.remaining_usd < threshold:
                        binding = state
                        break
            if binding is None or binding.reserved_usd == 0 or attempt:
                break
            self.expire_due(None if binding.scope == "platform" else tenant_id)
        return CheckResult(
            allowed=binding is None and not paused,
            requested_usd=amount,
            binding_quota_id=binding.quota_id if binding else None,
            paused=paused,
            quotas=states,
        )

    def quotas(self, tenant_id: str | None) -> list[QuotaState]:
        """Every quota of a tenant (its own and its users'), or of the platform, with figures."""
        now = self.now()
        if tenant_id is None:
            platform = self.policy_from_item(self.table.get((PLATFORM_PK, POLICY_SK)))
            return self._states("-", platform.quotas, now, consistent=True)
        validate_tenant_id(tenant_id)
        tenant = self.policy_from_item(self.table.get((tenant_pk(tenant_id), POLICY_SK)))
        return self._states(tenant_id, tenant.quotas, now, consistent=True, tz=tenant.zone_at(now))

    def daily_rollups(
        self, tenant_id: str, first: datetime, last: datetime
    ) -> list[dict[str, Any]]:
        """The tenant's day items from `first` to `last` (inclusive days)."""
        return self.table.query_all(
            "pk = :p AND sk BETWEEN :a AND :b",
            {
                ":p": tenant_pk(tenant_id),
                ":a": f"DAY#{first:%Y-%m-%d}",
                ":b": f"DAY#{last:%Y-%m-%d}",
            },
        )

    def records(self, tenant_id: str, first: datetime, last: datetime) -> list[dict[str, Any]]:
        """Every record (held, settled or recorded) created between `first` and `last`."""
        low, high = _record_id_bounds(first, last)
        return self.table.query_all(
            "pk = :p AND sk BETWEEN :a AND :b",
            {":p": records_pk(tenant_id), ":a": low, ":b": high},
            consistent=True,
        )

    def settled_records(
        self,
        tenant_id: str,
        first: datetime,
        last: datetime,
        *,
        limit: int,
        after: str | None = None,
        user_id: str | None = None,
        conversation_id: str | None = None,
        max_pages: int = 8,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` committed or recorded cost records, oldest first, after record `after`.

        Returns the records and the record id to continue after (None at the end). Reads at
        most `max_pages` pages so that a sparse filter cannot make one request unbounded.
        """
        low, high = _record_id_bounds(first, last)
        filters = ["#st IN (:c, :r)"]
        values: dict[str, Any] = {
            ":p": records_pk(tenant_id),
            ":a": low,
            ":b": high,
            ":c": "committed",
            ":r": "recorded",
        }
        if user_id is not None:
            filters.append("user_id = :u")
            values[":u"] = user_id
        if conversation_id is not None:
            filters.append("conversation_id = :cv")
            values[":cv"] = conversation_id
        if after is not None and after >= high:
            return [], None  # nothing in the range comes after it
        # DynamoDB refuses a start key outside the key condition's range (a ValidationException,
        # which was a 500): a cursor before the range starts the range.
        start = (
            {"pk": {"S": records_pk(tenant_id)}, "sk": {"S": after}}
            if after is not None and after >= low
            else None
        )
        found: list[dict[str, Any]] = []
        for _ in range(max_pages):
            page, last_key = self.table.query(
                "pk = :p AND sk BETWEEN :a AND :b",
                values,
                limit=limit - len(found),
                start_key=start,
                filter_expression=" AND ".join(filters),
                names={"#st": "status"},
            )
            found.extend(page)
            if last_key is None:
                return found, None
            start = last_key
            if len(found) >= limit:
                break
        return found, str(start["sk"]["S"]) if start else None

    # ------------------------------------------------------------------ administration
    def create_tenant(
        self,
        tenant_id: str,
        name: str,
        plan: str | None = None,
        settings: TenantSettings | None = None,
    ) -> dict[str, Any]:
        """Register a tenant. Its `timezone` applies at once, unless the tenant had a policy
        (quotas, settings) before it was registered: then at the next midnight of the zone
        in effect, as any change (D64)."""
        validate_tenant_id(tenant_id)
        pk = tenant_pk(tenant_id)
        for _ in range(POLICY_ATTEMPTS + 1):
            now = self.now()
            tx = TransactionBuilder()
            item = {"tenant_id": tenant_id, "name": name, "plan": plan, "created_at": iso(now)}
            tx.put((pk, TENANT_SK), item, "attribute_not_exists(pk)")
            w = tx.update((pk, POLICY_SK))
            version = w.name("version")
            w.sets.append(f"{version} = if_not_exists({version}, {w.value(1)})")
            w.sets.append(f"{w.name('quotas')} = if_not_exists({w.name('quotas')}, {w.value({})})")
            if settings is not None:
                w.sets.append(f"{w.name('overrun')} = {w.value(settings.overrun)}")
                w.sets.append(f"{w.name('on_expiry')} = {w.value(settings.on_expiry)}")
                self._set_zone(w, self.table.get((pk, POLICY_SK), consistent=True), settings, now)
            try:
                self.table.transact(tx.writes)
            except Cancelled as cancelled:
                if any(i == 0 for i, _ in cancelled.failed()):
                    raise TenantExists(f"tenant {tenant_id!r} exists") from None
                continue  # the policy moved between the read and the write
            self.forget_policy(pk)
            return {k: v for k, v in item.items() if v is not None}
        raise LedgerBusy()

    def tenant(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's registration (id, name, plan, created_at), or None."""
        item = self.table.get((tenant_pk(tenant_id), TENANT_SK))
        if item is None:
            return None
        return {k: item[k] for k in ("tenant_id", "name", "plan", "created_at") if k in item}

    def tenant_settings(self, tenant_id: str) -> TenantSettingsState:
        """The tenant's settings (defaults when never set) and the zone in effect now."""
        validate_tenant_id(tenant_id)
        _, tenant = self.policies(tenant_id, fresh=True)
        now = self.now()
        pending = tenant.timezone_from is not None and now < tenant.timezone_from
        return TenantSettingsState(
            overrun=tenant.overrun.value,
            on_expiry=tenant.on_expiry.value,
            timezone=tenant.timezone,
            timezone_in_effect=tenant.zone_at(now),
            timezone_effective_at=tenant.timezone_from if pending else None,
        )

    def put_tenant_settings(self, tenant_id: str, settings: TenantSettings) -> TenantSettingsState:
        """Replace the tenant's settings; the policy version moves, so every cached copy is
        re-read by the next reserve that meets it. A new `timezone` takes effect at the next
        local midnight of the zone in effect (D64)."""
        validate_tenant_id(tenant_id)
        pk = tenant_pk(tenant_id)
        for _ in range(POLICY_ATTEMPTS + 1):
            now = self.now()
            item = self.table.get((pk, POLICY_SK), consistent=True)
            w = ItemWrite(key=(pk, POLICY_SK))
            version, quotas = w.name("version"), w.name("quotas")
            w.sets.append(f"{version} = if_not_exists({version}, {w.value(0)}) + {w.value(1)}")
            w.sets.append(f"{quotas} = if_not_exists({quotas}, {w.value({})})")
            w.sets.append(f"{w.name('overrun')} = {w.value(settings.overrun)}")
            w.sets.append(f"{w.name('on_expiry')} = {w.value(settings.on_expiry)}")
            self._set_zone(w, item, settings, now)
            try:
                self.table.transact([w])
            except Cancelled:
                continue
            self.forget_policy(pk)
            return self.tenant_settings(tenant_id)
        raise LedgerBusy()

    def _set_zone(
        self, w: ItemWrite, item: dict[str, Any] | None, settings: TenantSettings, now: datetime
    ) -> None:
        """Write the zone change `settings` asks for onto the policy update `w`, on condition
        that the policy's zone is still the one read (quota and other writes may interleave)."""
        validate_timezone(settings.timezone)
        if item is None:
            w.condition("attribute_not_exists(pk)")
            tz, since, before = settings.timezone, None, "UTC"  # nothing was ever counted
        else:
            for attribute in ("timezone", "timezone_from", "timezone_before"):
                n = w.name(attribute)
                if attribute in item:
                    w.condition(f"{n} = {w.value(item[attribute])}")
                else:
                    w.condition(f"attribute_not_exists({n})")
            tz, since, before = self.policy_from_item(item).zone_change(settings.timezone, now)
        w.sets.append(f"{w.name('timezone')} = {w.value(tz)}")
        if since is None:
            w.removes.extend([w.name("timezone_from"), w.name("timezone_before")])
        else:
            w.sets.append(f"{w.name('timezone_from')} = {w.value(iso(since))}")
            w.sets.append(f"{w.name('timezone_before')} = {w.value(before)}")

    def set_paused(self, tenant_id: str, paused: bool, user_id: str | None = None) -> None:
        """Pause or unpause a tenant or one of its users; takes effect on the next reserve."""
        validate_tenant_id(tenant_id)
        w = ItemWrite(key=(tenant_pk(tenant_id), POLICY_SK))
        version, quotas = w.name("version"), w.name("quotas")
        w.sets.append(f"{version} = if_not_exists({version}, {w.value(0)}) + {w.value(1)}")
        w.sets.append(f"{quotas} = if_not_exists({quotas}, {w.value({})})")
        if user_id is None:
            w.sets.append(f"{w.name('paused')} = {w.value(paused)}")
        elif paused:
            w.adds.append(f"{w.name('paused_users')} {w.value({user_id})}")
        else:
            w.deletes.append(f"{w.name('paused_users')} {w.value({user_id})}")
        self.table.update(w)
        self.forget_policy(tenant_pk(tenant_id))

    def put_quota(self, tenant_id: str | None, quota: QuotaDefinition) -> QuotaState:
        """Create or replace a quota; a new limit applies to the current period at once.

        One transaction bumps the policy version and moves the current period's counter
        (`avail += new − old`), so no reserve can pass on the old limit afterwards.
        """
        qid = quota.quota_id
        if (qid.scope is Scope.PLATFORM) != (tenant_id is None):
            raise InvalidRequest("platform quotas live at /v1/platform/quotas", field="quota_id")
        if quota.limit_usd < 0:
            raise InvalidRequest("limit_usd must not be negative", field="limit_usd")
        owner = tenant_id or "-"
        if tenant_id is not None:
            validate_tenant_id(tenant_id)
        pk = PLATFORM_PK if tenant_id is None else tenant_pk(tenant_id)
        spec = self._spec(quota)
        for _ in range(8):
            now = self.now()
            policy_item = self.table.get((pk, POLICY_SK), consistent=True)
            slot = slot_for(qid, owner, now, self.policy_from_item(policy_item).zone_at(now))
            counter = self.table.get(slot.key, consistent=True)
            tx = TransactionBuilder()
            if policy_item is None:
                tx.put(
                    (pk, POLICY_SK),
                    {"version": 1, "quotas": {str(qid): spec}},
                    "attribute_not_exists(pk)",
                )
            else:
                w = tx.update((pk, POLICY_SK))
                version = w.name("version")
                w.sets.append(f"{w.name('quotas')}.{w.name(str(qid))} = {w.value(spec)}")
                w.sets.append(f"{version} = {version} + {w.value(1)}")
                w.condition(f"{version} = {w.value(policy_item.get('version', 0))}")
            self._move_counter(tx, slot, counter, quota.limit_usd)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue
            self.forget_policy(pk)
            after = self.table.get(slot.key, consistent=True)
            return self._state(quota, self._figures(quota, slot, after, now))
        raise LedgerBusy()

    @staticmethod
    def _spec(quota: QuotaDefinition) -> dict[str, Any]:
        """A quota as the policy item stores it."""
        return {
            "limit_usd": quota.limit_usd,
            "mode": quota.mode.value,
            "thresholds": list(quota.thresholds),
            "grace_pct": quota.grace_pct,
        }

    def seed_quotas(
        self,
        tenant_id: str,
        quotas: Iterable[QuotaDefinition],
        seeded_by: dict[str, str],
    ) -> SeedResult:
        """Write a tenant's default quotas once, never replacing a quota that exists.

        One transaction, like `put_quota`: the policy gains the missing quotas, its version
        moves by one (condition: the version read, no `onboarded` mark, each quota absent) and
        each current-period counter is moved to the new limits. `seeded_by` (plan, event id…)
        is kept as the policy's `onboarded` mark, so a replayed or concurrent duplicate writes
        nothing, even after an operator deleted a default quota.
        """
        validate_tenant_id(tenant_id)
        wanted = {str(q.quota_id): q for q in quotas}
        if any(q.quota_id.scope is Scope.PLATFORM for q in wanted.values()):
            raise InvalidRequest("default quotas are tenant quotas", field="quota_id")
        pk = tenant_pk(tenant_id)
        for _ in range(8):
            now = self.now()
            # BatchGetItem, not GetItem: the onboarding function's grant (infra/ledger.py).
            policy_item = self.table.batch_get([(pk, POLICY_SK)], consistent=True).get(
                (pk, POLICY_SK)
            )
            tz = self.policy_from_item(policy_item).zone_at(now)
            slots = {qid: slot_for(q.quota_id, tenant_id, now, tz) for qid, q in wanted.items()}
            keys = sorted({s.key for s in slots.values()})
            found = self.table.batch_get(keys, consistent=True) if keys else {}
            existing = set((policy_item or {}).get("quotas", {}))
            kept = tuple(sorted(qid for qid in wanted if qid in existing))
            if policy_item is not None and "onboarded" in policy_item:
                return SeedResult(seeded=(), kept=kept, first=False)
            missing = {qid: q for qid, q in sorted(wanted.items()) if qid not in existing}
            mark = {**{k: v for k, v in seeded_by.items() if v}, "at": iso(now)}
            tx = TransactionBuilder()
            if policy_item is None:
                item = {
                    "version": 1,
                    "quotas": {qid: self._spec(q) for qid, q in missing.items()},
                    "onboarded": mark,
                }
                tx.put((pk, POLICY_SK), item, "attribute_not_exists(pk)")
            else:
                w = tx.update((pk, POLICY_SK))
                version = w.name("version")
                w.condition(f"attribute_not_exists({w.name('onboarded')})")
                w.sets.append(f"{w.name('onboarded')} = {w.value(mark)}")
                if "version" in policy_item:
                    w.condition(f"{version} = {w.value(policy_item['version'])}")
                else:
                    w.condition(f"attribute_not_exists({version})")
                if missing:
                    w.sets.append(
                        f"{version} = if_not_exists({version}, {w.value(0)}) + {w.value(1)}"
                    )
                if missing and "quotas" not in policy_item:
                    quotas_attr = w.name("quotas")
                    w.condition(f"attribute_not_exists({quotas_attr})")
                    specs = {qid: self._spec(q) for qid, q in missing.items()}
                    w.sets.append(f"{quotas_attr} = {w.value(specs)}")
                else:
                    for qid, q in missing.items():
                        path = f"{w.name('quotas')}.{w.name(qid)}"
                        w.condition(f"attribute_not_exists({path})")
                        w.sets.append(f"{path} = {w.value(self._spec(q))}")
            for qid, q in missing.items():
                slot = slots[qid]
                self._move_counter(tx, slot, found.get(slot.key), q.limit_usd)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue
            self.forget_policy(pk)
            return SeedResult(seeded=tuple(missing), kept=kept, first=True)
        raise LedgerBusy()

    @staticmethod
    def _move_counter(
        tx: TransactionBuilder, slot: Slot, counter: dict[str, Any] | None, new_limit: Decimal
    ) -> None:
        p = slot.prefix
        if counter is None:
            tx.check(slot.key, "attribute_not_exists(pk)")
            return
        w = tx.update(slot.key)
        limit, avail = w.name(p + "limit"), w.name(p + "avail")
        if p + "limit" in counter:
            old = counter[p + "limit"]
            w.sets.append(f"{limit} = {w.value(new_limit)}")
            w.add(p + "avail", new_limit - old)
            w.condition(f"{limit} = {w.value(old)}")
            return
        spent, held = counter.get(p + "spent", ZERO), counter.get(p + "held", ZERO)
        w.sets.append(f"{limit} = {w.value(new_limit)}")
        w.sets.append(f"{avail} = {w.value(new_limit - spent - held)}")
        w.condition(f"attribute_not_exists({limit})")
        for attr, value in (("spent", spent), ("held", held)):
            n = w.name(p + attr)
            w.condition(f"attribute_not_exists({n}) OR {n} = {w.value(value)}")

    def delete_quota(self, tenant_id: str | None, quota_id: QuotaId) -> None:
        pk = PLATFORM_PK if tenant_id is None else tenant_pk(tenant_id)
        w = ItemWrite(key=(pk, POLICY_SK))
        path = f"{w.name('quotas')}.{w.name(str(quota_id))}"
        w.removes.append(path)
        w.sets.append(f"{w.name('version')} = {w.name('version')} + {w.value(1)}")
        w.condition(f"attribute_exists({path})")
        try:
            self.table.transact([w])
        except Cancelled:
            raise QuotaNotFound(f"no quota {quota_id}") from None
        self.forget_policy(pk)

    # ------------------------------------------------------------------ audit
    def reconcile(self, tenant_id: str, users: Iterable[str] = ()) -> list[str]:
        """Differences between the counters and the records that should sum to them.

        Spent must equal the sum of settled records and held the sum of live holds, for each
        counter field any record touches. An empty list means the ledger is consistent.
        """
        expected: dict[tuple[Key, str], Decimal] = {}
        for item in self.table.query_all("pk = :p", {":p": records_pk(tenant_id)}, consistent=True):
            try:
                ref = ReservationRef.parse(f"{item['sk']}~{item['plan']}")
            except ReservationNotFound:
                return [f"record {item.get('sk')} has a malformed plan"]
            status = item["status"]
            for slot in ref.slots(tenant_id):
                if status in ("committed", "recorded"):
                    k = (slot.key, slot.prefix + "spent")
                    expected[k] = expected.get(k, ZERO) + item["cost_usd"]
                elif status == "held":
                    k = (slot.key, slot.prefix + "held")
                    expected[k] = expected.get(k, ZERO) + item["estimate_usd"]
        keys = {k for k, _ in expected}
        counters = self.table.batch_get(sorted(keys), consistent=True) if keys else {}
        problems = []
        for (key, attr), want in sorted(expected.items()):
            have = counters.get(key, {}).get(attr, ZERO)
            if have != want:
                problems.append(f"{key} {attr}: counter {have} != records {want}")
        for key, counter in counters.items():
            for field in ("llm", "sandbox", "all"):
                p = field_prefix(Resource(field))
                if p + "limit" in counter:
                    try:
                        computed = (
                            counter[p + "limit"]
                            - counter.get(p + "spent", ZERO)
                            - counter.get(p + "held", ZERO)
                        )
                    except TypeError:
                        problems.append(f"{key} {p}*: a figure is not a number")
                        continue
                    if counter.get(p + "avail") != computed:
                        problems.append(f"{key} {p}avail {counter.get(p + 'avail')} != {computed}")
        _ = users
        return problems


def _usage_of(held: dict[str, Any]) -> Usage:
    """What a reservation's record says it was for: enough to roll its charge up by model
    or tier (built without validation: it was validated when it was reserved)."""
    return Usage.model_construct(
        resource="sandbox" if held.get("resource") == "sandbox" else "llm",
        provider=held.get("provider"),
        model=held.get("model"),
        tier=held.get("tier"),
    )


def _stamp(write: ItemWrite) -> None:
    """The API request behind a counter write, for the stream's alerts (once per item)."""
    request = telemetry.request_id()
    if request and "last_request_id" not in write.names.values():
        write.sets.append(f"{write.name('last_request_id')} = {write.value(request)}")


def _amount(counter: dict[str, Any], attribute: str, default: Decimal) -> Decimal:
    """A counter's figure; anything but a number there is a corrupted item, refused."""
    value = counter.get(attribute, default)
    if not isinstance(value, Decimal) or not value.is_finite():
        where = f"{counter.get('pk')}/{counter.get('sk')}"
        raise LedgerCorrupted(f"counter {where} has a non-numeric {attribute}")
    return value


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class LedgerBusy(LedgerUnavailable):
    """The ledger kept changing under a write for longer than its retry budget."""

    def __init__(self) -> None:
        super().__init__("the ledger kept changing; try again", retry_after_seconds=1)

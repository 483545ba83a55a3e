"""The spend engine's entry: reserve (hold a worst case) and record (spend without a
reservation) share one transaction loop; check is their dry run.

Every spend is one DynamoDB transaction whose conditions make it atomic against every quota
that applies (see docs/data-model.md for the items and why they look like this).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ulid import ULID

import costguard.ledger.escrow as escrow
import costguard.ledger.in_item as in_item
import costguard.ledger.leasing as leasing
import costguard.ledger.slicing as slicing
from costguard import telemetry
from costguard.errors import (
    InvalidRequest,
    LedgerUnavailable,
    QuotaExceeded,
    QuotaFigures,
)
from costguard.holds import Hold
from costguard.ledger.core import OPEN_PREFIX, POLICY_ATTEMPTS, LedgerBusy
from costguard.ledger.expiry import Expiry
from costguard.ledger.figures import binding, fields_of, figures, read_states, state
from costguard.ledger.idempotency import marker_key, put_marker, replayed, request_hash
from costguard.ledger.records import cost_record
from costguard.ledger.spend_writes import charge_new, roll_up, stamp, stamp_pv, usage_fields
from costguard.ledger.terms import ReservationRef, Slot
from costguard.models import CheckResult, CostRecord, HoldBasis, Reservation, Usage
from costguard.money import ZERO
from costguard.quotas import QuotaDefinition, QuotaId, Resource, Scope, validate_tenant_id
from costguard.settings import FailMode
from costguard.store.codec import iso, parse_iso
from costguard.store.counters import CounterItem, QuotaFields
from costguard.store.dynamo import Cancelled, ConditionFailed
from costguard.store.items import CostRecordItem
from costguard.store.keys import (
    PLATFORM_PK,
    POLICY_SK,
    Key,
    holds_pk,
    policy_replica_pk,
    record_key,
    tenant_pk,
)
from costguard.store.schema import HOLDS_PK, HOLDS_SK
from costguard.store.writes import TransactionBuilder


@dataclass
class Spent:
    """What the spend loop wrote (the record item, with its key), or the first record of a
    repeated idempotency key (`replayed`)."""

    item: dict[str, Any]
    replayed: bool = False
    ref: ReservationRef | None = None
    quotas: list[QuotaDefinition] = field(default_factory=list)


class Spending(Expiry):
    """Reserve, record and check."""

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
                _count_denial(span, refused)
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
            if telemetry.metrics_on():
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
                amount = f"~{usage.resource}~{self.prices.hold(usage, now).amount}"
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
        hold = self.prices.hold(usage, now)
        amount, price = hold.amount, hold.price
        expires_at = now + timedelta(seconds=ttl)
        marker = marker_key(tenant_id, "reserve", idempotency_key)
        digest = request_hash(usage) if marker else ""

        def record(ref: ReservationRef, ulid: ULID) -> dict[str, Any]:
            item = {
                "tenant_id": tenant_id,
                "status": "held",
                "plan": ref.terms,
                "resource": usage.resource,
                "estimate_usd": amount,
                "created_at": iso(now),
                "expires_at": iso(expires_at),
                HOLDS_PK: holds_pk(tenant_id, ref.lane),
                HOLDS_SK: f"{iso(expires_at)}#{ulid}",
                "hold": hold.describe(),
                **usage_fields(hold.usage, price),
                **usage.attribution(),
            }
            return CostRecordItem.encode(item)

        if marker is None and self.settings.single_item_reserve:
            single = self._reserve_in_item(tenant_id, usage, hold, now, expires_at, with_figures)
            if single is not None:
                return single
        spent = self._spend(
            tenant_id,
            usage,
            amount,
            now,
            held=True,
            enforce=self._enforcing(),
            marker=marker,
            digest=digest,
            record=record,
        )
        if spent.replayed:
            return self._reservation_from(spent.item, with_figures)
        assert spent.ref is not None
        quota_states = None
        # The hold is made: a reservation without figures beats a lost one.
        with contextlib.suppress(LedgerUnavailable):
            if with_figures:
                quota_states = read_states(
                    self.table, tenant_id, spent.quotas, now, consistent=False, tz=spent.ref.tz
                )
        return Reservation(
            reservation_id=spent.ref.reservation_id,
            tenant_id=tenant_id,
            user_id=usage.user_id,
            resource=usage.resource,
            reserved_usd=amount,
            created_at=now,
            expires_at=expires_at,
            hold=HoldBasis.model_validate(hold.describe()),
            quotas=quota_states,
        )

    def _reserve_in_item(
        self,
        tenant_id: str,
        usage: Usage,
        hold: Hold,
        now: datetime,
        expires_at: datetime,
        with_figures: bool,
    ) -> Reservation | None:
        """The single-item reserve (D70): one conditional UpdateItem on the tenant's counter,
        its new image the figures. None when it does not apply (a platform or user quota, a
        sliced quota, quotas on several items, no counter yet, a counter not stamped with the
        policy version, a full hold map, attribution beyond the user): the transaction
        decides then.

        A failed condition is read from the item as it was: a newer `pv` (the policy changed:
        re-read it, again); a quota below its threshold (expire due holds once if it held
        any, in the counter and in records, again; else QuotaExceeded). Expired holds are
        settled where a transaction's are: by a refused reserve and by the sweeper."""
        resource = Resource(usage.resource)
        amount = hold.amount
        expired_lazily = False
        # Attribution beyond the user rides on the record a transaction writes at once (a
        # commit need not repeat it): such a reserve keeps the transaction.
        if usage.attribution().keys() - {"user_id"}:
            return None
        for _ in range(POLICY_ATTEMPTS + 1):
            _, tenant = self.policies(tenant_id)  # a cold process reads both policies here
            if not self._platform_quiet(resource):
                return None
            enforce = self._enforcing()
            if enforce:
                tenant = self._refuse_if_paused(tenant_id, usage.user_id, tenant)
            quotas = tenant.applicable(resource, usage.user_id)
            if (
                not tenant.exists
                or not quotas
                or any(q.quota_id.scope is not Scope.TENANT or q.sliced for q in quotas)
            ):
                return None
            tz = tenant.zone_at(now)
            pairs = [(q, slicing.slot(q, tenant_id, now, 0, tz)) for q in quotas]
            key = pairs[0][1].key
            if any(slot.key != key for _, slot in pairs):
                return None
            telemetry.annotate(quota_ids=[str(q.quota_id) for q in quotas], amount_usd=amount)
            if enforce:
                self._refuse_beyond_limit(pairs, amount, now)
            ref = ReservationRef.build(
                ULID.from_datetime(now), resource, amount, quotas, usage.user_id, tz, in_item=True
            )
            tx = TransactionBuilder()
            for quota, slot in pairs:
                charge_new(tx, quota, slot, amount, "held", enforce)
            [w] = tx.writes
            in_item.add(
                w,
                ref,
                in_item.entry(ref, expires_at, hold.usage, hold.price),
                tenant_id,
                tenant.version,
            )
            try:
                counter = self.table.update_or_old(w)
            except ConditionFailed as failed:
                old = failed.old
                if old is not None and in_item.found(old, ref) is not None:
                    # The write was applied and its answer lost; the resend found the hold.
                    counter = old
                else:
                    was = CounterItem(old)
                    stamped = was.pv
                    if old is None or stamped is None or stamped < tenant.version:
                        return None  # no counter yet, or one the policy's writes did not stamp
                    if stamped > tenant.version:
                        self.policies(tenant_id, fresh=True)
                        continue
                    if was.hold_count >= in_item.MAX_HOLDS:
                        return None
                    bound = binding(pairs, amount, {key: old}, now) if enforce else None
                    if bound is None:
                        continue  # the counter moved between the write and its answer
                    if bound.held_usd > 0 and not expired_lazily:
                        expired_lazily = True
                        self.expire_due(tenant_id)
                        continue
                    raise QuotaExceeded(bound, amount) from None
            return Reservation(
                reservation_id=ref.reservation_id,
                tenant_id=tenant_id,
                user_id=usage.user_id,
                resource=usage.resource,
                reserved_usd=amount,
                created_at=now,
                expires_at=expires_at,
                hold=HoldBasis.model_validate(hold.describe()),
                quotas=[state(q, figures(q, s, fields_of(s, counter), now)) for q, s in pairs]
                if with_figures
                else None,
            )
        return None

    def _spend(
        self,
        tenant_id: str,
        usage: Usage,
        amount: Decimal,
        now: datetime,
        *,
        held: bool,
        enforce: bool,
        marker: Key | None,
        digest: str,
        record: Callable[[ReservationRef, ULID], dict[str, Any]],
        roll_up_day: Callable[[TransactionBuilder, str, int], None] | None = None,
    ) -> Spent:
        """The one transaction loop of a spend: hold (`held`, a reserve) or spend (a record)
        `amount` on every applicable quota, write its record and its idempotency marker.

        A cancellation is read in order: a policy changed (re-read it, again); the marker
        exists (the first record); the record id was taken (a new id, again); a quota refused
        (expire due holds once if it held any, again; else QuotaExceeded). Anything else
        (a counter moved between reads) is tried again, at most POLICY_ATTEMPTS more times.
        """
        resource = Resource(usage.resource)
        ulid = ULID.from_datetime(now)
        expired_lazily = False
        pick = escrow.pick(escrow.MAX_SLICES)  # the slice of every sliced quota (D75)
        moves: dict[QuotaId, dict[int, Decimal]] = {}
        renewals: dict[QuotaId, leasing.Renew] = {}  # leased platform quotas (D78)
        borrows = 0  # borrowing attempts have their own budget; the others are as before
        planned_on: tuple[int, int] = (-1, -1)
        for attempt in range(POLICY_ATTEMPTS + 1 + slicing.BORROW_ATTEMPTS):
            if attempt - borrows > POLICY_ATTEMPTS:
                break
            platform, tenant = self.policies(tenant_id)
            # On live leases alone, a reserve trusts the announced platform policy (D94).
            announced = None
            if enforce and not renewals and any(q.leased for q in platform.quotas):
                announced = self._platform_leased_only(resource)
                platform = announced or platform
            if (platform.version, tenant.version) != planned_on:
                # Borrows and renewals were planned on the slots of the policies then: another
                # thread's refresh of the shared cache (a reshard) may have moved the slot onto
                # one of its own donors since (one item twice in a transaction is invalid).
                moves, renewals = {}, {}
                planned_on = (platform.version, tenant.version)
            if enforce:
                tenant = self._refuse_if_paused(tenant_id, usage.user_id, tenant)
            quotas = [
                *platform.applicable(resource, None),
                *tenant.applicable(resource, usage.user_id),
            ]
            tz = tenant.zone_at(now)  # platform quotas: UTC, whatever this says (slot_for)
            pairs = [
                (q, leasing.slot(q, tenant_id, now))
                if q.leased
                else (q, slicing.slot(q, tenant_id, now, pick, tz))
                for q in quotas
            ]
            if held:
                telemetry.annotate(quota_ids=[str(q.quota_id) for q in quotas], amount_usd=amount)
            if enforce:
                self._refuse_beyond_limit(pairs, amount, now)
            taken = {q.quota_id: s.slice for q, s in pairs if s.slice}
            ref = ReservationRef.build(
                ulid, resource, amount if held else ZERO, quotas, usage.user_id, tz, taken
            )
            tx = TransactionBuilder()
            if announced is None and not (ref.lane and self._platform_skipped(platform, resource)):
                self._check_policy(tx, PLATFORM_PK, platform)
            # A hot tenant's lane proves the tenant policy on its replica (D99)
            self._check_policy(tx, policy_replica_pk(tenant_id, ref.lane, tenant.replicas), tenant)
            for quota, slot in pairs:
                target = "held" if held else "spent"
                if quota.leased:
                    renewal = renewals.get(quota.quota_id)
                    leasing.charge(tx, quota, slot, amount, target, enforce, now, renewal)
                    stamp(tx.update(slot.key))
                elif quota.sliced:
                    spread = moves.get(quota.quota_id, {})
                    slicing.charge(tx, quota, slot, amount, target, enforce, now, spread)
                    stamp(tx.update(slot.key))
                else:
                    charge_new(tx, quota, slot, amount, target, enforce)
            if tenant.exists:
                stamp_pv(tx, pairs, tenant.version)
            if roll_up_day is not None:
                roll_up_day(tx, tz, ref.lane)
            item = record(ref, ulid)
            rec_key = record_key(tenant_id, str(ulid), ref.lane)  # its lane (D98)
            tx.put(rec_key, item, "attribute_not_exists(pk)")
            if marker:
                put_marker(tx, marker, str(ulid), digest, now, ref.lane)
            try:
                self.table.transact(tx.writes)
            except Cancelled as cancelled:
                failed = cancelled.by_key()
                if self._apply_policy_failures(failed):
                    moves, renewals = {}, {}
                    continue
                if marker and marker in failed:
                    first = replayed(self.table, tenant_id, failed[marker], digest)
                    return Spent(first, replayed=True)
                if rec_key in failed:
                    ulid = ULID.from_datetime(now)
                    continue
                versions = {
                    (PLATFORM_PK, POLICY_SK): platform.version if platform.exists else None,
                    (tenant_pk(tenant_id), POLICY_SK): tenant.version if tenant.exists else None,
                }
                decided = self._decide(pairs, failed, amount, now, versions, tenant_id, enforce)
                if isinstance(decided, slicing.Stale):
                    self._apply_policy_failures(decided.policies)
                    moves, renewals = {}, {}
                    continue
                if isinstance(decided, leasing.Renew):
                    renewals[decided.quota_id] = decided
                    borrows += 1
                    continue
                renewals = {}  # a renewal planned on what changed since: plan again if short
                if isinstance(decided, slicing.Borrow):
                    moves[decided.quota_id] = decided.moves
                    borrows += 1
                    continue
                bound: QuotaFigures | None = (
                    figures(decided.quota, decided.at_slot, decided.fields, now)
                    if isinstance(decided, slicing.Refused)
                    else binding(pairs, amount, failed, now)
                )
                if bound is None:
                    continue
                if bound.held_usd > 0 and not expired_lazily:
                    expired_lazily = True
                    self.expire_due(None if bound.scope == "platform" else tenant_id)
                    continue
                raise QuotaExceeded(bound, amount) from None
            return Spent({"pk": rec_key[0], "sk": rec_key[1], **item}, ref=ref, quotas=quotas)
        raise LedgerBusy()

    def _decide(
        self,
        pairs: list[tuple[QuotaDefinition, Slot]],
        failed: dict[Key, Any],
        amount: Decimal,
        now: datetime,
        versions: dict[Key, int | None],
        tenant_id: str,
        enforce: bool,
    ) -> slicing.Borrow | slicing.Refused | slicing.Stale | leasing.Renew | None:
        """What a cancelled spend does next, by the sliced and leased quotas' rules. A sliced
        quota whose slice covers the amount (a `Borrow` without moves) has not failed: the item
        it shares with a tenant's lease (the tenant's counter of the platform period) may have
        failed on the lease's condition, which the lease's rule decides (a renewal)."""
        if not enforce:
            return None
        sliced = slicing.decide(self.table, pairs, failed, amount, now, versions, tenant_id)
        if sliced is not None and not (isinstance(sliced, slicing.Borrow) and not sliced.moves):
            return sliced
        leased = leasing.decide(
            self.table, pairs, failed, amount, now, versions[(PLATFORM_PK, POLICY_SK)]
        )
        return leased or sliced

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
            states = read_states(
                self.table, tenant_id, quotas, ref.created_at, consistent=False, tz=ref.tz
            )
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
                fields: QuotaFields
                if quota.leased:
                    slot = leasing.pool_slot(slot)
                    pool = {slot.key: self.table.get(slot.key, consistent=True) or {}}
                    fields = leasing.whole_fields(self.table, quota, slot, pool, True)
                elif quota.sliced:
                    found = self.table.batch_get(slicing.keys(quota, slot.base))
                    fields = slicing.whole_fields(quota, slot, found, at)
                else:
                    fields = fields_of(slot, self.table.get(slot.key, consistent=True))
                raise QuotaExceeded(figures(quota, slot, fields, at), amount)

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
                _count_denial(span, refused)
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
        cost, price = self.prices.cost(usage, now)
        digest = request_hash(usage)

        def record(ref: ReservationRef, ulid: ULID) -> dict[str, Any]:
            item = {
                "tenant_id": tenant_id,
                "status": "recorded",
                "plan": ref.terms,
                "resource": usage.resource,
                "cost_usd": cost,
                "commit_hash": digest,
                "created_at": iso(now),
                "recorded_at": iso(now),
                "overrun": False,
                **usage_fields(usage, price),
                **usage.attribution(),
            }
            return CostRecordItem.encode(item)

        spent = self._spend(
            tenant_id,
            usage,
            cost,
            now,
            held=False,
            enforce=enforce and self._enforcing(),
            marker=marker_key(tenant_id, "record", idempotency_key),
            digest=digest,
            record=record,
            roll_up_day=lambda tx, tz, lane: roll_up(
                tx, tenant_id, now, usage, cost, price, usage.user_id, tz, lane
            ),
        )
        return cost_record(spent.item)

    def check(self, tenant_id: str, usage: Usage) -> CheckResult:
        """Dry run: would this estimate be allowed now? Writes nothing but expired holds."""
        telemetry.count("QuotaChecks")
        validate_tenant_id(tenant_id)
        now = self.now()
        amount = self.prices.hold(usage, now).amount
        resource = Resource(usage.resource)
        platform, tenant = self.policies(tenant_id, fresh=True)
        paused = tenant.paused or bool(usage.user_id and usage.user_id in tenant.paused_users)
        quotas = [*platform.applicable(resource, None), *tenant.applicable(resource, usage.user_id)]
        tz = tenant.zone_at(now)
        for attempt in range(2):
            states = read_states(self.table, tenant_id, quotas, now, consistent=True, tz=tz)
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


def _count_denial(span: Any, refused: QuotaExceeded) -> None:
    """A refused spend names its binding quota on the span and counts in `Denials`."""
    b = refused.binding
    telemetry.set_attributes(span, {"binding_quota_id": b.quota_id})
    telemetry.dimensional(
        "Denials", telemetry.MetricUnit.Count, 1, scope=b.scope, resource=b.resource
    )

"""Settling a reservation: commit (charge the actual, free the hold, at most once) and
release (give the hold back). An expired hold is settled by expiry, never late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import costguard.ledger.in_item as in_item
from costguard import telemetry
from costguard.errors import (
    InvalidRequest,
    OverrunRejected,
    ReservationNotFound,
    ReservationNotHeld,
)
from costguard.ledger.core import GARBAGE_AFTER, OPEN_PREFIX, UNKNOWN_USAGE
from costguard.ledger.idempotency import request_hash
from costguard.ledger.records import cost_record
from costguard.ledger.spend import Spending
from costguard.ledger.spend_writes import give_back, settle_hold, usage_fields, usage_of
from costguard.ledger.terms import ReservationRef
from costguard.models import CostRecord, Usage
from costguard.money import ZERO
from costguard.pricing import Price
from costguard.quotas import OnOverrun, validate_tenant_id
from costguard.store.codec import iso
from costguard.store.counters import InItemHold
from costguard.store.dynamo import Cancelled
from costguard.store.items import CostRecordItem
from costguard.store.keys import Key
from costguard.store.schema import HOLDS_PK, HOLDS_SK, TTL_ATTRIBUTE
from costguard.store.writes import TransactionBuilder


@dataclass(frozen=True)
class ReleaseResult:
    reservation_id: str
    status: str
    released_usd: Decimal


class Settling(Spending):
    """Commit and release."""

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
            if not telemetry.metrics_on():  # off: no figure computed for them (issue 22)
                return record
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
        held: InItemHold | None = None
        record_held: dict[str, Any] | None = None
        if usage is None and ref.in_item:
            # The usage comes from the hold in the counter: what it held is what is charged.
            digest = UNKNOWN_USAGE
            held = in_item.found(self.table.get(self._counter_of(tenant_id, ref)), ref)
            if held is None:
                return self._in_item_refused(tenant_id, ref, None, digest, now, read=True)
            rolled = in_item.usage_of(held, ref)
            cost, price = estimate, None
            fields: dict[str, Any] = {"usage_unknown": True, "settled_by": "usage_unknown"}
        elif usage is None:
            # The usage comes from the reservation itself: what it held is what is charged.
            digest = UNKNOWN_USAGE
            record_held = self.table.get(ref.record_key(tenant_id), consistent=True)
            if (
                record_held is None
                or record_held.get("plan") != ref.terms
                or record_held.get("status") != "held"
            ):
                return self._commit_refused(tenant_id, ref, record_held, digest, now)
            rolled = usage_of(record_held)
            cost, price = estimate, None
            fields = {"usage_unknown": True, "settled_by": "usage_unknown"}
        else:
            if usage.resource != ref.resource.value:
                raise InvalidRequest(
                    f"this reservation is for resource {ref.resource.value!r}", field="resource"
                )
            if usage.user_id is not None and usage.user_id != ref.user_id:
                raise InvalidRequest("user_id differs from the reservation's", field="user_id")
            digest = request_hash(usage)
            rolled = usage
            cost, price = self.prices.cost(usage, ref.created_at)
            fields = {
                **usage_fields(usage, price),
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
        fields = CostRecordItem.encode(fields)
        if ref.in_item:
            return self._commit_in_item(tenant_id, ref, held, cost, rolled, price, fields, now)
        tx = TransactionBuilder()
        settle_hold(tx, tenant_id, ref, cost, rolled, price)
        rec = tx.update(ref.record_key(tenant_id))
        rec.sets.extend(f"{rec.name(k)} = {rec.value(v)}" for k, v in fields.items())
        rec.removes.extend([rec.name(HOLDS_PK), rec.name(HOLDS_SK)])
        rec.condition(
            f"{rec.name('status')} = {rec.value('held')} AND {rec.name('plan')} = "
            f"{rec.value(ref.terms)} AND {rec.name('expires_at')} > {rec.value(iso(now))}"
        )
        try:
            self.table.transact(tx.writes)
        except Cancelled as cancelled:
            old = cancelled.old(rec.key)
            return self._commit_refused(tenant_id, ref, old, digest, now)
        item = {
            "pk": ref.record_key(tenant_id)[0],
            "sk": str(ref.ulid),
            "tenant_id": tenant_id,
            "resource": ref.resource.value,
            "estimate_usd": estimate,
            "created_at": iso(ref.created_at),
            "user_id": ref.user_id,
            "plan": ref.terms,
            **fields,
        }
        if usage is None:
            assert record_held is not None
            item = {**record_held, **item}  # the reservation's model, tokens and attribution
        record = cost_record(item)
        if record.settled_by == "overrun_rejected":
            raise OverrunRejected(record)
        return record

    @staticmethod
    def _counter_of(tenant_id: str, ref: ReservationRef) -> Key:
        return ref.slots(tenant_id)[0].key

    def _commit_in_item(
        self,
        tenant_id: str,
        ref: ReservationRef,
        held: InItemHold | None,
        cost: Decimal,
        rolled: Usage,
        price: Price | None,
        fields: dict[str, Any],
        now: datetime,
    ) -> CostRecord:
        """Commit an in-item hold (D72): one transaction takes the hold out of the counter
        (condition: there as the id says, alive), charges it, rolls the day up and puts the
        record (condition: absent, so a retried commit finds and answers it)."""
        tx = TransactionBuilder()
        settle_hold(tx, tenant_id, ref, cost, rolled, price)
        counter = self._counter_of(tenant_id, ref)
        in_item.take_out(tx.update(counter), ref, now, expired=False)
        record_key = ref.record_key(tenant_id)
        item = {**in_item.record(tenant_id, ref, held), **fields}
        tx.put(record_key, item, "attribute_not_exists(pk)")
        try:
            self.table.transact(tx.writes)
        except Cancelled as cancelled:
            return self._in_item_refused(
                tenant_id,
                ref,
                cancelled.old(record_key),
                fields["commit_hash"],
                now,
                counter=cancelled.old(counter),
            )
        record = cost_record({"pk": record_key[0], "sk": record_key[1], **item})
        if record.settled_by == "overrun_rejected":
            raise OverrunRejected(record)
        return record

    def _in_item_refused(
        self,
        tenant_id: str,
        ref: ReservationRef,
        old: dict[str, Any] | None,
        digest: str,
        now: datetime,
        *,
        counter: dict[str, Any] | None = None,
        read: bool = False,
    ) -> CostRecord:
        """Why an in-item commit did not apply: its record exists (a retry, or settled
        otherwise: answered as any record), or its hold is in the counter but expired
        (settled by expiry now, 409 with what it charged), or neither (unknown)."""
        if read:
            old = self.table.get(ref.record_key(tenant_id), consistent=True)
        if old is not None:
            return self._commit_refused(tenant_id, ref, old, digest, now)
        if read:
            counter = self.table.get(self._counter_of(tenant_id, ref), consistent=True)
        held = in_item.found(counter, ref)
        if held is None:
            raise ReservationNotFound("unknown reservation")
        self._expire_in_item(tenant_id, [(ref, held)], now)
        settled = self.table.get(ref.record_key(tenant_id), consistent=True)
        charged = (settled or {}).get("cost_usd") if (settled or {}).get("settled_by") else None
        raise ReservationNotHeld(ref.reservation_id, "expired", charged)

    def _commit_refused(
        self,
        tenant_id: str,
        ref: ReservationRef,
        old: dict[str, Any] | None,
        digest: str,
        now: datetime,
    ) -> CostRecord:
        if old is None or old.get("plan") != ref.terms:
            raise ReservationNotFound("unknown reservation")
        status = old.get("status")
        if status == "committed":
            if old.get("settled_by") == "expiry":
                raise ReservationNotHeld(ref.reservation_id, "expired", old.get("cost_usd"))
            if old.get("commit_hash") == digest:
                record = cost_record(old)
                if record.settled_by == "overrun_rejected":
                    raise OverrunRejected(record)
                return record
            raise ReservationNotHeld(ref.reservation_id, "committed with a different body")
        if status == "held":
            self._expire(tenant_id, ref, now)
            settled = self.table.get(ref.record_key(tenant_id), consistent=True)
            charged = (settled or {}).get("cost_usd") if (settled or {}).get("settled_by") else None
            raise ReservationNotHeld(ref.reservation_id, "expired", charged)
        raise ReservationNotHeld(ref.reservation_id, str(status))

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
        if ref.in_item:
            return self._release_in_item(tenant_id, ref, now)
        old = self._return_hold(tenant_id, ref, "released", now, only_if_expired=False)
        if old is None:
            return ReleaseResult(reservation_id, "released", ref.estimate_usd)
        if not old or old.get("plan") != ref.terms:
            raise ReservationNotFound("unknown reservation")
        if old.get("status") == "held":  # expired, not yet swept: settled as expiry says
            self._expire(tenant_id, ref, now)
            return ReleaseResult(reservation_id, "expired", ZERO)
        if old.get("status") in ("released", "expired"):
            return ReleaseResult(reservation_id, str(old["status"]), ZERO)
        if old.get("settled_by") == "expiry":
            return ReleaseResult(reservation_id, "expired", ZERO)  # expired and charged
        raise ReservationNotHeld(reservation_id, str(old.get("status")))

    def _release_in_item(self, tenant_id: str, ref: ReservationRef, now: datetime) -> ReleaseResult:
        """Release an in-item hold: one transaction gives it back, takes it out of the counter
        (condition: there, alive) and puts a `released` record (TTL) that answers a late
        release or commit; an expired hold is settled as expiry says, never released late."""
        tx = TransactionBuilder()
        give_back(tx, tenant_id, ref)
        counter = self._counter_of(tenant_id, ref)
        in_item.take_out(tx.update(counter), ref, now, expired=False)
        record_key = ref.record_key(tenant_id)
        released = {
            **in_item.record(tenant_id, ref, None),
            "status": "released",
            "settled_at": iso(now),
            TTL_ATTRIBUTE: int((now + GARBAGE_AFTER).timestamp()),
        }
        tx.put(record_key, CostRecordItem.encode(released), "attribute_not_exists(pk)")
        try:
            self.table.transact(tx.writes)
        except Cancelled as cancelled:
            old = cancelled.old(record_key)
            if old is None:
                held = in_item.found(cancelled.old(counter), ref)
                if held is None:
                    raise ReservationNotFound("unknown reservation") from None
                self._expire_in_item(tenant_id, [(ref, held)], now)
                return ReleaseResult(ref.reservation_id, "expired", ZERO)
            if old.get("plan") != ref.terms:
                raise ReservationNotFound("unknown reservation") from None
            if old.get("status") in ("released", "expired"):
                return ReleaseResult(ref.reservation_id, str(old["status"]), ZERO)
            if old.get("settled_by") == "expiry":
                return ReleaseResult(ref.reservation_id, "expired", ZERO)
            raise ReservationNotHeld(ref.reservation_id, str(old.get("status"))) from None
        return ReleaseResult(ref.reservation_id, "released", ref.estimate_usd)

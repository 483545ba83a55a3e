"""Expiry: a hold past its `expires_at` is settled as the tenant's `on_expiry` says (given
back, or charged in full), by the sweeper for everyone or lazily for one tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import costguard.ledger.leasing as leasing
from costguard import telemetry
from costguard.errors import LedgerCorrupted, ReservationNotFound
from costguard.ledger.core import GARBAGE_AFTER
from costguard.ledger.plan import ReservationRef
from costguard.ledger.policies import PolicyCache
from costguard.ledger.spend_writes import settle_hold, usage_of
from costguard.money import ZERO
from costguard.quotas import OnExpiry
from costguard.store.codec import iso
from costguard.store.dynamo import Cancelled
from costguard.store.keys import (
    HOLD_PREFIX,
    PLATFORM_PK,
    POLICY_SK,
    holds_pk,
    records_pk,
    tenant_of_holds_pk,
)
from costguard.store.schema import HOLDS_INDEX, HOLDS_PK, HOLDS_SK, TTL_ATTRIBUTE
from costguard.store.writes import TransactionBuilder


class Expiry(PolicyCache):
    """Returns or charges holds that outlived their reservation."""

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
            return cancelled.old(rec.key) or {}
        return None

    def _charge_expired(self, tenant_id: str, ref: ReservationRef, now: datetime) -> bool:
        """Settle an expired hold by charging it in full (`on_expiry: charge`): the app may
        have spent it and never said so. True if this call settled it."""
        held = self.table.get((records_pk(tenant_id), str(ref.ulid)), consistent=True)
        if held is None or held.get("status") != "held" or held.get("plan") != ref.plan:
            return False
        estimate = ref.estimate_usd
        tx = TransactionBuilder()
        settle_hold(tx, tenant_id, ref, estimate, usage_of(held), None)
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
                {":hold": HOLD_PREFIX, ":now": due_bound},
                limit,
            )
        returned = 0
        for item in due:
            tenant = tenant_of_holds_pk(item[HOLDS_PK])
            ulid_text = item[HOLDS_SK].rsplit("#", 1)[1]
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
        if tenant_id is None:
            self.return_expired_leases()
        return returned

    def return_expired_leases(self) -> int:
        """Expired leases of leased platform quotas give their unused allowance back to the
        pool (D78); the number of leases returned."""
        platform = self.policy_from_item(self.table.get((PLATFORM_PK, POLICY_SK)))
        return leasing.sweep(self.table, platform.quotas, self.now())

"""Expiry: a hold past its `expires_at` is settled as the tenant's `on_expiry` says (given
back, or charged in full), by the sweeper for everyone or lazily for one tenant."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import costguard.ledger.in_item as in_item
import costguard.ledger.leasing as leasing
from costguard import telemetry
from costguard.errors import LedgerCorrupted, ReservationNotFound
from costguard.ledger.core import GARBAGE_AFTER
from costguard.ledger.policies import PolicyCache
from costguard.ledger.spend_writes import give_back, settle_hold, usage_of
from costguard.ledger.terms import ReservationRef
from costguard.money import ZERO
from costguard.periods import parse_period_key, period_end
from costguard.quotas import OnExpiry
from costguard.store.codec import iso
from costguard.store.counters import HOLD_COUNT, InItemHold
from costguard.store.dynamo import Cancelled, ConditionFailed
from costguard.store.items import CostRecordItem, policy_of
from costguard.store.keys import (
    HOLD_PREFIX,
    PLATFORM_PK,
    POLICY_SK,
    Key,
    holds_pk,
    tenant_of_holds_pk,
    tenant_pk,
)
from costguard.store.schema import HOLDS_INDEX, HOLDS_PK, HOLDS_SK, TTL_ATTRIBUTE
from costguard.store.writes import ItemWrite, TransactionBuilder


def charged_by_expiry(estimate: Decimal, now: datetime) -> dict[str, Any]:
    """A record's attributes once expiry charged its hold in full (`on_expiry: charge`)."""
    return CostRecordItem.encode(
        {
            "status": "committed",
            "cost_usd": estimate,
            "commit_hash": "expiry",
            "settled_by": "expiry",
            "usage_unknown": True,
            "overrun": False,
            "overrun_usd": ZERO,
            "recorded_at": now,
        }
    )


def given_back(status: str, now: datetime) -> dict[str, Any]:
    """A record's attributes once its hold went back uncharged (`released`, `expired`): kept
    a while to answer a late commit or release, then removed by TTL."""
    return CostRecordItem.encode(
        {
            "status": status,
            "settled_at": now,
            TTL_ATTRIBUTE: int((now + GARBAGE_AFTER).timestamp()),
        }
    )


def settle_held(
    tx: TransactionBuilder,
    tenant_id: str,
    ref: ReservationRef,
    attributes: dict[str, Any],
    now: datetime,
    expired: bool,
) -> ItemWrite:
    """The update settling a held record with `attributes`, out of the `holds` index, on
    condition that it is still the hold the id names and expired (`expired`) or alive."""
    rec = tx.update(ref.record_key(tenant_id))
    rec.sets.extend(f"{rec.name(k)} = {rec.value(v)}" for k, v in attributes.items())
    rec.removes.extend([rec.name(HOLDS_PK), rec.name(HOLDS_SK)])
    rec.condition(
        f"{rec.name('status')} = {rec.value('held')} AND {rec.name('plan')} = {rec.value(ref.terms)}"
    )
    at = rec.value(iso(now))
    rec.condition(f"{rec.name('expires_at')} {'<=' if expired else '>'} {at}")
    return rec


class Expiry(PolicyCache):
    """Returns or charges holds that outlived their reservation."""

    def _return_hold(
        self, tenant_id: str, ref: ReservationRef, status: str, now: datetime, only_if_expired: bool
    ) -> dict[str, Any] | None:
        """Give the hold back; None on success, else the record's current item (or {}).

        A release (`only_if_expired=False`) needs the hold alive: an expired hold is settled
        by the tenant's `on_expiry` setting, never by a late release (as a late commit)."""
        tx = TransactionBuilder()
        give_back(tx, tenant_id, ref)
        rec = settle_held(tx, tenant_id, ref, given_back(status, now), now, only_if_expired)
        try:
            self.table.transact(tx.writes)
        except Cancelled as cancelled:
            return cancelled.old(rec.key) or {}
        return None

    def _charge_expired(self, tenant_id: str, ref: ReservationRef, now: datetime) -> bool:
        """Settle an expired hold by charging it in full (`on_expiry: charge`): the app may
        have spent it and never said so. True if this call settled it."""
        held = self.table.get(ref.record_key(tenant_id), consistent=True)
        if held is None or held.get("status") != "held" or held.get("plan") != ref.terms:
            return False
        estimate = ref.estimate_usd
        tx = TransactionBuilder()
        settle_hold(tx, tenant_id, ref, estimate, usage_of(held), None)
        settle_held(tx, tenant_id, ref, charged_by_expiry(estimate, now), now, expired=True)
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

    def _expire_in_item(
        self, tenant_id: str, due: list[tuple[ReservationRef, InItemHold]], now: datetime
    ) -> int:
        """Settle expired in-item holds of a tenant as its `on_expiry` says (read fresh, once);
        the number this call settled (another settler may have won some)."""
        if not due:
            return 0
        _, tenant = self.policies(tenant_id, fresh=True)
        settled = 0
        for ref, held in due:
            try:
                settled += self._settle_in_item_expired(tenant_id, ref, held, now, tenant.on_expiry)
            except LedgerCorrupted:
                continue  # reconcile() reports it; the others go on
        return settled

    def _settle_in_item_expired(
        self,
        tenant_id: str,
        ref: ReservationRef,
        held: InItemHold,
        now: datetime,
        on_expiry: OnExpiry,
    ) -> bool:
        """One transaction: the hold out of its counter (condition: there, expired), the
        charge or the give-back, and its record put (condition: absent), so that a commit,
        a release and any number of settlers settle it exactly once."""
        tx = TransactionBuilder()
        estimate = ref.estimate_usd
        record = in_item.record(tenant_id, ref, held)
        if on_expiry is OnExpiry.CHARGE:
            settle_hold(tx, tenant_id, ref, estimate, in_item.usage_of(held, ref), None)
            record |= charged_by_expiry(estimate, now)
        else:
            give_back(tx, tenant_id, ref)
            record |= given_back("expired", now)
        in_item.take_out(tx.update(ref.slots(tenant_id)[0].key), ref, now, expired=True)
        tx.put(ref.record_key(tenant_id), record, "attribute_not_exists(pk)")
        try:
            self.table.transact(tx.writes)
        except Cancelled:
            return False
        if on_expiry is OnExpiry.CHARGE:
            telemetry.usd("ExpiredChargedUsd", estimate)
        return True

    def _expire_listed(self, tenant_id: str | None, now: datetime, limit: int) -> int:
        """Walk the counters that held in-item holds (of one tenant, or everyone's: the
        sweeper) and settle their expired holds; a counter of a long-ended period with no
        hold left leaves the list (D72)."""
        if tenant_id is not None:
            listed, _ = self.table.query(
                f"{HOLDS_PK} = :p",
                {":p": in_item.listed_pk(tenant_id)},
                index=HOLDS_INDEX,
                limit=limit,
            )
        else:
            listed = self.table.scan_index(
                HOLDS_INDEX,
                f"begins_with({HOLDS_PK}, :held)",
                {":held": in_item.LISTED_PREFIX},
                limit,
            )
        keys = sorted({in_item.counter_of_listing(item) for item in listed})
        if not keys:
            return 0
        counters = self.table.batch_get(keys, consistent=True)
        due: dict[str, list[tuple[ReservationRef, InItemHold]]] = defaultdict(list)
        for key in keys:
            counter = counters.get(key)
            tenant = key[0].removeprefix(tenant_pk(""))
            if found := in_item.due(counter, now):
                due[tenant].extend(found)
            elif not any(True for _ in in_item.holds(counter)):
                self._delist(key, now)
        return sum(self._expire_in_item(t, held, now) for t, held in due.items())

    def _delist(self, key: Key, now: datetime) -> None:
        """A counter whose period ended longer ago than any hold lives leaves the list."""
        try:
            period, first = parse_period_key(key[1])
        except ValueError:
            return
        # A day either side: the key's date is local to a zone the listing does not say.
        ended = period_end(period, first) + timedelta(days=1)
        if now < ended + timedelta(seconds=self.settings.max_reservation_ttl_seconds):
            return
        w = ItemWrite(key=key)
        count = w.name(HOLD_COUNT)
        w.removes.extend([w.name(HOLDS_PK), w.name(HOLDS_SK)])
        w.condition(f"attribute_not_exists({count}) OR {count} = {w.value(0)}")
        w.condition("attribute_exists(pk)")
        with contextlib.suppress(ConditionFailed):
            self.table.update_or_old(w)

    def expire_due(self, tenant_id: str | None = None, limit: int = 200) -> int:
        """Return the holds of reservations past their expiry; the number returned.

        For one tenant (the lazy path of a refused reserve) or for everyone (the sweeper).
        """
        now = self.now()
        # gsi1sk is "<expires_at>#<ulid>": "$" sorts right after "#", so every hold that
        # expires at `now` exactly is due too (commit already refuses it: expires_at > now).
        due_bound = f"{iso(now)}$"
        if tenant_id is not None:
            # Every lane the tenant's holds may be in (D98): its policy was just proven by
            # the refused reserve that asks, so the lanes are current.
            due = []
            for lane in range(self.policies(tenant_id)[1].lanes):
                found, _ = self.table.query(
                    f"{HOLDS_PK} = :p AND {HOLDS_SK} < :now",
                    {":p": holds_pk(tenant_id, lane), ":now": due_bound},
                    index=HOLDS_INDEX,
                    limit=limit,
                )
                due.extend(found)
        else:
            # The index also holds the alerts outbox (costguard.alerts): holds only.
            due = self.table.scan_index(
                HOLDS_INDEX,
                f"begins_with({HOLDS_PK}, :hold) AND {HOLDS_SK} < :now",
                {":hold": HOLD_PREFIX, ":now": due_bound},
                limit,
            )
        # The sweeper's walk of counters with in-item holds runs every `held_sweep_minutes`
        # (D104); a tenant's own (a refused reserve) always.
        walk = tenant_id is not None or (
            int(now.timestamp() // 60) % self.settings.held_sweep_minutes == 0
        )
        returned = self._expire_listed(tenant_id, now, limit) if walk else 0
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
        platform = policy_of(self.table.get((PLATFORM_PK, POLICY_SK)))
        return leasing.sweep(self.table, platform.quotas, self.now())

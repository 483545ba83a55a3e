"""Tenant and quota administration: registration, settlement settings, pause, quotas (put,
seed, delete) and the quota list with figures. Every write moves the policy's version, so
each cached copy is re-read by the next reserve that meets it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import costguard.ledger.escrow as escrow
import costguard.ledger.leasing as leasing
import costguard.ledger.slicing as slicing
from costguard.errors import InvalidRequest, QuotaNotFound, TenantExists
from costguard.ledger.core import POLICY_ATTEMPTS, LedgerBusy
from costguard.ledger.figures import fields_of, figures, read_states, state
from costguard.ledger.policies import (
    PLATFORM_FRESH_SECONDS,
    PolicyCache,
    stamp_version,
    stamped_keys,
    write_replicas,
)
from costguard.ledger.terms import Slot, field_prefix, slot_for
from costguard.models import QuotaState, TenantSettings, TenantSettingsState
from costguard.quotas import (
    Mode,
    QuotaDefinition,
    QuotaId,
    Scope,
    validate_tenant_id,
    validate_timezone,
)
from costguard.store.codec import iso
from costguard.store.counters import CounterItem
from costguard.store.dynamo import Cancelled
from costguard.store.items import LANES, TenantItem, policy_of, quota_spec
from costguard.store.keys import (
    PLATFORM_PK,
    POLICY_REPLICAS,
    POLICY_SK,
    TENANT_SK,
    policy_pk,
    principal_pk,
    tenant_pk,
)
from costguard.store.writes import ItemWrite, TransactionBuilder


@dataclass(frozen=True)
class SeedResult:
    """What `seed_quotas` did: the quotas it wrote and those an operator had already set."""

    seeded: tuple[str, ...]
    kept: tuple[str, ...]
    first: bool
    """False when the tenant had been seeded before: nothing was written this time."""


class TenantAdmin(PolicyCache):
    """What an operator (or onboarding) changes about a tenant and its quotas."""

    def quotas(self, tenant_id: str | None) -> list[QuotaState]:
        """Every quota of a tenant (its own and its users'), or of the platform, with figures."""
        now = self.now()
        if tenant_id is None:
            platform = policy_of(self.table.get((PLATFORM_PK, POLICY_SK)))
            return read_states(self.table, "-", platform.quotas, now, consistent=True)
        validate_tenant_id(tenant_id)
        tenant = policy_of(self.table.get((tenant_pk(tenant_id), POLICY_SK)))
        return read_states(
            self.table, tenant_id, tenant.quotas, now, consistent=True, tz=tenant.zone_at(now)
        )

    def period_totals(
        self, tenant_id: str, quota_id: QuotaId, period_keys: Iterable[str]
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """(spent, limit) of a tenant or user quota in each of `period_keys` that has a
        counter, read as one: every slice of a sliced quota (D77)."""
        _, tenant = self.policies(tenant_id)
        quota = next((q for q in tenant.quotas if q.quota_id == quota_id and q.sliced), None)
        pk = principal_pk(quota_id.scope, tenant_id, quota_id.user_id)
        prefix = field_prefix(quota_id.resource)
        bases = [(pk, k) for k in period_keys]
        wanted = [k for b in bases for k in (slicing.keys(quota, b) if quota else [b])]
        items = self.table.batch_get(wanted) if wanted else {}
        totals: dict[str, tuple[Decimal, Decimal]] = {}
        for base in bases:
            fields = CounterItem(items.get(base)).fields(prefix)
            if quota is not None:
                found = slicing.period_totals(quota, base, prefix, items)
            elif fields.limit is not None:
                found = (fields.spent, fields.limit)
            else:
                found = None
            if found is not None:
                totals[base[1]] = found
        return totals

    def create_tenant(
        self,
        tenant_id: str,
        name: str,
        plan: str | None = None,
        settings: TenantSettings | None = None,
    ) -> TenantItem:
        """Register a tenant. Its `timezone` applies at once, unless the tenant had a policy
        (quotas, settings) before it was registered: then at the next midnight of the zone
        in effect, as any change (D64)."""
        validate_tenant_id(tenant_id)
        pk = tenant_pk(tenant_id)
        for _ in range(POLICY_ATTEMPTS + 1):
            now = self.now()
            policy = self.table.get((pk, POLICY_SK), consistent=True)
            tx = TransactionBuilder()
            registration = TenantItem(tenant_id, name, now, plan)
            tx.put((pk, TENANT_SK), registration.to_item(), "attribute_not_exists(pk)")
            # A policy written before the tenant was registered (quotas, settings) moves its
            # version like any policy write, its counters stamped (D71): a process that cached
            # it meets the new version at its next single-item reserve.
            w = self._bump_version(tx, pk, policy)
            w.sets.append(f"{w.name('quotas')} = if_not_exists({w.name('quotas')}, {w.value({})})")
            if settings is not None:
                w.sets.append(f"{w.name('overrun')} = {w.value(settings.overrun)}")
                w.sets.append(f"{w.name('on_expiry')} = {w.value(settings.on_expiry)}")
                self._set_zone(w, policy, settings, now)
            if policy is not None:
                self._stamp(tx, tenant_id, policy, now)
            try:
                self.table.transact(tx.writes)
            except Cancelled as cancelled:
                if any(i == 0 for i, _ in cancelled.failed()):
                    raise TenantExists(f"tenant {tenant_id!r} exists") from None
                continue  # the policy moved between the read and the write
            self.forget_policy(pk)
            return registration
        raise LedgerBusy()

    def tenant(self, tenant_id: str) -> TenantItem | None:
        """The tenant's registration (id, name, plan, created_at), or None."""
        item = self.table.get((tenant_pk(tenant_id), TENANT_SK))
        return None if item is None else TenantItem.from_item(item)

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

        def change(w: ItemWrite, item: dict[str, Any] | None, now: datetime) -> None:
            w.sets.append(f"{w.name('overrun')} = {w.value(settings.overrun)}")
            w.sets.append(f"{w.name('on_expiry')} = {w.value(settings.on_expiry)}")
            self._set_zone(w, item, settings, now)

        self._write_tenant_policy(tenant_id, change)
        return self.tenant_settings(tenant_id)

    def _write_tenant_policy(
        self, tenant_id: str, change: Callable[[ItemWrite, dict[str, Any] | None, datetime], None]
    ) -> None:
        """One write of the tenant's policy: read it, move its version, `change` it, stamp its
        counters (D71), as one transaction; one that met another write is done again from a
        fresh read."""
        pk = tenant_pk(tenant_id)
        for _ in range(POLICY_ATTEMPTS + 1):
            now = self.now()
            item = self.table.get((pk, POLICY_SK), consistent=True)
            tx = TransactionBuilder()
            w = self._bump_version(tx, pk, item)
            quotas = w.name("quotas")
            w.sets.append(f"{quotas} = if_not_exists({quotas}, {w.value({})})")
            change(w, item, now)
            self._stamp(tx, tenant_id, item, now)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue
            self.forget_policy(pk)
            return
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
            tz, since, before = policy_of(item).zone_change(settings.timezone, now)
        w.sets.append(f"{w.name('timezone')} = {w.value(tz)}")
        if since is None:
            w.removes.extend([w.name("timezone_from"), w.name("timezone_before")])
        else:
            w.sets.append(f"{w.name('timezone_from')} = {w.value(iso(since))}")
            w.sets.append(f"{w.name('timezone_before')} = {w.value(before)}")

    def set_paused(self, tenant_id: str, paused: bool, user_id: str | None = None) -> None:
        """Pause or unpause a tenant or one of its users; takes effect on the next reserve."""
        validate_tenant_id(tenant_id)

        def change(w: ItemWrite, item: dict[str, Any] | None, now: datetime) -> None:
            if user_id is None:
                w.sets.append(f"{w.name('paused')} = {w.value(paused)}")
            elif paused:
                w.adds.append(f"{w.name('paused_users')} {w.value({user_id})}")
            else:
                w.deletes.append(f"{w.name('paused_users')} {w.value({user_id})}")

        self._write_tenant_policy(tenant_id, change)

    @staticmethod
    def _bump_version(tx: TransactionBuilder, pk: str, item: dict[str, Any] | None) -> ItemWrite:
        """The policy update moving the version read (`item`'s) by one, on condition that it
        is still the one read: the counters are stamped with exactly that new version (D71)."""
        w = tx.update((pk, POLICY_SK))
        version = w.name("version")
        if item is None:
            w.condition("attribute_not_exists(pk)")
        elif "version" in item:
            w.condition(f"{version} = {w.value(item['version'])}")
        else:
            w.condition(f"attribute_exists(pk) AND attribute_not_exists({version})")
        w.sets.append(f"{version} = {w.value(int((item or {}).get('version', 0)) + 1)}")
        return w

    def _stamp(
        self,
        tx: TransactionBuilder,
        tenant_id: str | None,
        policy_item: dict[str, Any] | None,
        now: datetime,
        lanes: int | None = None,
    ) -> None:
        """Stamp the tenant policy's next version on its counters of the current periods,
        in the transaction that writes it (D71): a process whose cached policy is older is
        refused by the counter itself; and on the policy's replicas (D99; `lanes`: the
        tenant's lanes after this write). The platform's is announced instead (no stamp)."""
        if tenant_id is None:
            return
        policy = policy_of(policy_item)
        keys = stamped_keys(tenant_id, policy, now)
        found = self.table.batch_get(keys, consistent=True)
        version = int((policy_item or {}).get("version", 0)) + 1
        stamp_version(tx, keys, found, version)
        replicas = min(max(policy.replicas, lanes or 1), POLICY_REPLICAS)
        write_replicas(tx, tenant_id, replicas, version)

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
        pk = policy_pk(tenant_id)
        spec = quota_spec(quota)
        if quota.leased or (tenant_id is None and self._leased_now(pk, qid)):
            return self._put_leased_quota(quota)
        if quota.sliced or self._sliced_now(pk, qid):
            return self._put_sliced_quota(tenant_id, quota)
        for _ in range(8):
            now = self.now()
            policy_item = self.table.get((pk, POLICY_SK), consistent=True)
            slot = slot_for(qid, owner, now, policy_of(policy_item).zone_at(now))
            counter = self.table.get(slot.key, consistent=True)
            tx = TransactionBuilder()
            _write_quota_spec(tx, pk, policy_item, qid, spec)
            self._move_counter(tx, slot, counter, quota.limit_usd)
            self._stamp(tx, tenant_id, policy_item, now)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue
            self.forget_policy(pk)
            after = self.table.get(slot.key, consistent=True)
            written = state(quota, figures(quota, slot, fields_of(slot, after), now))
            return self._announced(tenant_id, written, now)
        raise LedgerBusy()

    @staticmethod
    def _announced(tenant_id: str | None, written: QuotaState, now: datetime) -> QuotaState:
        """A platform quota write applies to every reserve within PLATFORM_FRESH_SECONDS (a
        single-item reserve trusts a platform policy read that long, D71): said so."""
        if tenant_id is not None:
            return written
        effective = now + timedelta(seconds=PLATFORM_FRESH_SECONDS)
        return written.model_copy(update={"effective_at": effective})

    def _leased_now(self, pk: str, qid: QuotaId) -> bool:
        current = policy_of(self.table.get((pk, POLICY_SK), consistent=True))
        return any(q.quota_id == qid and q.leased for q in current.quotas)

    def _put_leased_quota(self, quota: QuotaDefinition) -> QuotaState:
        """A PUT of a leased platform quota (D78): the policy (version + 1, conditioned on the
        version read) and, in the same transaction, the pool moved so that pool + leases = the
        new limit (`grant += new − old`, relative: leases keep theirs; a quota created again
        within a period moves the pool by the new limit − what the pool and the old leases
        still grant). A new quota or a cut starts a new lease epoch (the new version): leases
        granted before are not spent once the write is in force (5 s, D71), their unused
        allowance goes back through the pool (D94). A leased quota stays leased, hard and
        unsliced."""
        qid = quota.quota_id
        if qid.scope is not Scope.PLATFORM or quota.mode is not Mode.HARD or quota.sliced:
            raise InvalidRequest(
                "only a hard, unsliced platform quota can be leased", field="leased"
            )
        if not quota.leased:
            raise InvalidRequest("a leased quota stays leased (delete it first)", field="leased")
        for _ in range(8):
            now = self.now()
            policy_item = self.table.get((PLATFORM_PK, POLICY_SK), consistent=True)
            old = next((q for q in policy_of(policy_item).quotas if q.quota_id == qid), None)
            slot = slot_for(qid, "-", now)
            version = int((policy_item or {}).get("version", 0)) + 1
            kept = old is not None and old.leased and quota.limit_usd >= old.limit_usd
            epoch = old.lease_epoch if kept and old is not None else version
            tx = TransactionBuilder()
            spec = quota_spec(replace(quota, lease_epoch=epoch))
            _write_quota_spec(tx, PLATFORM_PK, policy_item, qid, spec)
            if old is None:
                # Σ grants moves only here: what the period's pool and leases grant now stays.
                snap = leasing.snapshot(self.table, quota, slot.base, slot.prefix)
                granted = escrow.whole(snap.states).limit
            else:
                granted = old.limit_usd
            if granted != quota.limit_usd:
                default = old.limit_usd if old is not None else quota.limit_usd
                pool = tx.update(slot.key)
                escrow.move(pool, slot.prefix, default, quota.limit_usd - granted, guard=False)
                escrow.count_move(pool, slot.prefix)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue
            self.forget_policy(PLATFORM_PK)
            written = read_states(self.table, "-", [quota], now, consistent=True)[0]
            return self._announced(None, written, now)
        raise LedgerBusy()

    def _sliced_now(self, pk: str, qid: QuotaId) -> bool:
        current = policy_of(self.table.get((pk, POLICY_SK), consistent=True))
        return any(q.quota_id == qid and q.sliced for q in current.quotas)

    def _put_sliced_quota(self, tenant_id: str | None, quota: QuotaDefinition) -> QuotaState:
        """A quota PUT for a sliced quota (or one becoming or ceasing to be sliced): one
        transaction re-grants every slice of the current period to the new limit and slice
        count from a snapshot, and writes the policy (version + 1, conditioned on the version
        read) with the slice count, span and solo period (D76)."""
        qid = quota.quota_id
        pk = policy_pk(tenant_id)
        owner = tenant_id or "-"
        for _ in range(16):
            now = self.now()
            policy_item = self.table.get((pk, POLICY_SK), consistent=True)
            current = policy_of(policy_item)
            tz = current.zone_at(now)  # a platform quota: UTC whatever this says (slot_for)
            base = slot_for(qid, owner, now, tz).base
            old = next((q for q in current.quotas if q.quota_id == qid), None)
            keys = slicing.regrant_keys(old, quota, base)
            found = self.table.transact_get([(pk, POLICY_SK), *keys])
            policy_item = found.get((pk, POLICY_SK))
            old = next((q for q in policy_of(policy_item).quotas if q.quota_id == qid), None)
            if keys != slicing.regrant_keys(old, quota, base) or (
                policy_of(policy_item).zone_at(now) != tz
            ):
                continue  # resharded or moved to another zone meanwhile
            tx = TransactionBuilder()
            prefix = slot_for(qid, owner, now, tz).prefix
            spec = {
                **quota_spec(quota),
                **slicing.regrant(tx, old, quota, base, prefix, found, now),
            }
            # A tenant's lanes (D98) cover every slice its quotas ever had, deleted ones too.
            lanes = (
                max(policy_of(policy_item).lanes, spec["span"]) if tenant_id is not None else None
            )
            _write_quota_spec(tx, pk, policy_item, qid, spec, lanes)
            self._stamp(tx, tenant_id, policy_item, now, lanes)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue
            self.forget_policy(pk)
            fresh = policy_of(self.table.get((pk, POLICY_SK), consistent=True))
            stored = next(q for q in fresh.quotas if q.quota_id == qid)
            written = read_states(self.table, owner, [stored], now, consistent=True)[0]
            return self._announced(tenant_id, written, now)
        raise LedgerBusy()

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
            tz = policy_of(policy_item).zone_at(now)
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
                    "quotas": {qid: quota_spec(q) for qid, q in missing.items()},
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
                    specs = {qid: quota_spec(q) for qid, q in missing.items()}
                    w.sets.append(f"{quotas_attr} = {w.value(specs)}")
                else:
                    for qid, q in missing.items():
                        path = f"{w.name('quotas')}.{w.name(qid)}"
                        w.condition(f"attribute_not_exists({path})")
                        w.sets.append(f"{path} = {w.value(quota_spec(q))}")
            for qid, q in missing.items():
                slot = slots[qid]
                self._move_counter(tx, slot, found.get(slot.key), q.limit_usd)
            if missing:
                self._stamp(tx, tenant_id, policy_item, now)
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
        fields = fields_of(slot, counter)
        if fields.limit is not None:
            w.sets.append(f"{limit} = {w.value(new_limit)}")
            w.add(p + "avail", new_limit - fields.limit)
            w.condition(f"{limit} = {w.value(fields.limit)}")
            return
        spent, held = fields.spent, fields.held
        w.sets.append(f"{limit} = {w.value(new_limit)}")
        w.sets.append(f"{avail} = {w.value(new_limit - spent - held)}")
        w.condition(f"attribute_not_exists({limit})")
        for attr, value in (("spent", spent), ("held", held)):
            n = w.name(p + attr)
            w.condition(f"attribute_not_exists({n}) OR {n} = {w.value(value)}")

    def delete_quota(self, tenant_id: str | None, quota_id: QuotaId) -> None:
        pk = policy_pk(tenant_id)
        for _ in range(POLICY_ATTEMPTS + 1):
            now = self.now()
            item = self.table.get((pk, POLICY_SK), consistent=True)
            if item is None or str(quota_id) not in item.get("quotas", {}):
                raise QuotaNotFound(f"no quota {quota_id}")
            tx = TransactionBuilder()
            w = self._bump_version(tx, pk, item)
            path = f"{w.name('quotas')}.{w.name(str(quota_id))}"
            w.removes.append(path)
            w.condition(f"attribute_exists({path})")
            self._stamp(tx, tenant_id, item, now)
            try:
                self.table.transact(tx.writes)
            except Cancelled:
                continue  # the policy or a counter moved since it was read
            self.forget_policy(pk)
            return
        raise LedgerBusy()


def _write_quota_spec(
    tx: TransactionBuilder,
    pk: str,
    policy_item: dict[str, Any] | None,
    qid: QuotaId,
    spec: dict[str, Any],
    lanes: int | None = None,
) -> None:
    """The quota's spec into the policy item read as `policy_item`: created if there was none,
    else set with the version + 1, conditioned on the version read; with `lanes` (a tenant's
    sliced quota, D98) the tenant's record lanes too."""
    more = {LANES: lanes} if lanes and lanes > 1 else {}
    if policy_item is None:
        tx.put(
            (pk, POLICY_SK),
            {"version": 1, "quotas": {str(qid): spec}, **more},
            "attribute_not_exists(pk)",
        )
        return
    w = tx.update((pk, POLICY_SK))
    version = w.name("version")
    w.sets.append(f"{w.name('quotas')}.{w.name(str(qid))} = {w.value(spec)}")
    w.sets.extend(f"{w.name(k)} = {w.value(v)}" for k, v in more.items())
    w.sets.append(f"{version} = {version} + {w.value(1)}")
    w.condition(f"{version} = {w.value(policy_item.get('version', 0))}")

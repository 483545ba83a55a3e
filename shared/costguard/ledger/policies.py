"""Policies (the platform's and each tenant's quotas, pause and settings) and their cache.

A reserve reads policies from a per-process LRU cache and proves them current inside its
transaction (a condition on each policy's version); a cancellation returns the current item,
which refreshes the cache.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from costguard.errors import Paused
from costguard.ledger.core import LedgerCore
from costguard.periods import Period, period_key, zone
from costguard.quotas import (
    Policy,
    Resource,
)
from costguard.store.counters import PV
from costguard.store.items import policy_of
from costguard.store.keys import (
    PLATFORM_PK,
    POLICY_SK,
    Key,
    policy_replica_pk,
    split_slice,
    tenant_pk,
)
from costguard.store.writes import TransactionBuilder

PLATFORM_FRESH_SECONDS = 5.0
"""A platform quota write takes effect for every reserve within this (it is announced with
`effective_at`, D71): a single-item reserve trusts a platform policy read no longer ago."""
BOUNDARY_MARGIN = timedelta(minutes=5)
"""How far from a period boundary the adjacent period's counter is stamped too (clocks)."""


def stamped_keys(tenant_id: str, policy: Policy, now: datetime) -> list[Key]:
    """The tenant's counter items a reserve at about `now` may write alone (D71): each
    period's current one, and the adjacent period's within BOUNDARY_MARGIN of a boundary."""
    pk = tenant_pk(tenant_id)
    keys = {
        (pk, period_key(period, at, zone(policy.zone_at(at))))
        for period in Period
        for at in (now - BOUNDARY_MARGIN, now, now + BOUNDARY_MARGIN)
    }
    return sorted(keys)


def write_replicas(tx: TransactionBuilder, tenant_id: str, replicas: int, version: int) -> None:
    """Every replica of the tenant policy (D99) takes the `version` its policy write sets,
    in the same transaction (the policy item's own condition orders the writes)."""
    for index in range(1, replicas):
        w = tx.update((policy_replica_pk(tenant_id, index, replicas), POLICY_SK))
        w.sets.append(f"{w.name('version')} = {w.value(version)}")


def stamp_version(
    tx: TransactionBuilder, keys: list[Key], found: Mapping[Key, Any], version: int
) -> None:
    """Stamp `pv = version` on each existing counter of `keys`, in the transaction that
    writes the tenant policy's `version`; a counter read as absent is checked absent (one
    created meanwhile cancels the write, which is re-read and retried). An item the
    transaction already writes gets the stamp on that write (a Put or a check: left as is)."""
    writes = {w.key: w for w in tx.writes}
    for key in keys:
        w = writes.get(key)
        if w is None and key not in found:
            tx.check(key, "attribute_not_exists(pk)")
            continue
        if w is None:
            w = tx.update(key)
            w.condition("attribute_exists(pk)")
        if w.kind == "Update" and PV not in w.names.values():
            w.sets.append(f"{w.name(PV)} = {w.value(version)}")


class PolicyCache(LedgerCore):
    """Reads policies through the cache and checks them in transactions."""

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

    def policies(self, tenant_id: str, fresh: bool = False) -> tuple[Policy, Policy]:
        """(platform, tenant) policies, from the cache unless `fresh` or not cached."""
        keys = [(PLATFORM_PK, POLICY_SK), (tenant_pk(tenant_id), POLICY_SK)]
        cached = [None if fresh else self._cache_get(pk) for pk, _ in keys]
        missing = [k for k, c in zip(keys, cached, strict=True) if c is None]
        if missing:
            read_at = time.monotonic()
            found = self.table.batch_get(missing, consistent=True)
            for k in missing:
                self._cache_put(k[0], policy_of(found.get(k)))
            if keys[0] in missing:
                self._platform_read_at = read_at
        platform = self._cache_get(keys[0][0]) or Policy()
        tenant = self._cache_get(keys[1][0]) or Policy()
        return platform, tenant

    def _platform_announced(self) -> Policy:
        """The platform policy as read consistently less than PLATFORM_FRESH_SECONDS ago (by
        this process's monotonic clock; re-read when older): every platform quota write is in
        force for a reserve that decides on it, since writes are announced that far ahead (D71)."""
        if (
            time.monotonic() - self._platform_read_at > PLATFORM_FRESH_SECONDS
            or self._cache_get(PLATFORM_PK) is None
        ):
            read_at = time.monotonic()
            item = self.table.get((PLATFORM_PK, POLICY_SK), consistent=True)
            self._cache_put(PLATFORM_PK, policy_of(item))
            self._platform_read_at = read_at
        return self._cache_get(PLATFORM_PK) or Policy()

    def _platform_quiet(self, resource: Resource) -> bool:
        """True while the announced platform policy has no quota for `resource`: a reserve
        may then skip its policy check (D71)."""
        return not self._platform_announced().applicable(resource, None)

    def _platform_leased_only(self, resource: Resource) -> Policy | None:
        """The announced platform policy when every platform quota on `resource` is leased (at
        least one): a reserve on live leases may then skip its policy check (D94). None when a
        platform quota of `resource` is not leased, or none applies."""
        platform = self._platform_announced()
        quotas = platform.applicable(resource, None)
        return platform if quotas and all(q.leased for q in quotas) else None

    def _platform_skipped(self, platform: Policy, resource: Resource) -> bool:
        """A hot tenant's lane (D99) does not check the platform policy item, which every
        reserve on the platform would otherwise read, while no platform quota applies: the
        policy it spent on has none and one read consistently under PLATFORM_FRESH_SECONDS
        ago has none (platform quota writes are announced that far ahead, D71)."""
        return not platform.applicable(resource, None) and self._platform_quiet(resource)

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
            base, replica = split_slice(pk)
            if sk == POLICY_SK and replica:
                self.forget_policy(base)  # a replica (D99) says only that the version moved
                refreshed = True
            elif sk == POLICY_SK:
                self._cache_put(pk, policy_of(item))
                refreshed = True
        return refreshed

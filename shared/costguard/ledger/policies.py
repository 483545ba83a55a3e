"""Policies (the platform's and each tenant's quotas, pause and settings) and their cache.

A reserve reads policies from a per-process LRU cache and proves them current inside its
transaction (a condition on each policy's version); a cancellation returns the current item,
which refreshes the cache.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import costguard.ledger.leasing as leasing
import costguard.ledger.slicing as slicing
from costguard.errors import InvalidRequest, LedgerCorrupted, Paused
from costguard.ledger.core import LedgerCore
from costguard.quotas import (
    DEFAULT_THRESHOLDS,
    Mode,
    OnExpiry,
    OnOverrun,
    Policy,
    QuotaDefinition,
    QuotaId,
    stored_zone,
)
from costguard.store.keys import PLATFORM_PK, POLICY_SK, Key, tenant_pk
from costguard.store.writes import TransactionBuilder


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
                    **slicing.spec_fields(spec),
                    **leasing.spec_fields(spec),
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

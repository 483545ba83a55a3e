"""API keys: issued once, stored hashed, bound to one tenant (role `tenant`) or the operator.

Keys are 256-bit random secrets, so a single SHA-256 is enough to store them safely (there is
nothing to brute-force, unlike a password); comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from costguard.errors import NOT_FOUND, CostguardError
from costguard.quotas import validate_tenant_id
from costguard.store.dynamo import LedgerTable
from costguard.store.items import ApiKeyItem
from costguard.store.keys import API_KEY_SK, api_key_pk
from costguard.store.writes import ItemWrite

KEY_PREFIX = "cg"
KEY_SK = API_KEY_SK


class KeyNotFound(CostguardError):
    code = "key_not_found"
    problem = NOT_FOUND


@dataclass(frozen=True)
class Principal:
    role: Literal["admin", "tenant"]
    tenant_id: str | None
    key_id: str

    def may_act_for(self, tenant_id: str) -> bool:
        return self.role == "admin" or self.tenant_id == tenant_id


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    api_key: str
    role: Literal["tenant"]
    tenant_id: str


def fingerprint(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class ApiKeys:
    """Issue, verify and revoke keys. Verified keys are cached briefly per process."""

    def __init__(
        self,
        table: LedgerTable,
        admin_key_fingerprints: frozenset[str],
        cache_seconds: float = 30.0,
    ) -> None:
        self._table = table
        self._admin = admin_key_fingerprints
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()

    def issue(self, tenant_id: str, created_at: datetime) -> IssuedKey:
        validate_tenant_id(tenant_id)
        key_id = secrets.token_hex(8)
        api_key = f"{KEY_PREFIX}.{key_id}.{secrets.token_urlsafe(32)}"
        stored = ApiKeyItem(key_id, tenant_id, fingerprint(api_key), created_at)
        write = ItemWrite(key=(api_key_pk(key_id), KEY_SK), kind="Put", item=stored.to_item())
        write.condition("attribute_not_exists(pk)")
        self._table.put(write)
        return IssuedKey(key_id, api_key, "tenant", tenant_id)

    def revoke(self, tenant_id: str, key_id: str) -> None:
        write = ItemWrite(key=(api_key_pk(key_id), KEY_SK))
        write.sets.append(f"{write.name('revoked')} = {write.value(True)}")
        write.condition(f"{write.name('tenant_id')} = {write.value(tenant_id)}")
        from botocore.exceptions import ClientError

        try:
            self._table.update(write)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise KeyNotFound(f"no key {key_id!r} for tenant {tenant_id!r}") from None
            raise
        with self._lock:
            self._cache.clear()

    def verify(self, api_key: str) -> Principal | None:
        """The principal a presented key stands for, or None for an unknown/revoked key."""
        print_ = fingerprint(api_key)
        if any(hmac.compare_digest(print_, admin) for admin in self._admin):
            return Principal("admin", None, "admin")
        parts = api_key.split(".")
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1].isalnum():
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(print_)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        item = self._table.get((api_key_pk(parts[1]), KEY_SK), consistent=False)
        key = None if item is None else ApiKeyItem.from_item(item)
        principal = None
        if key and not key.revoked and hmac.compare_digest(key.fingerprint, print_):
            principal = Principal("tenant", key.tenant_id, key.key_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[print_] = (now, principal)
        return principal

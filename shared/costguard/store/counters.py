"""The codec of counter items: a lazy, typed view over the map a counter read returns (D114).

A counter item (`PLATFORM`, `TENANT#<t>`, `TENANT#<t>#USER#<u>`, a slice `…#S<ii>` / `DAY#…`,
`WEEK#…`, `MONTH#…`) has attributes named by quota and slice (D80), so it has no fixed set of
fields:

- a quota's field group `q_<r>_` (r ∈ llm, sandbox, all): `limit` (a slice's or the pool's
  grant), `avail`, `held`, `spent` → `QuotaFields`;
- a tenant's lease of a leased platform quota, the group `l_<r>_` on the tenant's counter of
  the platform period (D78): the same four figures, and `until`, `epoch`, `at` (D94); on the
  pool (the platform counter) `l_<r>_moves` and `l_<r>_lessees` (D97) → `LeaseTerms`;
- its in-item holds `h_<ulid>` = {p: terms, x: expires_at, u: provider/model/tier} (D70, D72)
  counted by `hn` → `InItemHold`; the tenant policy version it was proven against, `pv` (D71);
  the request behind its last write, `last_request_id`; its listing in the `holds` index once
  it held an in-item hold (`gsi1pk = HELD#<t>`, `gsi1sk`, written by `costguard.ledger.in_item`).

`CounterItem` decodes only what it is asked for: a default reserve reads three figures of the
one item its `UpdateItem` returned (ALL_NEW), and a decode of every attribute there would cost
what the reserve is measured against (issue 22, D90). Plain slotted classes, no validation
library. A figure that is not a finite number, a hold, lease or stamp of the wrong type is
`LedgerCorrupted` where it is decoded, never a KeyError or TypeError downstream.

The stream's images (`costguard.alerts`) are read through the same view; `figures_changed`
screens a stream record's raw (DynamoDB JSON) images before anything is deserialized.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costguard.errors import LedgerCorrupted
from costguard.money import ZERO
from costguard.store.schema import HOLDS_PK, HOLDS_SK

LIMIT, AVAIL, HELD, SPENT = "limit", "avail", "held", "spent"
UNTIL, EPOCH, LEASED_AT, MOVES, LESSEES = "until", "epoch", "at", "moves", "lessees"
HOLD_ATTRIBUTE = "h_"
"""An in-item hold is the attribute `h_<ulid>` (D70)."""
HOLD_COUNT = "hn"
"""How many in-item holds the counter has (a reserve's condition keeps it ≤ MAX_HOLDS)."""
PV = "pv"
"""The tenant policy version stamped on the tenant's counter items (D71)."""
LAST_REQUEST = "last_request_id"
"""The API request behind the item's last write (the stream's alerts correlate by it)."""
RESOURCES = ("llm", "sandbox", "all")


def quota_prefix(resource: str) -> str:
    """The field group of a quota of `resource` on its counter: `q_llm_`."""
    return f"q_{resource}_"


def lease_prefix(quota_group: str) -> str:
    """A lease's field group on the tenant's counter item: `q_all_` → `l_all_` (D78)."""
    return "l" + quota_group[1:]


GROUPS = tuple(p for r in RESOURCES for p in (quota_prefix(r), lease_prefix(quota_prefix(r))))
"""Every field group a counter item may have: a quota's and a lease's of each resource."""


def _corrupted(item: Mapping[str, Any], what: str) -> LedgerCorrupted:
    return LedgerCorrupted(f"counter {item.get('pk')}/{item.get('sk')} has a malformed {what}")


def _count(item: Mapping[str, Any], attribute: str) -> int | None:
    value = item.get(attribute)
    if value is None:
        return None
    if not isinstance(value, Decimal) or not value.is_finite() or value != int(value):
        raise _corrupted(item, attribute)
    return int(value)


@dataclass(frozen=True, slots=True)
class QuotaFields:
    """One quota's figures on one counter item (a slice's, a pool's or a lease's group), or
    a quota's whole summed over its items (`costguard.ledger.slicing`, `…leasing`)."""

    limit: Decimal | None = None
    """The limit, or a slice's, the pool's or a lease's grant; None: not written yet (the
    quota's limit, or a slice's virtual grant, is what it is then)."""
    avail: Decimal | None = None
    """limit − spent − held, kept by the writes (None with `limit`)."""
    held: Decimal = ZERO
    spent: Decimal = ZERO

    @property
    def stored(self) -> bool:
        """Whether the group exists on the item (its `limit` was written)."""
        return self.limit is not None

    def limit_or(self, default: Decimal) -> Decimal:
        return default if self.limit is None else self.limit

    def avail_or(self, default: Decimal) -> Decimal:
        return default if self.avail is None else self.avail

    def to_item(self, prefix: str) -> dict[str, Decimal]:
        """The group's stored attributes (absent when None; `held` and `spent` when zero are
        kept: a write that ADDs them leaves a zero, and an item reads back as it was)."""
        out = {prefix + LIMIT: self.limit, prefix + AVAIL: self.avail}
        out |= {prefix + HELD: self.held, prefix + SPENT: self.spent}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """A lease's terms beside its figures (D78, D94): until when it lives and the quota's
    epoch it was granted under, when it was last renewed; on the pool, the count of moves
    through it (D97) and every tenant holding a lease of the period."""

    until: str | None = None
    """Fixed-width UTC time (`costguard.store.codec.iso`): compared as a string."""
    epoch: int | None = None
    at: str | None = None
    moves: int | None = None
    lessees: frozenset[str] = frozenset()

    def live(self, now: str, epoch: int) -> bool:
        """Granted under `epoch` and not expired at `now` (an `iso` time)."""
        return self.epoch == epoch and (self.until or "") > now

    def to_item(self, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {prefix + UNTIL: self.until, prefix + LEASED_AT: self.at}
        out |= {prefix + EPOCH: None if self.epoch is None else Decimal(self.epoch)}
        out |= {prefix + MOVES: None if self.moves is None else Decimal(self.moves)}
        out[prefix + LESSEES] = set(self.lessees) or None  # DynamoDB has no empty set
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class InItemHold:
    """A hold kept in its counter item (D70): `h_<ulid>` = {p, x, u}."""

    ulid: str
    """The attribute's suffix: the reservation's ULID (text, parsed by the ledger's ref)."""
    terms: str
    """The reservation id's part after its ULID (`p`, D91): the settlement's proof (D4)."""
    expires_at: str | None = None
    """`x`, a fixed-width UTC time compared as a string; None only on a damaged entry."""
    provider: str | None = None
    model: str | None = None
    tier: str | None = None

    @property
    def attribute(self) -> str:
        return HOLD_ATTRIBUTE + self.ulid

    @property
    def described(self) -> dict[str, str]:
        """What the hold was for (`u`): provider, model and tier where known."""
        found = {"provider": self.provider, "model": self.model, "tier": self.tier}
        return {k: v for k, v in found.items() if v is not None}

    def expired(self, now: str) -> bool:
        """Expired at or before `now` (an `iso` time)."""
        return (self.expires_at or "") <= now

    def to_value(self) -> dict[str, Any]:
        """The map stored as `h_<ulid>`."""
        return InItemHold.value(self.terms, self.expires_at, self.provider, self.model, self.tier)

    @staticmethod
    def value(
        terms: str,
        expires_at: str | None,
        provider: str | None = None,
        model: str | None = None,
        tier: str | None = None,
    ) -> dict[str, Any]:
        """The map stored as `h_<ulid>` (`u` only when something is known), built without an
        instance: a reserve writes one per call."""
        value: dict[str, Any] = {"p": terms}
        if expires_at is not None:
            value["x"] = expires_at
        u = {"provider": provider, "model": model, "tier": tier}
        if u := {k: v for k, v in u.items() if v is not None}:
            value["u"] = u
        return value

    @classmethod
    def from_value(cls, ulid: str, value: Any) -> InItemHold:
        """Decode `h_<ulid>`'s map; a ValueError when it is not one a reserve writes."""
        if not isinstance(value, Mapping):
            raise ValueError("a hold is a map")
        terms, expires, u = value.get("p"), value.get("x"), value.get("u") or {}
        if not isinstance(terms, str) or not isinstance(expires, str | None):
            raise ValueError("a hold's p and x are strings")
        if not isinstance(u, Mapping) or not all(
            isinstance(u.get(k), str | None) for k in ("provider", "model", "tier")
        ):
            raise ValueError("a hold's u is a map of strings")
        return cls(ulid, terms, expires, u.get("provider"), u.get("model"), u.get("tier"))


def quota_fields(
    item: Mapping[str, Any] | None, prefix: str, with_avail: bool = True
) -> QuotaFields:
    """`CounterItem(item).fields(prefix)` without the view: a reserve reads its figures so.
    Without `with_avail`, `avail` is neither read nor checked (None): the figures a quota
    shows (limit, spent, held) do not depend on it, and a broken `avail` does not hide them."""
    if item is None:
        return QuotaFields()
    g = item.get  # inlined, not a helper per figure: a reserve reads this on its path (D114)
    found = limit, avail, held, spent = (
        g(prefix + LIMIT),
        g(prefix + AVAIL) if with_avail else None,
        g(prefix + HELD),
        g(prefix + SPENT),
    )
    for value in found:
        if value is not None and (not isinstance(value, Decimal) or not value.is_finite()):
            raise _corrupted(item, f"figure of {prefix}*")
    return QuotaFields(
        limit, avail, ZERO if held is None else held, ZERO if spent is None else spent
    )


class CounterItem:
    """A counter item as the table returned it (None: no item), decoded field by field."""

    __slots__ = ("_item",)

    def __init__(self, item: Mapping[str, Any] | None) -> None:
        self._item: Mapping[str, Any] = item or {}

    @property
    def exists(self) -> bool:
        return bool(self._item)

    def fields(self, prefix: str) -> QuotaFields:
        """The field group `prefix` (`q_llm_`, `l_all_`): absent figures are None (`limit`,
        `avail`) or zero (`held`, `spent`)."""
        return quota_fields(self._item, prefix)

    def has(self, prefix: str) -> bool:
        """Whether the field group `prefix` exists (its `limit` was written); reads no figure."""
        return prefix + LIMIT in self._item

    def groups(self) -> dict[str, QuotaFields]:
        """Every field group the item has, by prefix."""
        return {p: self.fields(p) for p in GROUPS if self.has(p)}

    def lease(self, prefix: str) -> LeaseTerms:
        """The lease terms of the group `prefix` (`l_all_`): a lease's, or the pool's moves
        and lessees."""
        item = self._item
        until, at = item.get(prefix + UNTIL), item.get(prefix + LEASED_AT)
        lessees = item.get(prefix + LESSEES) or frozenset()
        if not isinstance(until, str | None) or not isinstance(at, str | None):
            raise _corrupted(item, prefix + UNTIL)
        if not isinstance(lessees, set | frozenset) or not all(isinstance(t, str) for t in lessees):
            raise _corrupted(item, prefix + LESSEES)
        return LeaseTerms(
            until,
            _count(item, prefix + EPOCH),
            at,
            _count(item, prefix + MOVES),
            frozenset(lessees),
        )

    def leases(self) -> dict[str, LeaseTerms]:
        """The lease terms of every lease group the item has, by prefix."""
        out = {}
        for r in RESOURCES:
            p = lease_prefix(quota_prefix(r))
            if any(p + name in self._item for name in (UNTIL, EPOCH, LEASED_AT, MOVES, LESSEES)):
                out[p] = self.lease(p)
        return out

    @property
    def pv(self) -> int | None:
        """The tenant policy version the counter was last proven against (D71)."""
        return _count(self._item, PV)

    @property
    def hold_count(self) -> int:
        """`hn`: the in-item holds the writes counted (0 when never written)."""
        return _count(self._item, HOLD_COUNT) or 0

    def hold(self, ulid: str) -> InItemHold | None:
        """The in-item hold of reservation `ulid`, if the counter has one."""
        value = self._item.get(HOLD_ATTRIBUTE + ulid)
        if value is None:
            return None
        try:
            return InItemHold.from_value(ulid, value)
        except ValueError as exc:
            raise _corrupted(self._item, HOLD_ATTRIBUTE + ulid) from exc

    def holds(self) -> Iterator[InItemHold]:
        """Every in-item hold the counter has that decodes; a damaged one is skipped here (its
        count, `hn`, no longer matches: reconcile() reports it) so that the others settle."""
        for name, value in self._item.items():
            if name.startswith(HOLD_ATTRIBUTE):
                try:
                    yield InItemHold.from_value(name.removeprefix(HOLD_ATTRIBUTE), value)
                except ValueError:
                    continue

    @property
    def listing(self) -> tuple[str, str] | None:
        """Its entry in the `holds` index (`gsi1pk`, `gsi1sk`) once it held an in-item hold."""
        pk, sk = self._item.get(HOLDS_PK), self._item.get(HOLDS_SK)
        if pk is None or sk is None:
            return None
        if not isinstance(pk, str) or not isinstance(sk, str):
            raise _corrupted(self._item, HOLDS_PK)
        return pk, sk

    @property
    def last_request_id(self) -> str | None:
        value = self._item.get(LAST_REQUEST)
        return None if value is None else str(value)

    @staticmethod
    def encode(
        groups: Mapping[str, QuotaFields] = {},
        leases: Mapping[str, LeaseTerms] = {},
        holds: Iterable[InItemHold] = (),
        pv: int | None = None,
        hold_count: int | None = None,
        last_request_id: str | None = None,
    ) -> dict[str, Any]:
        """The stored attributes of a counter made of these parts (the keys, the listing and
        a day item's rollup belong to the writes that set them). The ledger writes counters
        by relative updates, not puts: this is their reference form (tests, tools)."""
        out: dict[str, Any] = {}
        for prefix, group in groups.items():
            out |= group.to_item(prefix)
        for prefix, terms in leases.items():
            out |= terms.to_item(prefix)
        for held in holds:
            out[held.attribute] = held.to_value()
        if pv is not None:
            out[PV] = Decimal(pv)
        if hold_count is not None:
            out[HOLD_COUNT] = Decimal(hold_count)
        if last_request_id is not None:
            out[LAST_REQUEST] = last_request_id
        return out


def figures_changed(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether a counter's stream record changed the `spent` or `limit` of some quota or lease
    (the only way a utilization moves), read from its raw DynamoDB JSON images: the stream's
    screen before any image is deserialized (`costguard.alerts.may_alert`)."""
    return any(
        new.get(p + name) != old.get(p + name)
        for p in GROUPS
        if p + LIMIT in new
        for name in (SPENT, LIMIT)
    )

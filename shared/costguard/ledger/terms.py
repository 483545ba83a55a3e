"""Which counter fields a spend touches, and reservation ids that carry those terms (D91:
the part of an id after its ULID is its *terms*; "plan" is a tenant's plan)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from ulid import ULID

from costguard.errors import ReservationNotFound
from costguard.ledger.escrow import MAX_SLICES, slice_key
from costguard.money import parse_usd
from costguard.periods import Period, period_key, zone
from costguard.quotas import QuotaDefinition, QuotaId, Resource, Scope
from costguard.store.counters import lease_prefix, quota_prefix
from costguard.store.keys import Key, principal_pk, record_key, tenant_pk

LEASED = -1
"""The "slice" of a hold on a tenant's lease of a leased platform quota (terms letter `l`)."""

IN_ITEM_FLAG = "@"
"""Marks a reservation id whose hold lives in its counter item (D70)."""
LANE_FLAG = "!"
"""Marks a reservation id whose record is in the lane of its slices (D98, D110): an id made on a
sliced quota before lanes existed has none, and its record stays in lane 0."""


def field_prefix(resource: Resource) -> str:
    return quota_prefix(resource.value)


@dataclass(frozen=True)
class Slot:
    """One quota's field in one counter item of one period (of one slice, D74)."""

    scope: Scope
    period: Period
    resource: Resource
    base: Key
    """The counter item: slice 0's, the one an unsliced quota has."""
    slice: int = 0
    tz: str = "UTC"
    """The zone of the period's calendar: the tenant's for its and its users' quotas."""
    lessee: str | None = None
    """A leased platform quota's hold: on this tenant's lease (its counter item of the
    platform period, `l_` fields), not on the platform counter (D78)."""

    @property
    def key(self) -> Key:
        if self.lessee is not None:
            return tenant_pk(self.lessee), self.base[1]
        return slice_key(self.base, self.slice)

    @property
    def prefix(self) -> str:
        p = field_prefix(self.resource)
        return lease_prefix(p) if self.lessee is not None else p


def slot_for(
    quota: QuotaId, tenant_id: str, at: datetime, tz: str = "UTC", slice_: int = 0
) -> Slot:
    """The counter of `quota` at `at`: platform quotas count in UTC days, weeks and months,
    tenant and user quotas in the tenant's zone `tz`; `slice_` of a sliced quota."""
    return _slot(
        quota.scope, quota.period, quota.resource, tenant_id, quota.user_id, at, tz, slice_
    )


def _slot(
    scope: Scope,
    period: Period,
    resource: Resource,
    tenant_id: str,
    user_id: str | None,
    at: datetime,
    tz: str,
    slice_: int = 0,
) -> Slot:
    tz = "UTC" if scope is Scope.PLATFORM else tz
    pk = principal_pk(scope, tenant_id, user_id)
    return Slot(scope, period, resource, (pk, period_key(period, at, zone(tz))), slice_, tz)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


@dataclass(frozen=True)
class ReservationRef:
    """Everything a reservation id says: enough to settle it in one transaction."""

    ulid: ULID
    resource: Resource
    estimate_usd: Decimal
    holds: tuple[tuple[Scope, Period, Resource], ...]
    user_id: str | None
    tz: str = "UTC"
    """The tenant's zone when it was created: its tenant and user counters are that zone's
    periods (a sixth `~` part, absent for UTC; commit and release need no extra read)."""
    slices: tuple[int, ...] = ()
    """The slice of each hold (aligned with `holds`; empty: all on slice 0)."""
    in_item: bool = False
    """Held in its counter item's hold map, not by a record (D70, D72): `@` before the holds
    in the id. Its settlement takes the hold out of the counter and puts the record."""
    laned: bool = True
    """Its record is in the lane of its slices (`!` before the holds when that lane is not 0).
    False only for an id made on a sliced quota before lanes (D110): its record is in lane 0."""

    @cached_property
    def created_at(self) -> datetime:
        return self.ulid.datetime  # computed by the ULID on every read: 5 reads per commit

    def slice_of(self, index: int) -> int:
        return self.slices[index] if self.slices else 0

    @property
    def lane(self) -> int:
        """The lane of its record, `holds` index entry and day rollup (D98): the largest slice
        it holds of the tenant's (or its user's) sliced quotas; 0 when it holds none (every
        reservation of an unsliced tenant, so their keys never change) or was made before
        lanes (D110)."""
        return self._slice_lane if self.laned else 0

    @cached_property
    def _slice_lane(self) -> int:
        return max(
            (
                self.slice_of(i)
                for i, (scope, _, _) in enumerate(self.holds)
                if scope is not Scope.PLATFORM
            ),
            default=0,
        )

    def record_key(self, tenant_id: str) -> Key:
        """Its record's key: the ULID in its lane's records partition (D98)."""
        return record_key(tenant_id, str(self.ulid), self.lane)

    @cached_property
    def terms(self) -> str:
        """The part of the id after the ULID; stored on the record and checked on settle.

        Groups are counter items: `tm-la` (tenant month counter, fields llm and all), or with
        a slice `tm7-l` (slice 7 of it), or on the tenant's lease of a leased platform quota
        `pml-a`; an unsliced reservation's terms are what they always were."""
        by_counter: dict[tuple[Scope, Period, int], list[str]] = {}
        for i, (scope, period, resource) in enumerate(self.holds):
            by_counter.setdefault((scope, period, self.slice_of(i)), []).append(resource.letter)
        holds = ".".join(
            f"{s.letter}{p.letter}{_slice_text(n)}-{''.join(sorted(letters))}"
            for (s, p, n), letters in sorted(
                by_counter.items(), key=lambda kv: (kv[0][0].letter, kv[0][1].letter, kv[0][2])
            )
        )
        user = _b64(self.user_id) if self.user_id else ""
        flag = IN_ITEM_FLAG if self.in_item else LANE_FLAG if self.lane else ""
        terms = f"{self.resource.letter}~{self.estimate_usd}~{flag}{holds}~{user}"
        return terms if self.tz == "UTC" else f"{terms}~{_b64(self.tz)}"

    @cached_property
    def reservation_id(self) -> str:
        return f"{self.ulid}~{self.terms}"

    def slots(self, tenant_id: str) -> list[Slot]:
        at = self.created_at
        out = []
        for i, (scope, period, resource) in enumerate(self.holds):
            index = self.slice_of(i)
            if index == LEASED:
                s = _slot(scope, period, resource, tenant_id, None, at, self.tz)
                out.append(Slot(s.scope, s.period, s.resource, s.base, LEASED, s.tz, tenant_id))
            else:
                out.append(
                    _slot(scope, period, resource, tenant_id, self.user_id, at, self.tz, index)
                )
        return out

    @classmethod
    def build(
        cls,
        ulid: ULID,
        resource: Resource,
        estimate: Decimal,
        quotas: Iterable[QuotaDefinition],
        user_id: str | None,
        tz: str = "UTC",
        slices: dict[QuotaId, int] | None = None,
        in_item: bool = False,
    ) -> ReservationRef:
        """`slices`: the slice each sliced quota's hold takes (others: slice 0)."""
        chosen = {
            (q.quota_id.scope, q.quota_id.period, q.quota_id.resource): (slices or {}).get(
                q.quota_id, 0
            )
            for q in quotas
        }
        holds = tuple(sorted(chosen, key=lambda h: (h[0].letter, h[1].letter, h[2].letter)))
        taken = tuple(chosen[h] for h in holds)
        return cls(
            ulid, resource, estimate, holds, user_id, tz, taken if any(taken) else (), in_item
        )

    @classmethod
    def parse(cls, reservation_id: str) -> ReservationRef:
        """Decode an id; anything malformed is simply an unknown reservation."""
        try:
            ulid_text, resource, estimate, holds_text, user, *rest = reservation_id.split("~")
            if len(rest) > 1:
                raise ValueError("too many parts")
            tz = _unb64(rest[0]) if rest else "UTC"
            zone(tz)
            ulid = ULID.from_str(ulid_text)
            in_item = holds_text.startswith(IN_ITEM_FLAG)
            holds_text = holds_text.removeprefix(IN_ITEM_FLAG)
            laned = holds_text.startswith(LANE_FLAG)
            holds_text = holds_text.removeprefix(LANE_FLAG)
            holds: list[tuple[Scope, Period, Resource]] = []
            slices: list[int] = []
            for group in filter(None, holds_text.split(".")):
                head, letters = group.split("-")
                scope = _SCOPES[head[0]]
                period = Period.from_letter(head[1])
                index = _parse_slice(head[2:], scope)
                holds.extend((scope, period, Resource.from_letter(x)) for x in letters)
                slices.extend(index for _ in letters)
            if len(holds) > 1:
                order = sorted(range(len(holds)), key=lambda i: tuple(x.letter for x in holds[i]))
                holds = [holds[i] for i in order]
                slices = [slices[i] for i in order]
            user_id = _unb64(user) if user else None
            ref = cls(
                ulid,
                Resource.from_letter(resource),
                parse_usd(estimate),
                tuple(holds),
                user_id,
                tz,
                tuple(slices) if any(slices) else (),
                in_item,
            )
            # An id with slices but no `^` was made before lanes: its record is in lane 0.
            ref = replace(ref, laned=laned) if ref._slice_lane else ref
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise ReservationNotFound("unknown reservation") from exc
        if ref.reservation_id != reservation_id or ref.estimate_usd < 0:
            raise ReservationNotFound("unknown reservation")
        if any(s is Scope.USER for s, _, _ in ref.holds) and not user_id:
            raise ReservationNotFound("unknown reservation")
        if ref.in_item and (
            ref.slices
            or len({(s, p) for s, p, _ in ref.holds}) != 1
            or ref.holds[0][0] is not Scope.TENANT
        ):
            raise ReservationNotFound("unknown reservation")  # one tenant counter, or none
        return ref


_SCOPES = {"p": Scope.PLATFORM, "t": Scope.TENANT, "u": Scope.USER}


def _slice_text(index: int) -> str:
    return "l" if index == LEASED else str(index or "")


def _parse_slice(text: str, scope: Scope) -> int:
    if text == "l":
        if scope is not Scope.PLATFORM:
            raise ValueError("only platform quotas are leased")
        return LEASED
    index = int(text) if text else 0
    if not 0 <= index < MAX_SLICES:
        raise ValueError("slice out of range")
    return index

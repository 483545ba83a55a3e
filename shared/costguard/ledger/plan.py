"""Which counter fields a spend touches, and reservation ids that carry that plan."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from ulid import ULID

from costguard.errors import ReservationNotFound
from costguard.money import parse_usd
from costguard.periods import Period, period_key
from costguard.quotas import QuotaDefinition, QuotaId, Resource, Scope
from costguard.store.keys import Key, principal_pk


def field_prefix(resource: Resource) -> str:
    return f"q_{resource.value}_"


@dataclass(frozen=True)
class Slot:
    """One quota's field in one counter item of one period."""

    scope: Scope
    period: Period
    resource: Resource
    key: Key

    @property
    def prefix(self) -> str:
        return field_prefix(self.resource)


def slot_for(quota: QuotaId, tenant_id: str, at: datetime) -> Slot:
    pk = principal_pk(quota.scope, tenant_id, quota.user_id)
    return Slot(quota.scope, quota.period, quota.resource, (pk, period_key(quota.period, at)))


@dataclass(frozen=True)
class ReservationRef:
    """Everything a reservation id says: enough to settle it in one transaction."""

    ulid: ULID
    resource: Resource
    estimate_usd: Decimal
    holds: tuple[tuple[Scope, Period, Resource], ...]
    user_id: str | None

    @property
    def created_at(self) -> datetime:
        return self.ulid.datetime

    @cached_property
    def plan(self) -> str:
        """The part of the id after the ULID; stored on the record and checked on settle."""
        by_counter: dict[tuple[Scope, Period], list[str]] = {}
        for scope, period, resource in self.holds:
            by_counter.setdefault((scope, period), []).append(resource.letter)
        holds = ".".join(
            f"{s.letter}{p.letter}-{''.join(sorted(letters))}"
            for (s, p), letters in sorted(
                by_counter.items(), key=lambda kv: (kv[0][0].letter, kv[0][1].letter)
            )
        )
        user = (
            base64.urlsafe_b64encode(self.user_id.encode()).decode().rstrip("=")
            if self.user_id
            else ""
        )
        return f"{self.resource.letter}~{self.estimate_usd}~{holds}~{user}"

    @cached_property
    def reservation_id(self) -> str:
        return f"{self.ulid}~{self.plan}"

    def slots(self, tenant_id: str) -> list[Slot]:
        at = self.created_at
        return [
            Slot(
                scope,
                period,
                resource,
                (principal_pk(scope, tenant_id, self.user_id), period_key(period, at)),
            )
            for scope, period, resource in self.holds
        ]

    @classmethod
    def build(
        cls,
        ulid: ULID,
        resource: Resource,
        estimate: Decimal,
        quotas: Iterable[QuotaDefinition],
        user_id: str | None,
    ) -> ReservationRef:
        holds = tuple(
            sorted(
                {(q.quota_id.scope, q.quota_id.period, q.quota_id.resource) for q in quotas},
                key=lambda h: (h[0].letter, h[1].letter, h[2].letter),
            )
        )
        return cls(ulid, resource, estimate, holds, user_id)

    @classmethod
    def parse(cls, reservation_id: str) -> ReservationRef:
        """Decode an id; anything malformed is simply an unknown reservation."""
        try:
            ulid_text, resource, estimate, holds_text, user = reservation_id.split("~")
            ulid = ULID.from_str(ulid_text)
            holds: list[tuple[Scope, Period, Resource]] = []
            for group in filter(None, holds_text.split(".")):
                head, letters = group.split("-")
                scope = {"p": Scope.PLATFORM, "t": Scope.TENANT, "u": Scope.USER}[head[0]]
                period = Period.from_letter(head[1])
                holds.extend((scope, period, Resource.from_letter(x)) for x in letters)
            user_id = (
                base64.urlsafe_b64decode(user + "=" * (-len(user) % 4)).decode() if user else None
            )
            ref = cls(
                ulid, Resource.from_letter(resource), parse_usd(estimate), tuple(holds), user_id
            )
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise ReservationNotFound("unknown reservation") from exc
        if ref.reservation_id != reservation_id or ref.estimate_usd < 0:
            raise ReservationNotFound("unknown reservation")
        if any(s is Scope.USER for s, _, _ in ref.holds) and not user_id:
            raise ReservationNotFound("unknown reservation")
        return ref

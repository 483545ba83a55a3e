"""A stateful property test of the ledger on moto, checked against a model of our own.

Hypothesis runs random sequences of reserve, commit, release, retries, clock moves across
day/week/month boundaries, the sweeper, limit changes and direct records, and after every
step compares the ledger with the model: counters, current-period figures, records, holds and
day rollups, plus the ledger's own reconcile().
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
from costguard.errors import QuotaExceeded, ReservationNotHeld
from costguard.ledger import Ledger, LedgerTable
from costguard.ledger.plan import records_pk, slot_for
from costguard.ledger.schema import HOLDS_PK, create_table
from costguard.models import Usage
from costguard.periods import Period, period_key
from costguard.quotas import Mode, QuotaDefinition, Resource, Scope
from costguard.settings import Settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
)
from moto import mock_aws

from tests.conftest import Clock
from tests.helpers import quota, usd

T = "acme"
TABLE = "costguard-props"
START = datetime(2026, 11, 30, 23, 58, tzinfo=UTC)  # a Monday, 2 minutes before December
ZERO = Decimal(0)

# quota id → (limit, mode, grace %); small limits so that refusals are frequent
QUOTAS: dict[str, tuple[str, Mode, str]] = {
    "platform:all:month": ("20", Mode.HARD, "0"),
    "tenant:all:month": ("15", Mode.HARD, "0"),
    "tenant:llm:day": ("8", Mode.HARD, "0"),
    "tenant:sandbox:week": ("5", Mode.SOFT, "10"),
    "user:u-1:llm:day": ("3", Mode.HARD, "0"),
    "user:u-2:all:week": ("4", Mode.HARD, "0"),
}

USERS = st.sampled_from(["u-1", "u-2", "u-3", None])
RESOURCES = st.sampled_from(["llm", "sandbox"])
# "3", "0.5", "2.500000", "0.000001": decimal strings with up to 6 decimals
AMOUNTS = st.builds(
    lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
    st.integers(0, 12),
    st.text("0123456789", max_size=6),
)
LIMITS = st.sampled_from(["0", "0.5", "1", "2.25", "3", "4.000001", "6", "8", "12", "20", "25"])
TTLS = st.one_of(st.sampled_from([1, 30, 60, 120, 900, 3600, 86_400]), st.integers(1, 86_400))
SECONDS = st.one_of(st.integers(1, 90), st.integers(91, 7_200), st.integers(7_201, 4 * 86_400))

CounterId = tuple[str, str]  # (quota id, period key)


@dataclass
class Counter:
    """The model of one quota's figures in one period."""

    key: tuple[str, str]
    prefix: str
    limit: Decimal
    spent: Decimal = ZERO
    held: Decimal = ZERO
    slack: Decimal = ZERO
    """How far over its ceiling an honest ledger may be: overruns, lowered limits, unenforced."""


@dataclass
class Res:
    """The model of one reservation, in the status its record has in the table."""

    rid: str
    user: str | None
    resource: str
    estimate: Decimal
    created: datetime
    expires: datetime
    counters: list[CounterId]
    status: str = "held"
    cost: Decimal | None = None
    commit_body: str | None = None
    record_id: str | None = None

    @property
    def ulid(self) -> str:
        return self.rid.split("~", 1)[0]


def ceiling(q: QuotaDefinition, limit: Decimal) -> Decimal | None:
    """The most spent + held may reach through admitted spends; None if never refused."""
    if q.mode is Mode.HARD:
        return limit
    if q.grace_pct > 0:
        return limit + limit * q.grace_pct / 100
    return None


class LedgerMachine(RuleBasedStateMachine):
    reservations = Bundle("reservations")
    settled = Bundle("settled")

    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        s = Settings(table_name=TABLE)
        self.clock = Clock(START)
        self.ledger = Ledger(LedgerTable(client, TABLE, s), s, clock=self.clock)
        self.ledger.create_tenant(T, "Acme")
        self.quotas: dict[str, QuotaDefinition] = {}
        for text, (limit, mode, grace) in QUOTAS.items():
            q = quota(text, limit, mode, grace)
            self.ledger.put_quota(None if q.quota_id.scope is Scope.PLATFORM else T, q)
            self.quotas[text] = q
        self.counters: dict[CounterId, Counter] = {}
        self.res: dict[str, Res] = {}
        self.recorded: dict[str, Decimal] = {}  # direct records: record id → cost
        self.rollups: dict[str, tuple[Decimal, int]] = {}  # DAY#… → (usd_all, calls)

    def teardown(self) -> None:
        self.mock.stop()

    # ------------------------------------------------------------------ model helpers
    def applicable(self, resource: str, user: str | None) -> list[QuotaDefinition]:
        return [
            q
            for q in self.quotas.values()
            if q.quota_id.resource in (Resource(resource), Resource.ALL)
            and (q.quota_id.scope is not Scope.USER or q.quota_id.user_id == user)
        ]

    @staticmethod
    def cid(q: QuotaDefinition, at: datetime) -> CounterId:
        return str(q.quota_id), period_key(q.quota_id.period, at)

    def counter(self, q: QuotaDefinition, at: datetime) -> Counter:
        cid = self.cid(q, at)
        if cid not in self.counters:
            slot = slot_for(q.quota_id, T, at)
            self.counters[cid] = Counter(slot.key, slot.prefix, q.limit_usd)
        return self.counters[cid]

    def figures(self, q: QuotaDefinition, at: datetime) -> tuple[Decimal, Decimal, Decimal]:
        c = self.counters.get(self.cid(q, at))
        return (c.limit, c.spent, c.held) if c else (q.limit_usd, ZERO, ZERO)

    def settle_hold(self, r: Res, status: str) -> None:
        assert r.status == "held"
        r.status = status
        for cid in r.counters:
            self.counters[cid].held -= r.estimate

    def roll_up(self, at: datetime, cost: Decimal) -> None:
        day = period_key(Period.DAY, at)
        total, calls = self.rollups.get(day, (ZERO, 0))
        self.rollups[day] = (total + cost, calls + 1)

    def sync_lazy_expiry(self) -> None:
        """A refused attempt inside reserve/record may expire due holds: read which it did."""
        due = [r for r in self.res.values() if r.status == "held" and r.expires <= self.clock.at]
        if not due:
            return
        items = self.ledger.table.query_all("pk = :p", {":p": records_pk(T)}, consistent=True)
        status = {i["sk"]: i["status"] for i in items}
        for r in due:
            assert status[r.ulid] in ("held", "expired"), (r.rid, status[r.ulid])
            if status[r.ulid] == "expired":
                self.settle_hold(r, "expired")

    def assert_refusal_justified(
        self, refused: QuotaExceeded, quotas: list[QuotaDefinition], amount: Decimal
    ) -> None:
        now = self.clock.at
        b = refused.binding
        assert refused.requested_usd == amount
        [q] = [q for q in quotas if str(q.quota_id) == b.quota_id]  # an applicable quota
        threshold = q.denial_threshold(amount)
        assert threshold is not None, f"{b.quota_id} never refuses"
        limit, spent, held = self.figures(q, now)
        assert (b.limit_usd, b.spent_usd, b.held_usd) == (limit, spent, held)
        cid = self.cid(q, now)
        live = sum(
            (
                r.estimate
                for r in self.res.values()
                if r.status == "held" and cid in r.counters and r.expires > now
            ),
            ZERO,
        )
        assert limit - spent - live < threshold, (
            f"{b.quota_id} refused {amount} with spent {spent}, live holds {live} "
            f"(held {held} counts expired holds) under limit {limit}"
        )

    # ------------------------------------------------------------------ rules
    @rule(target=reservations, user=USERS, resource=RESOURCES, amount=AMOUNTS, ttl=TTLS)
    def reserve(self, user: str | None, resource: str, amount: str, ttl: int) -> object:
        now = self.clock.at
        quotas = self.applicable(resource, user)
        e = usd(amount)
        usage = Usage(resource=resource, estimated_cost_usd=amount, user_id=user)  # type: ignore[arg-type]
        try:
            r = self.ledger.reserve(T, usage, ttl_seconds=ttl)
        except QuotaExceeded as refused:
            self.sync_lazy_expiry()
            self.assert_refusal_justified(refused, quotas, e)
            return multiple()
        self.sync_lazy_expiry()
        assert (r.reserved_usd, r.created_at, r.expires_at) == (
            e,
            now,
            now + timedelta(seconds=ttl),
        )
        assert r.user_id == user
        cids = []
        for q in quotas:
            self.counter(q, now).held += e
            cids.append(self.cid(q, now))
        self.res[r.reservation_id] = Res(
            r.reservation_id, user, resource, e, now, r.expires_at, cids
        )
        # Admitted: right after it, no quota that could refuse it is beyond its ceiling,
        # read from the ledger's own figures.
        figures = {s.quota_id: s for s in (*self.ledger.quotas(T), *self.ledger.quotas(None))}
        for q in quotas:
            s = figures[str(q.quota_id)]
            top = ceiling(q, s.limit_usd)
            if top is not None:
                assert s.spent_usd + s.reserved_usd <= top, (s.quota_id, s)
        return r.reservation_id

    @rule(target=settled, rid=reservations, amount=AMOUNTS)
    def commit(self, rid: str, amount: str) -> object:
        r = self.res[rid]
        now = self.clock.at
        cost = usd(amount)
        usage = Usage(resource=r.resource, cost_usd=amount, user_id=r.user)  # type: ignore[arg-type]
        try:
            record = self.ledger.commit(T, rid, usage)
        except ReservationNotHeld as refused:
            if r.status == "held":
                assert r.expires <= now, f"a live reservation was refused: {refused.status}"
                assert refused.status == "expired"
                self.settle_hold(r, "expired")
            elif r.status == "committed":
                assert r.commit_body != amount
            else:
                assert refused.status == r.status
            return multiple()
        if r.status == "committed":  # a replay of the same body returns the first record
            assert r.commit_body == amount
            assert (record.record_id, record.cost_usd) == (r.record_id, r.cost)
            return rid
        assert r.status == "held" and r.expires > now, (r.status, r.expires, now)
        assert (record.status, record.cost_usd, record.estimated_usd) == (
            "committed",
            cost,
            r.estimate,
        )
        assert record.overrun == (cost > r.estimate)
        assert record.reservation_id == rid and record.record_id == r.ulid
        self.settle_hold(r, "committed")
        for cid in r.counters:
            c = self.counters[cid]
            c.spent += cost
            c.slack += max(ZERO, cost - r.estimate)
        r.cost, r.commit_body, r.record_id = cost, amount, record.record_id
        self.roll_up(r.created, cost)
        return rid

    @rule(target=settled, rid=reservations)
    def release(self, rid: str) -> object:
        r = self.res[rid]
        try:
            result = self.ledger.release(T, rid)
        except ReservationNotHeld as refused:
            assert r.status == "committed" and refused.status == "committed"
            return multiple()
        if r.status == "held":
            assert (result.status, result.released_usd) == ("released", r.estimate)
            self.settle_hold(r, "released")
        else:
            assert (result.status, result.released_usd) == (r.status, 0), r.status
        return rid

    @rule(rid=settled)
    def retry(self, rid: str) -> None:
        """The same commit or release again: the same answer, counted once."""
        r = self.res[rid]
        if r.status == "committed":
            assert r.commit_body is not None
            usage = Usage(resource=r.resource, cost_usd=r.commit_body, user_id=r.user)  # type: ignore[arg-type]
            record = self.ledger.commit(T, rid, usage)
            assert (record.record_id, record.status, record.cost_usd) == (
                r.record_id,
                "committed",
                r.cost,
            )
        else:
            assert r.status in ("released", "expired"), r.status
            result = self.ledger.release(T, rid)
            assert (result.status, result.released_usd) == (r.status, 0)

    @rule(seconds=SECONDS)
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    @rule(rid=reservations)
    def advance_to_expiry(self, rid: str) -> None:
        """Land exactly on a reservation's expiry: the boundary where it stops being live."""
        r = self.res[rid]
        if r.expires > self.clock.at:
            self.clock.at = r.expires

    @rule()
    def sweep(self) -> None:
        now = self.clock.at
        due = [r for r in self.res.values() if r.status == "held" and r.expires <= now]
        returned = self.ledger.expire_due()
        assert returned == len(due), f"swept {returned} of {len(due)} due holds at {now}"
        for r in due:
            self.settle_hold(r, "expired")

    @rule(quota_id=st.sampled_from(sorted(QUOTAS)), limit=LIMITS)
    def change_limit(self, quota_id: str, limit: str) -> None:
        now = self.clock.at
        old = self.quotas[quota_id]
        new = replace(old, limit_usd=usd(limit))
        state = self.ledger.put_quota(None if quota_id.startswith("platform:") else T, new)
        self.quotas[quota_id] = new
        c = self.counters.get(self.cid(new, now))
        if c is not None:
            before, after = ceiling(old, c.limit), ceiling(new, new.limit_usd)
            if before is not None and after is not None:
                c.slack += max(ZERO, before - after)
            c.limit = new.limit_usd
        assert (state.limit_usd, state.spent_usd, state.reserved_usd) == self.figures(new, now)

    @rule(user=USERS, resource=RESOURCES, amount=AMOUNTS, enforce=st.booleans())
    def record(self, user: str | None, resource: str, amount: str, enforce: bool) -> None:
        now = self.clock.at
        quotas = self.applicable(resource, user)
        cost = usd(amount)
        usage = Usage(resource=resource, cost_usd=amount, user_id=user)  # type: ignore[arg-type]
        try:
            rec = self.ledger.record_usage(T, usage, enforce=enforce)
        except QuotaExceeded as refused:
            assert enforce
            self.sync_lazy_expiry()
            self.assert_refusal_justified(refused, quotas, cost)
            return
        self.sync_lazy_expiry()
        assert (rec.status, rec.cost_usd) == ("recorded", cost)
        for q in quotas:
            c = self.counter(q, now)
            c.spent += cost
            top = ceiling(q, c.limit)
            if top is None:
                continue
            if enforce:
                assert c.spent + c.held <= top, (str(q.quota_id), c)
            else:
                c.slack += cost
        self.recorded[rec.record_id] = cost
        self.roll_up(now, cost)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def the_ledger_reconciles(self) -> None:
        assert self.ledger.reconcile(T) == []

    @invariant()
    def every_counter_matches_the_model(self) -> None:
        """In every period touched: limit, spent, held and avail as the model says."""
        if not self.counters:
            return
        items = self.ledger.table.batch_get(sorted({c.key for c in self.counters.values()}))
        for cid, c in self.counters.items():
            p, item = c.prefix, items.get(c.key, {})
            got = (item.get(p + "limit"), item.get(p + "spent", ZERO), item.get(p + "held", ZERO))
            assert got == (c.limit, c.spent, c.held), (cid, got, c)
            assert item.get(p + "avail") == c.limit - c.spent - c.held, (cid, item)
            assert c.held >= 0, (cid, c)
            top = ceiling(self.quotas[cid[0]], c.limit)
            if top is not None:
                assert c.spent + c.held <= top + c.slack, (cid, c)

    @invariant()
    def current_figures_match_the_model(self) -> None:
        now = self.clock.at
        for s in (*self.ledger.quotas(T), *self.ledger.quotas(None)):
            q = self.quotas[s.quota_id]
            assert s.period_key == self.cid(q, now)[1]
            assert (s.limit_usd, s.spent_usd, s.reserved_usd) == self.figures(q, now), s

    @invariant()
    def records_and_holds_match_the_model(self) -> None:
        """Every reservation in the status the model says; live ones still hold (and only
        held records sit in the holds index); direct records as recorded."""
        items = self.ledger.table.query_all("pk = :p", {":p": records_pk(T)}, consistent=True)
        got = {i["sk"]: (i["status"], i.get("cost_usd"), HOLDS_PK in i) for i in items}
        want = {r.ulid: (r.status, r.cost, r.status == "held") for r in self.res.values()}
        want |= {rid: ("recorded", cost, False) for rid, cost in self.recorded.items()}
        assert got == want

    @invariant()
    def day_rollups_match_the_model(self) -> None:
        items = self.ledger.daily_rollups(T, START, self.clock.at + timedelta(days=1))
        got = {i["sk"]: (i["usd_all"], i["calls"]) for i in items if "calls" in i}
        assert got == self.rollups


LedgerMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerStateMachine = LedgerMachine.TestCase


"""No money escapes — a stateful property test of settlement on moto.

Hypothesis runs random sequences of guarded LLM calls through the ledger, each ending the way
calls end in production: a commit of the real usage (sometimes above the hold), a commit whose
answer was lost and is retried, a stream cut or a provider error after the request was sent
(`usage_unknown`), a release when the call surely never started, an expiry under either
`on_expiry` setting (and a late commit after it), with `overrun` switching between `record` and
`reject`. The model prices every call itself, from the catalog's published rates (not through
the price book), and after every step:

- the ledger's spend equals the cost of every call that may have run: its list price when its
  usage is known (the hold when an overrun was rejected), its worst case (the hold) when it is
  not, nothing when it surely never ran;
- admitted spend stays within the limit but for overruns: spent + held ≤ limit + Σ overruns
  (+ late usage recorded after a released expiry);
- reconcile() finds the counters equal to the records.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from importlib import resources

import boto3
import pytest
from costguard.errors import OverrunRejected, QuotaExceeded, ReservationNotHeld
from costguard.ledger import Ledger, LedgerTable
from costguard.models import TenantSettings, Usage
from costguard.settings import Settings
from costguard.store.schema import create_table
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from moto import mock_aws

from tests.conftest import Clock
from tests.helpers import quota_state, set_quota

T = "acme"
Q = "tenant:llm:month"
TABLE = "costguard-settle"
LIMIT = Decimal("0.50")
START = datetime(2027, 1, 12, 12, 0, tzinfo=UTC)  # after every catalog price takes effect
ZERO = Decimal(0)
MICRO = Decimal("0.000001")


def _rates() -> tuple[Decimal, Decimal, int]:
    """gpt-4o's input and output rates per million and its output cap, from the catalog file."""
    text = resources.files("costguard.pricing").joinpath("catalog.json").read_text("utf-8")
    (entry,) = (
        m for m in json.loads(text)["models"] if (m["provider"], m["model"]) == ("openai", "gpt-4o")
    )
    standard = entry["rates"]["standard"]
    return Decimal(standard["input"]), Decimal(standard["output"]), int(entry["max_output_tokens"])


IN_RATE, OUT_RATE, MAX_OUT = _rates()


def list_price(input_tokens: int, output_tokens: int) -> Decimal:
    return (input_tokens * IN_RATE + output_tokens * OUT_RATE) / 1_000_000


def call(input_tokens: int, output_tokens: int | None) -> Usage:
    return Usage(
        resource="llm",
        provider="openai",
        model="gpt-4o",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


@dataclass
class Call:
    rid: str
    input_tokens: int
    cap: int
    hold: Decimal
    expires: datetime
    status: str = "held"


class SettlementMachine(RuleBasedStateMachine):
    """Reserves take the single-item path while the counter's hold map has room (D70), the
    transaction beyond: both kinds of hold live side by side."""

    calls = Bundle("calls")
    single_item_reserve = True

    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        s = Settings(table_name=TABLE, single_item_reserve=self.single_item_reserve)
        self.clock = Clock(START)
        self.ledger = Ledger(LedgerTable(client, TABLE, s), s, clock=self.clock)
        self.ledger.create_tenant(T, "Acme")
        set_quota(self.ledger, T, Q, str(LIMIT))
        self.settings = TenantSettings()
        self.charged = ZERO  # what every call that may have run cost, by the model
        self.overruns = ZERO  # spend admitted past the holds
        self.live: dict[str, Call] = {}

    def teardown(self) -> None:
        self.mock.stop()

    # ------------------------------------------------------------------ model helpers
    def held(self) -> Decimal:
        return sum((c.hold for c in self.live.values()), ZERO)

    def settle_expired(self) -> None:
        """What the ledger does to holds past their expiry, by the current setting."""
        for c in [c for c in self.live.values() if c.expires <= self.clock.at]:
            self.expired(c)

    def expired(self, c: Call) -> None:
        del self.live[c.rid]
        if self.settings.on_expiry == "charge":
            c.status = "expired-charged"
            self.charged += c.hold
        else:
            c.status = "expired-released"

    # ------------------------------------------------------------------ rules
    @rule(
        target=calls,
        input_tokens=st.integers(0, 20_000),
        cap=st.one_of(st.none(), st.integers(1, 4_000)),
        ttl=st.sampled_from([30, 60, 600]),
    )
    def reserve(self, input_tokens: int, cap: int | None, ttl: int) -> Call | None:
        out = MAX_OUT if cap is None else cap
        hold = list_price(input_tokens, out)
        try:
            r = self.ledger.reserve(T, call(input_tokens, cap), ttl_seconds=ttl)
        except QuotaExceeded:
            self.settle_expired()  # a refused reserve settles the tenant's expired holds
            assert self.charged + self.held() + hold > LIMIT
            return None
        if self.charged + self.held() + hold > LIMIT:
            # it fitted only after the refused first attempt settled the expired holds
            self.settle_expired()
        assert r.reserved_usd == hold
        assert self.charged + self.held() + hold <= LIMIT + self.overruns
        c = Call(r.reservation_id, input_tokens, out, hold, r.expires_at)
        self.live[c.rid] = c
        return c

    def _commit(self, c: Call | None, output_tokens: int, retries: int) -> None:
        if c is None:
            return
        cost = list_price(c.input_tokens, output_tokens)
        usage = call(c.input_tokens, output_tokens)
        outcomes = []
        for _ in range(1 + retries):  # a lost answer: the same commit again
            try:
                outcomes.append(self.ledger.commit(T, c.rid, usage).cost_usd)
            except OverrunRejected as rejected:
                outcomes.append(rejected.charged_usd)
            except ReservationNotHeld as late:
                assert c.status != "held" or c.expires <= self.clock.at
                if c.status == "held":
                    self.expired(c)
                assert late.status == "expired"
                # the client's part: usage the ledger did not charge is recorded, unenforced
                # (a recorded cost has at most 6 decimals: rounded up, as a client would)
                uncharged = (cost - (late.charged_usd or ZERO)).quantize(MICRO, ROUND_CEILING)
                if uncharged > 0:
                    self.ledger.record_usage(
                        T, Usage(resource="llm", cost_usd=uncharged), enforce=False
                    )
                    self.charged += uncharged
                    self.overruns += uncharged
                return
        assert c.status == "held" and c.expires > self.clock.at
        del self.live[c.rid]
        c.status = "committed"
        if cost > c.hold and self.settings.overrun == "reject":
            assert outcomes == [c.hold] * len(outcomes)
            self.charged += c.hold
        else:
            assert outcomes == [cost] * len(outcomes)
            self.charged += cost
            self.overruns += max(cost - c.hold, ZERO)

    @rule(c=consumes(calls), fraction=st.integers(0, 150), retries=st.integers(0, 2))
    def commit(self, c: Call | None, fraction: int, retries: int) -> None:
        """The call ran; its usage is known (above the cap now and then: an overrun)."""
        if c is not None:
            self._commit(c, c.cap * fraction // 100, retries)

    @rule(c=consumes(calls), retries=st.integers(0, 2))
    def usage_unknown(self, c: Call | None, retries: int) -> None:
        """A stream cut, a provider error after sending, a response without usage."""
        if c is None:
            return
        for _ in range(1 + retries):
            try:
                record = self.ledger.commit(T, c.rid, None)
            except ReservationNotHeld as late:
                assert late.status == "expired"
                if c.status == "held":
                    self.expired(c)
                return
            assert record.cost_usd == c.hold and record.usage_unknown
        del self.live[c.rid]
        c.status = "committed"
        self.charged += c.hold

    @rule(c=consumes(calls))
    def release(self, c: Call | None) -> None:
        """The call surely never started."""
        if c is None:
            return
        result = self.ledger.release(T, c.rid)
        if c.status == "held" and c.expires > self.clock.at:
            assert result.status == "released" and result.released_usd == c.hold
            del self.live[c.rid]
            c.status = "released"
        else:
            assert result.status == "expired" and result.released_usd == 0
            if c.status == "held":
                self.expired(c)

    @rule(seconds=st.sampled_from([10, 45, 120, 900]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    @rule()
    def sweeper(self) -> None:
        due = sum(1 for c in self.live.values() if c.expires <= self.clock.at)
        assert self.ledger.expire_due() == due
        self.settle_expired()

    @rule(
        overrun=st.sampled_from(["record", "reject"]),
        on_expiry=st.sampled_from(["charge", "release"]),
    )
    def change_settings(self, overrun: str, on_expiry: str) -> None:
        self.settings = TenantSettings(overrun=overrun, on_expiry=on_expiry)
        self.ledger.put_tenant_settings(T, self.settings)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def spend_is_what_may_have_run(self) -> None:
        q = quota_state(self.ledger, T, Q)
        assert q.spent_usd == self.charged
        assert q.reserved_usd == self.held()
        assert q.spent_usd + q.reserved_usd <= LIMIT + self.overruns

    @invariant()
    def counters_match_records(self) -> None:
        assert self.ledger.reconcile(T) == []


SettlementMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("SETTLEMENT_EXAMPLES", "25")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_no_money_escapes = pytest.mark.filterwarnings("ignore::UserWarning")(
    SettlementMachine.TestCase
)


class TransactionalSettlementMachine(SettlementMachine):
    """The same, every reserve a transaction with its record (the path before D70)."""

    single_item_reserve = False


TransactionalSettlementMachine.TestCase.settings = SettlementMachine.TestCase.settings
test_no_money_escapes_transactional = pytest.mark.filterwarnings("ignore::UserWarning")(
    TransactionalSettlementMachine.TestCase
)

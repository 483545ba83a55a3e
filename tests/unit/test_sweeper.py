"""The sweeper function returns expired holds (its event is the sample in events/)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from costguard.alerts import AlertBook, Outbox, Publisher
from costguard.ledger import Ledger

from functions.sweeper import handler as sweeper
from tests.conftest import Clock
from tests.helpers import estimate, quota_state, set_quota, usd

EVENT = json.loads((Path(__file__).parents[2] / "events/sweeper/scheduled.json").read_text())
CONTEXT = SimpleNamespace(
    function_name="sweeper",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:1:function:sweeper",
    aws_request_id="req-1",
)


def test_the_sweeper_returns_expired_holds(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    set_quota(ledger, "acme", "tenant:llm:month", "10")
    ledger.reserve("acme", estimate("4"), ttl_seconds=60)
    ledger.reserve("acme", estimate("1"), ttl_seconds=600)
    clock.advance(seconds=61)

    outbox = Outbox(AlertBook(ledger.table, clock), Publisher(None, None))
    answer = sweeper.handler(EVENT, CONTEXT, sweep=ledger, alerts=outbox)

    assert answer == {"returned": 1, "alerts_redelivered": 0, "alerts_failed": 0}
    assert quota_state(ledger, "acme", "tenant:llm:month").reserved_usd == usd("1")

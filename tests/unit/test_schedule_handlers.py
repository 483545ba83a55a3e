"""The anomaly and forecast functions run on their sample scheduled events (events/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from costguard.ledger import Ledger
from costguard.settings import get_settings

from functions.anomaly import handler as anomaly
from functions.forecast import handler as forecast
from tests.conftest import Clock
from tests.helpers import set_quota
from tests.unit.test_anomalies import TODAY, history

EVENTS = Path(__file__).parents[2] / "events"


def context(name: str, remaining_ms: int = 60_000) -> SimpleNamespace:
    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=1024,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:1:function:{name}",
        aws_request_id="req-1",
        get_remaining_time_in_millis=lambda: remaining_ms,
    )


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    monkeypatch.setenv("COSTGUARD_SCHEDULE_WORKERS", "1")  # moto is not safe across threads
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_both_schedules_run_on_their_sample_events(ledger: Ledger, clock: Clock) -> None:
    clock.at = datetime(2026, 10, 20, tzinfo=UTC)
    set_quota(ledger, "flat", "tenant:llm:month", "200")
    history(
        ledger, clock, "flat", date(2026, 10, 20), TODAY,
        lambda d: "60" if d == TODAY else "10",
    )  # fmt: skip
    clock.at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    event = json.loads((EVENTS / "anomaly/scheduled.json").read_text())
    answer = anomaly.handler(event, context("anomaly"), run=ledger)
    assert (answer["tenants"], answer["examined"], answer["recorded"]) == (1, 1, 1)
    event = json.loads((EVENTS / "forecast/scheduled.json").read_text())
    answer = forecast.handler(event, context("forecast"), run=ledger)
    # $300 spent (24 × 10 + 60) of $200: critical, recorded once
    assert (answer["tenants"], answer["findings"], answer["recorded"]) == (1, 1, 1)


def test_a_run_out_of_time_leaves_the_rest_for_the_next(ledger: Ledger, clock: Clock) -> None:
    for n in range(3):
        history(ledger, clock, f"t-{n}", TODAY - timedelta(days=1), TODAY, lambda d: "1")
    clock.at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    event = json.loads((EVENTS / "anomaly/scheduled.json").read_text())
    answer = anomaly.handler(event, context("anomaly", remaining_ms=5_000), run=ledger)
    assert (answer["tenants"], answer["examined"], answer["skipped"]) == (3, 0, 3)

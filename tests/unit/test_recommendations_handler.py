"""The weekly digest function runs on its sample scheduled event (events/recommendations/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from costguard.alerts import AlertBook, AlertType
from costguard.ledger import Ledger
from costguard.models import Usage

from functions.recommendations import handler as digests
from tests.conftest import Clock
from tests.unit.test_schedule_handlers import EVENTS, _environment, context

__all__ = ["_environment"]  # the schedules' environment (metrics namespace, one worker)


def test_the_digest_runs_on_its_sample_event_once_per_week(ledger: Ledger, clock: Clock) -> None:
    # Given a tenant whose gpu sandboxes ran an hour on Nov 28
    clock.at = datetime(2026, 11, 28, 10, tzinfo=UTC)
    usage = Usage(resource="sandbox", tier="gpu", seconds="3600")
    ledger.record_usage("sandy", usage, enforce=False)
    # When the Monday schedule fires, and fires again (a retry)
    clock.at = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    event = json.loads((EVENTS / "recommendations/scheduled.json").read_text())
    first = digests.handler(event, context("recommendations"), run=ledger)
    again = digests.handler(event, context("recommendations"), run=ledger)
    # Then one digest alert, recorded by the first run only
    assert (first["tenants"], first["examined"], first["recorded"]) == (1, 1, 1)
    assert (again["examined"], again["recorded"]) == (1, 0)
    [alert], _ = AlertBook(ledger.table, clock).recent("sandy", alert_type=AlertType.RECOMMENDATION)
    assert alert.title.startswith("sandy: 1 recommendation, $")

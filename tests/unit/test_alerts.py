"""Threshold alerts from the ledger's stream (moto): detection, exactly-once records, outbox.

The stream records are the ones moto wrote for the ledger's own writes, handed to the real
handler in Lambda's event shape (local.streams); SNS is moto's, read back through SQS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from costguard.alerts import AlertBook, Publisher, Rule, StreamAlerts, crossings
from costguard.ledger import Ledger
from costguard.notify import PublishFailed, SnsTopic
from costguard.quotas import QuotaId
from costguard.store.items import AlertItem

from functions.alerts import handler as alerts_handler
from local.streams import MotoStream
from tests.conftest import Clock
from tests.helpers import actual, estimate, set_quota

CONTEXT = SimpleNamespace(
    function_name="alerts",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:1:function:alerts",
    aws_request_id="req-1",
)


@dataclass
class Events:
    """An EventSink that remembers; `down` makes it refuse like an unreachable EventBridge."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        if self.down:
            raise PublishFailed("EventBridge put_events failed: EndpointConnectionError")
        self.sent.append((detail_type, dict(detail)))


@dataclass
class Sns:
    """moto's SNS topic with an SQS queue subscribed: what a subscriber receives."""

    topic: SnsTopic
    queue_url: str
    sqs: Any

    def received(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return messages
            for m in got["Messages"]:
                messages.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def sns(moto_client: object) -> Sns:
    client, sqs = boto3.client("sns"), boto3.client("sqs")
    arn = client.create_topic(Name="costguard-alerts")["TopicArn"]
    url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    client.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    return Sns(SnsTopic(client, arn), url, sqs)


@dataclass
class Pipeline:
    ledger: Ledger
    book: AlertBook
    watch: StreamAlerts
    stream: MotoStream
    events: Events
    sns: Sns
    answers: list[dict[str, Any]] = field(default_factory=list)

    def take(self) -> list[dict[str, Any]]:
        self.stream.drain()
        return self.stream.take()

    def run(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        answer: dict[str, Any] = alerts_handler.handler(
            {"Records": records}, CONTEXT, watch=self.watch
        )
        self.answers.append(answer)
        return answer

    def flush(self) -> list[dict[str, Any]]:
        """Deliver every stream record until quiet (alert INSERTs cause deliveries)."""
        seen = []
        while records := self.take():
            seen.extend(records)
            self.run(records)
        return seen

    def alerts(self, tenant: str | None = "acme") -> list[AlertItem]:
        return self.book.recent(tenant, limit=100)[0]


@pytest.fixture
def pipeline(ledger: Ledger, clock: Clock, sns: Sns, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "costguard")
    stream = MotoStream(ledger.table.name)
    events = Events()
    book = AlertBook(ledger.table, clock)
    watch = StreamAlerts(ledger.table, book, Publisher(sns.topic, events))
    stream.drain()
    stream.take()
    return Pipeline(ledger, book, watch, stream, events, sns)


def spend(ledger: Ledger, amount: str, **attribution: str) -> None:
    ledger.record_usage("acme", actual(amount, **attribution), enforce=False)


def test_a_jump_from_40_to_95_percent_records_three_thresholds_and_notifies_once(
    pipeline: Pipeline,
) -> None:
    # Given a $100 monthly LLM quota at 40 %
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "100")
    spend(pipeline.ledger, "40")
    pipeline.flush()
    assert pipeline.alerts() == []

    # When one cost takes it to 95 %
    spend(pipeline.ledger, "55")
    pipeline.flush()

    # Then 50, 80 and 90 are recorded, and one warning goes out (at 90 %, naming all three)
    alerts = pipeline.alerts()
    assert sorted(a.threshold_pct or 0 for a in alerts) == [50, 80, 90]
    leader = next(a for a in alerts if a.notify)
    assert leader.threshold_pct == 90
    assert leader.severity == "warning"
    assert leader.delivery == "sent"
    assert sorted(leader.grouped or []) == [50, 80, 90]
    assert {a.notified_in for a in alerts if not a.notify} == {leader.alert_id}
    messages = pipeline.sns.received()
    assert len(messages) == 1
    attributes = {k: v["Value"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes == {
        "tenant_id": "acme",
        "severity": "warning",
        "alert_type": "threshold",
        "event": "QuotaThresholdCrossed",
        "quota_id": "tenant:llm:month",
        "scope": "tenant",
    }
    body = json.loads(messages[0]["Message"])
    assert body["spent_usd"] == "95.000000"
    assert body["limit_usd"] == "100.000000"
    assert body["utilization"] == "0.9500"
    assert body["resets_at"] == "2026-12-01T00:00:00.000000Z"
    assert [t for t, _ in pipeline.events.sent] == ["QuotaThresholdCrossed"]
    assert pipeline.events.sent[0][1]["alert_id"] == leader.alert_id


def test_a_batch_replayed_three_times_notifies_once_per_crossing(pipeline: Pipeline) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    set_quota(pipeline.ledger, "acme", "tenant:all:month", "20")
    spend(pipeline.ledger, "6")  # llm 60 % (50), all 30 %
    spend(pipeline.ledger, "4.5")  # llm 105 % (80, 90, 100), all 52.5 % (50)
    batch = pipeline.take()

    for _ in range(3):
        pipeline.run(batch)
    pipeline.flush()  # the alert records' INSERTs: deliveries

    alerts = pipeline.alerts()
    by_quota = sorted((a.quota_id, a.threshold_pct) for a in alerts)
    assert by_quota == [
        ("tenant:all:month", 50),
        ("tenant:llm:month", 50),
        ("tenant:llm:month", 80),
        ("tenant:llm:month", 90),
        ("tenant:llm:month", 100),
    ]
    # one notification per crossing event: llm 50 (info), llm 100 (critical), all 50 (info)
    severities = sorted(
        (m["MessageAttributes"]["quota_id"]["Value"], m["MessageAttributes"]["severity"]["Value"])
        for m in pipeline.sns.received()
    )
    assert severities == [
        ("tenant:all:month", "info"),
        ("tenant:llm:month", "critical"),
        ("tenant:llm:month", "info"),
    ]
    assert len(pipeline.events.sent) == 3


def test_replaying_the_alert_inserts_delivers_nothing_twice(pipeline: Pipeline) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    spend(pipeline.ledger, "5")
    pipeline.run(pipeline.take())
    inserts = pipeline.take()

    for _ in range(3):
        pipeline.run(inserts)

    assert len(pipeline.sns.received()) == 1
    assert len(pipeline.events.sent) == 1


def test_a_poison_record_is_reported_and_the_rest_of_the_batch_processed(
    pipeline: Pipeline,
) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    spend(pipeline.ledger, "9")
    batch = pipeline.take()
    month = next(r for r in batch if r["dynamodb"]["Keys"]["sk"]["S"].startswith("MONTH#"))
    poison = json.loads(json.dumps(month))
    poison["dynamodb"]["SequenceNumber"] = "poison-1"
    poison["dynamodb"]["NewImage"]["q_llm_limit"] = {"S": "not a number"}

    answer = pipeline.run([poison, *batch])

    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    pipeline.flush()
    assert sorted(a.threshold_pct or 0 for a in pipeline.alerts()) == [50, 80, 90]
    assert len(pipeline.sns.received()) == 1


def test_a_lowered_limit_crosses_thresholds_too(pipeline: Pipeline) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "100")
    spend(pipeline.ledger, "45")
    pipeline.flush()

    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "50")  # 45 of 50 = 90 %
    pipeline.flush()

    assert sorted(a.threshold_pct or 0 for a in pipeline.alerts()) == [50, 80, 90]


def test_each_threshold_alerts_once_per_period_even_when_utilization_dips(
    pipeline: Pipeline, clock: Clock
) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    spend(pipeline.ledger, "6")
    pipeline.flush()
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "20")  # 30 %
    spend(pipeline.ledger, "5")  # 55 % again: 50 % was already alerted this month
    pipeline.flush()
    assert [a.threshold_pct for a in pipeline.alerts()] == [50]

    clock.advance(days=6)  # December: a new period alerts again
    spend(pipeline.ledger, "11")
    pipeline.flush()

    periods = sorted(str(a.period_key) for a in pipeline.alerts())
    assert periods == ["MONTH#2026-11", "MONTH#2026-12"]


def test_user_and_soft_quotas_alert_like_hard_tenant_quotas(pipeline: Pipeline) -> None:
    from costguard.quotas import Mode

    set_quota(pipeline.ledger, "acme", "user:u-1:all:day", "2", mode=Mode.SOFT)
    spend(pipeline.ledger, "2.5", user_id="u-1")
    pipeline.flush()

    (alert,) = [a for a in pipeline.alerts() if a.notify]
    assert alert.quota_id == "user:u-1:all:day"
    assert alert.severity == "critical"
    assert alert.details == {"mode": "soft", "scope": "user", "user_id": "u-1"}
    assert alert.resets_at == datetime(2026, 11, 26, tzinfo=UTC)
    (message,) = pipeline.sns.received()
    assert message["MessageAttributes"]["scope"]["Value"] == "user"


def test_platform_quota_alerts_carry_no_tenant(pipeline: Pipeline) -> None:
    set_quota(pipeline.ledger, None, "platform:llm:month", "10")
    spend(pipeline.ledger, "5")
    pipeline.flush()

    (alert,) = pipeline.alerts(None)
    assert alert.quota_id == "platform:llm:month"
    assert alert.tenant_id is None
    (message,) = pipeline.sns.received()
    assert "tenant_id" not in message["MessageAttributes"]
    assert message["MessageAttributes"]["scope"]["Value"] == "platform"


def test_sns_down_keeps_the_alert_pending_and_it_is_sent_once_when_back(
    pipeline: Pipeline, clock: Clock
) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    spend(pipeline.ledger, "8")
    pipeline.run(pipeline.take())
    inserts = pipeline.take()
    pipeline.events.down = True

    answer = pipeline.run(inserts)  # SNS accepts, EventBridge refuses

    assert len(answer["batchItemFailures"]) == 1
    (leader,) = [a for a in pipeline.alerts() if a.notify]
    assert leader.delivery == "pending"
    assert "EndpointConnectionError" in str(leader.last_error)
    assert len(pipeline.sns.received()) == 1

    # When EventBridge is back, the stream's retry delivers the rest, once
    pipeline.events.down = False
    pipeline.run(inserts)
    pipeline.run(inserts)
    (leader,) = [a for a in pipeline.alerts() if a.notify]
    assert leader.delivery == "sent"
    assert pipeline.sns.received() == []  # SNS had it already: not sent twice
    assert len(pipeline.events.sent) == 1


def test_the_sweeper_redrives_alerts_the_stream_gave_up_on(
    pipeline: Pipeline, clock: Clock
) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    spend(pipeline.ledger, "8")
    pipeline.run(pipeline.take())
    pipeline.events.down = True
    pipeline.run(pipeline.take())
    pipeline.events.down = False
    assert pipeline.book.pending() == []  # not yet: the stream is still retrying

    clock.advance(minutes=3)
    assert pipeline.book.redrive(pipeline.watch.publisher) == (1, 0)
    assert pipeline.book.redrive(pipeline.watch.publisher) == (0, 0)

    (leader,) = [a for a in pipeline.alerts() if a.notify]
    assert leader.delivery == "sent"
    assert len(pipeline.events.sent) == 1
    assert len(pipeline.sns.received()) == 1


def test_expired_hold_sweeps_ignore_the_outbox(pipeline: Pipeline, clock: Clock) -> None:
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    spend(pipeline.ledger, "8")
    pipeline.run(pipeline.take())
    pipeline.events.down = True
    pipeline.run(pipeline.take())
    clock.advance(minutes=5)

    assert pipeline.ledger.expire_due() == 0
    assert len(pipeline.book.pending()) == 1


def test_detection_ignores_everything_but_counters_going_up() -> None:
    def rules(tenant_id: str | None, quota_id: QuotaId) -> Rule:
        return Rule("hard", (50, 100))

    counter = {"q_llm_limit": Decimal(10), "q_llm_spent": Decimal(6)}
    assert crossings("TENANT#acme#REC", "01J", None, counter, rules) == []
    assert crossings("TENANT#acme", "POLICY", None, counter, rules) == []
    assert crossings("TENANT#acme", "MONTH#2026-11", counter, counter, rules) == []
    assert crossings("TENANT#acme", "MONTH#2026-11", counter, None, rules) == []
    (up,) = crossings("TENANT#acme", "MONTH#2026-11", None, counter, rules)
    assert up.thresholds == (50,)
    # a zero limit with any spend has crossed everything
    zero = {"q_all_limit": Decimal(0), "q_all_spent": Decimal("0.01")}
    (z,) = crossings("TENANT#acme#USER#u", "DAY#2026-11-25", None, zero, rules)
    assert z.thresholds == (50, 100)
    assert str(z.quota_id) == "user:u:all:day"


def test_the_sample_stream_event_in_events_records_the_jump(pipeline: Pipeline) -> None:
    """events/alerts/ holds the stream record `sam local invoke` would send (40 % → 95 %)."""
    from pathlib import Path

    sample = json.loads(
        (Path(__file__).parents[2] / "events/alerts/stream-threshold-jump.json").read_text()
    )
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "100")
    pipeline.take()

    assert pipeline.run(sample["Records"]) == {"batchItemFailures": []}
    pipeline.flush()

    assert sorted(a.threshold_pct or 0 for a in pipeline.alerts()) == [50, 80, 90]
    assert len(pipeline.sns.received()) == 1


def test_an_alert_that_never_publishes_is_redriven_with_backoff_then_given_up(
    pipeline: Pipeline, clock: Clock
) -> None:
    """Issue 20: a permanently failing publish was redriven every minute forever. Now each
    failed redrive waits longer (2, 4, 8… minutes, at most an hour), the MAX_REDRIVES-th marks
    the alert failed, takes it out of the outbox and counts AlertsUndeliverable."""
    from costguard.alerts import MAX_REDRIVES, redrive_delay

    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "10")
    spend(pipeline.ledger, "8")
    pipeline.run(pipeline.take())
    pipeline.events.down = True  # for good
    pipeline.run(pipeline.take())  # the stream's attempt fails

    waits = []
    clock.advance(minutes=2)
    for redrive in range(1, MAX_REDRIVES + 1):
        # every minute the sweeper runs; only a due alert is tried
        minutes = 0
        while not pipeline.book.pending():
            clock.advance(minutes=1)
            minutes += 1
            assert minutes <= 61, "a redrive never came due"
        waits.append(minutes)
        assert pipeline.book.redrive(pipeline.watch.publisher) == (0, 1)
        (leader,) = [a for a in pipeline.alerts() if a.notify]
        assert leader.delivery == ("failed" if redrive == MAX_REDRIVES else "pending")
        assert pipeline.book.redrive(pipeline.watch.publisher) == (0, 0)  # not due again yet
    assert waits[1:] == [
        int(redrive_delay(n).total_seconds() // 60) for n in range(1, MAX_REDRIVES)
    ]
    assert waits[1:] == sorted(waits[1:]) and max(waits) == 60

    # Given up: out of the outbox for good, readable with its last error, counted
    clock.advance(hours=24)
    assert pipeline.book.pending() == []
    assert pipeline.book.redrive(pipeline.watch.publisher) == (0, 0)
    (leader,) = [a for a in pipeline.alerts() if a.notify]
    assert "EndpointConnectionError" in str(leader.last_error) and leader.failed_at
    assert len(pipeline.sns.received()) == 1  # SNS had taken it; never sent twice
    from costguard import telemetry

    assert "AlertsUndeliverable" in telemetry.metrics.metric_set  # the sweeper's, alarmed


def test_a_threshold_alert_resets_at_the_tenants_local_midnight(pipeline: Pipeline, clock) -> None:  # type: ignore[no-untyped-def]
    # Given a Los Angeles tenant with a $10 day quota, at 23:00 PST on 30 November
    from costguard.models import TenantSettings

    clock.at = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    pipeline.ledger.create_tenant(
        "acme", "Acme", settings=TenantSettings(timezone="America/Los_Angeles")
    )
    set_quota(pipeline.ledger, "acme", "tenant:llm:day", "10")
    set_quota(pipeline.ledger, None, "platform:llm:day", "10")
    pipeline.flush()

    # When it spends $6
    spend(pipeline.ledger, "6")
    pipeline.flush()

    # Then its 50 % alert names its local day and resets at local midnight (08:00 UTC); the
    # platform's resets at UTC midnight
    [mine] = pipeline.alerts()
    assert (mine.period_key, mine.resets_at) == (
        "DAY#2026-11-30",
        datetime(2026, 12, 1, 8, tzinfo=UTC),
    )
    assert "resets at 2026-12-01 08:00 UTC (2026-12-01 00:00 America/Los_Angeles)" in mine.message
    [platform] = pipeline.alerts(None)
    assert (platform.period_key, platform.resets_at) == (
        "DAY#2026-12-01",
        datetime(2026, 12, 2, tzinfo=UTC),
    )


def test_only_records_that_can_alert_pass_the_raw_prefilter(pipeline: Pipeline) -> None:
    """may_alert is conservative: every record `handle` acts on passes it (here the commit's
    counter change and an overrun), and a guarded call's other records are skipped unread."""
    from costguard.alerts import may_alert
    from costguard.models import Usage

    # Given a quota and a first spend (the month's counter exists)
    set_quota(pipeline.ledger, "acme", "tenant:llm:month", "100")
    spend(pipeline.ledger, "1")
    pipeline.flush()

    # When one guarded call runs (reserve, then commit below the hold)
    estimate = Usage(resource="llm", estimated_cost_usd=Decimal("2"))
    held = pipeline.ledger.reserve("acme", estimate, with_figures=False)
    reserved = pipeline.take()
    pipeline.ledger.commit("acme", held.reservation_id, actual("1.5"))
    committed = pipeline.take()

    # Then the reserve's records cannot alert (holds move no utilization); of the commit's,
    # only the counter whose spend moved passes
    assert [may_alert(r) for r in reserved] == [False] * len(reserved)
    passed = [r["dynamodb"]["Keys"]["sk"]["S"] for r in committed if may_alert(r)]
    assert passed == ["MONTH#2026-11"]

    # And a commit beyond its hold (an overrun) passes with its record
    held = pipeline.ledger.reserve("acme", estimate, with_figures=False)
    pipeline.take()
    pipeline.ledger.commit("acme", held.reservation_id, actual("3"))
    overrun = [r for r in pipeline.take() if may_alert(r)]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in overrun] == ["TENANT#acme", "TENANT#acme#REC"]
    assert pipeline.run(overrun) == {"batchItemFailures": []}
    assert [a.alert_type for a in pipeline.alerts()] == ["overrun"]


# ---------------------------------------------------------------------- sliced quotas (D77)
def _slice_quota(ledger: Ledger, limit: str, slices: int, thresholds: tuple[int, ...]) -> None:
    from costguard.quotas import QuotaDefinition

    ledger.put_quota(
        "acme",
        QuotaDefinition(
            QuotaId.parse("tenant:llm:month"), Decimal(limit), thresholds=thresholds, slices=slices
        ),
    )


def _spend_on(monkeypatch: pytest.MonkeyPatch, ledger: Ledger, index: int, amount: str) -> None:
    """Spend on slice `index` of every sliced quota (the ledger's pick, fixed)."""
    from costguard.ledger import escrow

    monkeypatch.setattr(escrow, "pick", lambda n, rng=None: index)
    spend(ledger, amount)


def test_a_sliced_quota_alerts_on_the_whole_when_no_change_crosses_on_its_slice(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given $8 in 8 slices of $1, alerting at 50 %; slices 0–2 spend 90 % of their own
    # share each (each slice alone "crosses" 50 and 80) while the whole is at 33.75 %
    _slice_quota(pipeline.ledger, "8", 8, (50, 80))
    for index in (0, 1, 2):
        _spend_on(monkeypatch, pipeline.ledger, index, "0.9")
    pipeline.flush()
    assert pipeline.alerts() == []

    # When slices 3–6 spend 40 % of their shares, none crossing anything on its own:
    # $3.90 (48.75 %) after slice 5, $4.30 (53.75 %) after slice 6
    for index in (3, 4, 5):
        _spend_on(monkeypatch, pipeline.ledger, index, "0.4")
    pipeline.flush()
    assert pipeline.alerts() == []
    _spend_on(monkeypatch, pipeline.ledger, 6, "0.4")
    records = pipeline.flush()

    # Then the whole's 50 % is recorded once, with the whole's figures, and notified
    (alert,) = pipeline.alerts()
    assert (alert.quota_id, alert.threshold_pct, alert.period_key) == (
        "tenant:llm:month",
        50,
        "MONTH#2026-11",
    )
    assert (alert.spent_usd, alert.limit_usd, alert.utilization) == (
        Decimal("4.3"),
        Decimal("8"),
        Decimal("0.5375"),
    )
    assert alert.dedup_key == "threshold#tenant:llm:month#MONTH#2026-11#50"
    assert alert.delivery == "sent"
    assert [m["Subject"] for m in pipeline.sns.received()] == [f"[costguard info] {alert.title}"]
    # And every record delivered again records nothing more
    pipeline.run(records)
    pipeline.run(records)
    assert len(pipeline.alerts()) == 1


def test_a_sliced_quota_records_every_threshold_the_whole_reached_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given $8 in 4 slices at 40 %
    _slice_quota(pipeline.ledger, "8", 4, (50, 80, 100))
    _spend_on(monkeypatch, pipeline.ledger, 1, "3.2")
    pipeline.flush()
    assert pipeline.alerts() == []

    # When one cost on another slice takes the whole to 85 %
    _spend_on(monkeypatch, pipeline.ledger, 2, "3.6")
    pipeline.flush()

    # Then 50 and 80 are recorded, one notification (80)
    alerts = sorted(pipeline.alerts(), key=lambda a: a.threshold_pct or 0)
    assert [(a.threshold_pct, a.notify) for a in alerts] == [(50, False), (80, True)]
    assert {a.spent_usd for a in alerts} == {Decimal("6.8")}

    # And spend on a third slice past 100 % adds only 100
    _spend_on(monkeypatch, pipeline.ledger, 3, "1.5")
    pipeline.flush()
    assert sorted(a.threshold_pct or 0 for a in pipeline.alerts()) == [50, 80, 100]


def test_a_borrow_moves_grants_without_a_false_alert(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.ledger import escrow

    # Given $8 in 8 slices: a reserve of $3 on slice 1 borrows from its siblings
    _slice_quota(pipeline.ledger, "8", 8, (50,))
    monkeypatch.setattr(escrow, "pick", lambda n, rng=None: 1)
    held = pipeline.ledger.reserve("acme", estimate("3"), with_figures=False)
    pipeline.ledger.commit("acme", held.reservation_id, actual("3"))
    pipeline.flush()

    # Then slice 1's grant is $3 or more and the lenders' grants went down, but the whole
    # is at 37.5 %: nothing is recorded
    assert pipeline.alerts() == []

    # When $1 more is spent on slice 5 (the whole at 50 %)
    _spend_on(monkeypatch, pipeline.ledger, 5, "1")
    pipeline.flush()
    (alert,) = pipeline.alerts()
    assert (alert.spent_usd, alert.limit_usd) == (Decimal("4"), Decimal("8"))


def test_a_lower_limit_on_a_sliced_quota_crosses_on_the_whole(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given $8 in 4 slices, $3 spent (37.5 %)
    _slice_quota(pipeline.ledger, "8", 4, (50, 80))
    _spend_on(monkeypatch, pipeline.ledger, 2, "3")
    pipeline.flush()

    # When the limit is cut to $5 (60 %): the re-grant lowers the slices' grants
    _slice_quota(pipeline.ledger, "5", 4, (50, 80))
    pipeline.flush()

    # Then 50 % is recorded on the whole
    (alert,) = pipeline.alerts()
    assert (alert.threshold_pct, alert.spent_usd, alert.limit_usd) == (
        50,
        Decimal("3"),
        Decimal("5"),
    )


def test_a_quota_sliced_within_the_policy_cache_is_read_as_one(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an unsliced $8 quota the alerts function has read (its policy is cached)
    _slice_quota(pipeline.ledger, "8", 1, (50,))
    _spend_on(monkeypatch, pipeline.ledger, 0, "1")
    pipeline.flush()

    # When it is cut into 8 slices and slice 0 spends past its own $1 share (the whole at
    # 25 %), then slice 0 again to $4.10 (51.25 %)
    _slice_quota(pipeline.ledger, "8", 8, (50,))
    _spend_on(monkeypatch, pipeline.ledger, 0, "1")
    pipeline.flush()
    assert pipeline.alerts() == []
    _spend_on(monkeypatch, pipeline.ledger, 3, "2.1")
    pipeline.flush()

    # Then only the whole's 50 % is recorded
    (alert,) = pipeline.alerts()
    assert (alert.spent_usd, alert.limit_usd) == (Decimal("4.1"), Decimal("8"))


def test_slice_records_pass_the_prefilter_and_the_streams_filters(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.alerts import may_alert
    from costguard.topology import LEDGER_STREAM

    _slice_quota(pipeline.ledger, "8", 8, (50,))
    pipeline.flush()
    _spend_on(monkeypatch, pipeline.ledger, 5, "1")
    records = pipeline.take()
    passed = [r["dynamodb"]["Keys"]["pk"]["S"] for r in records if may_alert(r)]
    assert passed == ["TENANT#acme#S05"]
    assert all(LEDGER_STREAM.accepts(r) for r in records if may_alert(r))


class BorrowInFlight:
    """The ledger table, except that a consistent batch read sees slice 1 before a borrow
    of $2 reached it while its donors are seen after (separate items, read at different
    moments: what a screen read can see while a borrow commits)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)

    def batch_get(self, keys: Any, consistent: bool = True) -> dict[Any, dict[str, Any]]:
        found: dict[Any, dict[str, Any]] = self.table.batch_get(keys, consistent)
        key = ("TENANT#acme#S01", "MONTH#2026-11")
        if consistent and key in found:
            item = dict(found[key])
            item["q_llm_limit"] -= 2
            item["q_llm_avail"] -= 2
            found[key] = item
        return found


def test_a_grant_a_borrow_in_flight_hides_is_not_alerted_on(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.ledger import escrow

    # Given $8 in 8 slices: $3 reserved and spent on slice 1 (it borrowed $2), $0.50 on
    # slice 4: the whole at 43.75 %
    _slice_quota(pipeline.ledger, "8", 8, (50,))
    monkeypatch.setattr(escrow, "pick", lambda n, rng=None: 1)
    held = pipeline.ledger.reserve("acme", estimate("3"), with_figures=False)
    pipeline.ledger.commit("acme", held.reservation_id, actual("3"))
    _spend_on(monkeypatch, pipeline.ledger, 4, "0.5")
    records = pipeline.take()

    # When the alerts function's screen read sees the borrow half done ($6 of grants: 58 %)
    watch = StreamAlerts(
        BorrowInFlight(pipeline.ledger.table),  # type: ignore[arg-type]
        pipeline.book,
        Publisher(pipeline.sns.topic, pipeline.events),
    )
    alerts_handler.handler({"Records": records}, CONTEXT, watch=watch)

    # Then the snapshot it confirms on shows the whole as it is: nothing is recorded
    assert pipeline.alerts() == []


def test_a_batch_reads_a_sliced_quota_once_whatever_its_records(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given spend on 4 slices of a sliced quota, one stream batch with all their changes
    _slice_quota(pipeline.ledger, "8", 8, (50, 80))
    pipeline.flush()
    for index in (1, 2, 3, 4):
        _spend_on(monkeypatch, pipeline.ledger, index, "1.1")
    records = pipeline.take()
    reads: list[int] = []
    table = pipeline.ledger.table

    class Counting(BorrowInFlight):
        def batch_get(self, keys: Any, consistent: bool = True) -> dict[Any, dict[str, Any]]:
            reads.append(len(keys))
            return dict(table.batch_get(keys, consistent))

    watch = StreamAlerts(
        Counting(table),  # type: ignore[arg-type]
        pipeline.book,
        Publisher(pipeline.sns.topic, pipeline.events),
    )

    # When the batch is handled (and handled again, as a retry would)
    alerts_handler.handler({"Records": records}, CONTEXT, watch=watch)
    alerts_handler.handler({"Records": records}, CONTEXT, watch=watch)

    # Then the whole was read once (the policy and 8 slices), $4.40 of $8 recorded once;
    # and the retry once more (80 % is still to come)
    assert [n for n in reads if n == 9] == [9, 9]
    (alert,) = pipeline.alerts()
    assert (alert.spent_usd, alert.threshold_pct) == (Decimal("4.4"), 50)


def test_a_quota_sliced_within_the_cache_is_read_as_one_from_slice_0_alone(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an unsliced $8 quota the alerts function has read (its policy is cached), $1 spent
    _slice_quota(pipeline.ledger, "8", 1, (50,))
    _spend_on(monkeypatch, pipeline.ledger, 0, "1")
    pipeline.flush()

    # When it is cut into 8 slices (slice 0's grant becomes $1.875, already 53 % used),
    # slices 1–7 spend $0.40 each (47.5 % of the whole) and then slice 0 $0.30 (51.25 %)
    _slice_quota(pipeline.ledger, "8", 8, (50,))
    pipeline.take()  # the re-grant's own records are handled elsewhere
    for index in range(1, 8):
        _spend_on(monkeypatch, pipeline.ledger, index, "0.4")
    _spend_on(monkeypatch, pipeline.ledger, 0, "0.3")

    # and only slice 0's records reach this container (the others' went elsewhere)
    records = [r for r in pipeline.take() if r["dynamodb"]["Keys"]["pk"]["S"] == "TENANT#acme"]
    pipeline.run(records)

    # Then the change of slice 0, which crossed nothing of its own share, alerts the whole
    (alert,) = pipeline.alerts()
    assert (alert.spent_usd, alert.limit_usd) == (Decimal("4.1"), Decimal("8"))

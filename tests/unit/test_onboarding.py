"""Onboarding: plans → default quotas, seeded once, never over an operator's quota (moto)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from costguard.errors import QuotaExceeded
from costguard.ledger import Ledger, LedgerTable
from costguard.notify import PublishFailed
from costguard.onboarding import (
    MalformedEvent,
    Onboarding,
    OnboardingSettings,
    SqsDeadLetters,
    TenantCreatedDetail,
    UnknownPlan,
    announce_tenant,
    parse_plans,
)
from costguard.quotas import DEFAULT_THRESHOLDS, Mode, QuotaId
from costguard.store.keys import POLICY_SK, tenant_pk

from functions.onboarding import handler as onboarding_handler
from tests.helpers import estimate, quota_state, set_quota, usd

EVENTS = Path(__file__).parents[2] / "events" / "onboarding"
CONTEXT = SimpleNamespace(
    function_name="onboarding",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:1:function:onboarding",
    aws_request_id="req-1",
)
SEEDS = {
    "tenant:all:month": usd("150"),
    "tenant:llm:month": usd("100"),
    "tenant:sandbox:month": usd("50"),
}
TIERS = {
    "free": {"tenant:all:month": "5"},
    "pro": {"tenant:llm:month": "500", "tenant:all:month": {"limit_usd": "600", "mode": "soft"}},
    "enterprise": {
        "tenant:all:month": {"limit_usd": "10000", "thresholds": [80, 100]},
        "tenant:llm:day": "1000",
    },
}


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{name}.json").read_text()))


def limits(ledger: Ledger, tenant: str) -> dict[str, Decimal]:
    return {q.quota_id: q.limit_usd for q in ledger.quotas(tenant)}


def policy_item(ledger: Ledger, tenant: str) -> dict[str, Any]:
    item = ledger.table.get((tenant_pk(tenant), POLICY_SK))
    assert item is not None
    return item


def snapshot(ledger: Ledger) -> list[dict[str, Any]]:
    client = ledger.table.client
    items = client.scan(TableName=ledger.table.name, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def detail(tenant: str, plan: str | None = None) -> TenantCreatedDetail:
    return TenantCreatedDetail(tenant_id=tenant, plan=plan)


@pytest.fixture
def seeds(ledger: Ledger) -> Onboarding:
    return Onboarding(
        ledger,
        parse_plans(
            {
                "default": {
                    "tenant:llm:month": "100",
                    "tenant:sandbox:month": "50",
                    "tenant:all:month": "150",
                }
            }
        ),
    )


@pytest.fixture
def tiers(ledger: Ledger) -> Onboarding:
    return Onboarding(ledger, parse_plans(TIERS, fallback="free"))


# ------------------------------------------------------------------------------ first event
def test_the_first_event_seeds_the_default_quotas(seeds: Onboarding, ledger: Ledger) -> None:
    ledger.create_tenant("acme", "Acme Inc", "pro")
    version_before = policy_item(ledger, "acme")["version"]

    done = seeds.seed(detail("acme", "pro"), event_id="evt-1")

    assert done.summary() == {
        "tenant_id": "acme",
        "plan": "default",  # no plan "pro" in the seeds: the fallback
        "seeded": ["tenant:all:month", "tenant:llm:month", "tenant:sandbox:month"],
        "kept": [],
        "first": True,
    }
    assert limits(ledger, "acme") == SEEDS
    for q in ledger.quotas("acme"):
        assert (q.mode, tuple(q.thresholds)) == ("hard", DEFAULT_THRESHOLDS)
        assert (q.spent_usd, q.reserved_usd, q.remaining_usd) == (0, 0, q.limit_usd)
    item = policy_item(ledger, "acme")
    assert item["version"] == version_before + 1
    assert item["onboarded"] == {
        "plan": "default",
        "event_id": "evt-1",
        "at": "2026-11-25T12:00:00.000000Z",
    }
    assert ledger.reconcile("acme") == []


def test_the_product_seeds_are_the_code_default(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("COSTGUARD_DEFAULT_QUOTAS", "COSTGUARD_FALLBACK_PLAN"):
        monkeypatch.delenv(name, raising=False)
    settings = OnboardingSettings()
    plans = parse_plans(settings.default_quotas, settings.fallback_plan)
    assert plans.fallback == "default"
    assert {str(q.quota_id): q.limit_usd for q in plans.sets["default"]} == SEEDS
    assert all(
        q.thresholds == (50, 80, 90, 100) and q.mode is Mode.HARD for q in plans.sets["default"]
    )


def test_a_tenant_nobody_registered_is_seeded_too(seeds: Onboarding, ledger: Ledger) -> None:
    """An event from the operator's platform may name a tenant costguard has never seen."""
    done = seeds.seed(detail("globex"))

    assert done.result.first and limits(ledger, "globex") == SEEDS
    assert policy_item(ledger, "globex")["version"] == 1
    assert ledger.reconcile("globex") == []


# ------------------------------------------------------------------------ duplicates, replays
def test_a_duplicate_event_writes_nothing(seeds: Onboarding, ledger: Ledger) -> None:
    ledger.create_tenant("acme", "Acme Inc")
    seeds.seed(detail("acme"), event_id="evt-1")
    before = snapshot(ledger)

    again = seeds.seed(detail("acme"), event_id="evt-1")
    other_plan = seeds.seed(detail("acme", "enterprise"), event_id="evt-2")

    assert (again.result.first, again.result.seeded) == (False, ())
    assert again.result.kept == tuple(sorted(SEEDS))
    assert other_plan.result.first is False
    assert snapshot(ledger) == before  # byte for byte


def test_an_operator_quota_set_before_the_event_is_kept(seeds: Onboarding, ledger: Ledger) -> None:
    ledger.create_tenant("acme", "Acme Inc")
    set_quota(ledger, "acme", "tenant:llm:month", "5", mode=Mode.SOFT)

    done = seeds.seed(detail("acme"))

    assert (done.result.seeded, done.result.kept) == (
        ("tenant:all:month", "tenant:sandbox:month"),
        ("tenant:llm:month",),
    )
    llm = quota_state(ledger, "acme", "tenant:llm:month")
    assert (llm.limit_usd, llm.mode) == (usd("5"), "soft")
    assert limits(ledger, "acme")["tenant:all:month"] == usd("150")


def test_an_operator_quota_survives_a_replay(seeds: Onboarding, ledger: Ledger) -> None:
    seeds.seed(detail("acme"), event_id="evt-1")
    set_quota(ledger, "acme", "tenant:llm:month", "7")
    ledger.delete_quota("acme", QuotaId.parse("tenant:sandbox:month"))

    replay = seeds.seed(detail("acme"), event_id="evt-1")

    assert replay.result.first is False
    assert limits(ledger, "acme") == {"tenant:all:month": usd("150"), "tenant:llm:month": usd("7")}


def test_when_the_operator_set_every_default_only_the_mark_is_written(
    seeds: Onboarding, ledger: Ledger
) -> None:
    for quota_id, limit in (
        ("tenant:llm:month", "1"),
        ("tenant:sandbox:month", "2"),
        ("tenant:all:month", "3"),
    ):
        set_quota(ledger, "acme", quota_id, limit)
    version = policy_item(ledger, "acme")["version"]

    done = seeds.seed(detail("acme"))

    assert (done.result.seeded, done.result.first) == ((), True)
    assert limits(ledger, "acme") == {
        "tenant:all:month": usd("3"),
        "tenant:llm:month": usd("1"),
        "tenant:sandbox:month": usd("2"),
    }
    assert policy_item(ledger, "acme")["version"] == version  # no quota changed: caches stay valid
    assert seeds.seed(detail("acme")).result.first is False


# --------------------------------------------------------------- the ledger's invariants hold
def test_a_seeded_quota_moves_the_current_counter_like_put_quota(
    seeds: Onboarding, ledger: Ledger
) -> None:
    """A counter that exists this month (spend on another quota, or on a deleted one) gets the
    seeded limit with avail = limit − spent − held, exactly as put_quota would set it."""
    set_quota(ledger, "acme", "tenant:llm:month", "20")
    ledger.reserve("acme", estimate("4"))  # llm: held 4 on MONTH#2026-11
    ledger.delete_quota(
        "acme", QuotaId.parse("tenant:llm:month")
    )  # the counter keeps q_llm_limit 20

    seeds.seed(detail("acme"))

    llm = quota_state(ledger, "acme", "tenant:llm:month")
    assert (llm.limit_usd, llm.reserved_usd, llm.remaining_usd) == (usd("100"), usd("4"), usd("96"))
    everything = quota_state(ledger, "acme", "tenant:all:month")
    assert (everything.limit_usd, everything.reserved_usd, everything.remaining_usd) == (
        usd("150"),
        0,
        usd("150"),
    )
    ledger.reserve("acme", estimate("90"))
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve("acme", estimate("7"))
    assert refused.value.binding.quota_id == "tenant:llm:month"
    assert ledger.reconcile("acme") == []


def test_a_process_with_a_stale_policy_cache_sees_the_seeded_quotas_at_once(
    seeds: Onboarding, ledger: Ledger, moto_client: Any, settings: Any, clock: Any
) -> None:
    """Another warm container cached 'no quotas'; the version bump refuses its stale reserve."""
    other = Ledger(LedgerTable(moto_client, settings.table_name, settings), settings, clock=clock)
    other.reserve("acme", estimate("1"))  # caches the tenant's (absent) policy

    seeds.seed(detail("acme"))

    with pytest.raises(QuotaExceeded) as refused:
        other.reserve("acme", estimate("101"))
    assert refused.value.binding.quota_id == "tenant:llm:month"


# -------------------------------------------------------------------------------- plan tiers
@pytest.mark.parametrize(
    ("plan", "applied", "expected"),
    [
        ("free", "free", {"tenant:all:month": usd("5")}),
        ("pro", "pro", {"tenant:all:month": usd("600"), "tenant:llm:month": usd("500")}),
        ("Pro", "pro", {"tenant:all:month": usd("600"), "tenant:llm:month": usd("500")}),
        (
            "enterprise",
            "enterprise",
            {"tenant:all:month": usd("10000"), "tenant:llm:day": usd("1000")},
        ),
        ("platinum", "free", {"tenant:all:month": usd("5")}),  # unknown: the fallback
        (None, "free", {"tenant:all:month": usd("5")}),  # none: the fallback
    ],
)
def test_the_plan_picks_the_set(
    tiers: Onboarding, ledger: Ledger, plan: str | None, applied: str, expected: dict[str, Decimal]
) -> None:
    done = tiers.seed(detail("acme", plan))

    assert done.plan == applied
    assert limits(ledger, "acme") == expected
    assert ledger.reconcile("acme") == []


def test_plan_specs_keep_mode_and_thresholds(tiers: Onboarding, ledger: Ledger) -> None:
    tiers.seed(detail("acme", "pro"))
    tiers.seed(detail("initech", "enterprise"))

    assert quota_state(ledger, "acme", "tenant:all:month").mode == "soft"
    assert quota_state(ledger, "initech", "tenant:all:month").thresholds == [80, 100]


def test_an_unknown_plan_without_a_fallback_is_refused_and_writes_nothing(ledger: Ledger) -> None:
    strict = Onboarding(ledger, parse_plans(TIERS, fallback=None))
    before = snapshot(ledger)

    with pytest.raises(UnknownPlan, match="'platinum' is not one of \\[enterprise, free, pro\\]"):
        strict.seed(detail("acme", "platinum"))
    with pytest.raises(UnknownPlan):
        strict.seed(detail("acme"))
    assert snapshot(ledger) == before


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("raw", "fallback", "message"),
    [
        ({}, None, "non-empty"),
        ([], None, "non-empty"),
        ({"Pro": {"tenant:llm:month": "1"}}, None, "plan name 'Pro'"),
        ({"pro": ["tenant:llm:month"]}, None, "an object"),
        ({"pro": {"tenant:llm:year": "1"}}, None, "quota_id must look like"),
        ({"pro": {"platform:llm:month": "1"}}, None, "not a tenant quota"),
        ({"pro": {"user:u-1:llm:month": "1"}}, None, "not a tenant quota"),
        ({"pro": {"tenant:llm:month": 1.5}}, None, "float"),
        ({"pro": {"tenant:llm:month": "-1"}}, None, "negative"),
        ({"pro": {"tenant:llm:month": "lots"}}, None, "decimal"),
        ({"pro": {"tenant:llm:month": {"limit_usd": "1", "mode": "gentle"}}}, None, "mode"),
        ({"pro": {"tenant:llm:month": {"limit_usd": "1", "colour": "red"}}}, None, "colour"),
        ({"pro": {"tenant:llm:month": "1"}}, "free", "fallback plan 'free'"),
        ("{not json", None, "Expecting"),
    ],
)
def test_a_bad_configuration_says_what_is_wrong(
    raw: Any, fallback: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_plans(raw, fallback)


def test_plans_round_trip_through_their_compact_json() -> None:
    plans = parse_plans(TIERS, fallback="free")
    text = plans.to_json()

    assert parse_plans(text, "free") == plans
    assert json.loads(text)["pro"] == {
        "tenant:all:month": {"limit_usd": "600", "mode": "soft"},
        "tenant:llm:month": {"limit_usd": "500"},
    }


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTGUARD_DEFAULT_QUOTAS", json.dumps(TIERS))
    monkeypatch.setenv("COSTGUARD_FALLBACK_PLAN", "")
    s = OnboardingSettings()
    plans = parse_plans(s.default_quotas, s.fallback_plan or None)
    assert (sorted(plans.sets), plans.fallback) == (["enterprise", "free", "pro"], None)


# ----------------------------------------------------------------------- the Lambda handler
class Recorded:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], str]] = []

    def send(self, event: Any, reason: str) -> None:
        self.sent.append((event, reason))


def test_the_sample_event_seeds_through_the_handler(seeds: Onboarding, ledger: Ledger) -> None:
    dead = Recorded()
    answer = onboarding_handler.handler(sample("tenant_created"), CONTEXT, onboard=seeds, dead=dead)  # type: ignore[arg-type]

    assert answer["first"] is True and answer["tenant_id"] == "acme"
    assert limits(ledger, "acme") == SEEDS
    assert (
        policy_item(ledger, "acme")["onboarded"]["event_id"]
        == "0b6f0b53-5c1a-4b9e-9a57-3d1c2f7e4a10"
    )
    again = onboarding_handler.handler(sample("tenant_created"), CONTEXT, onboard=seeds, dead=dead)  # type: ignore[arg-type]
    assert again["first"] is False and dead.sent == []


def test_an_event_from_the_platform_with_extra_fields_and_no_plan(
    seeds: Onboarding, ledger: Ledger
) -> None:
    answer = onboarding_handler.handler(
        sample("tenant_created_by_platform"), CONTEXT, onboard=seeds, dead=Recorded()
    )  # type: ignore[arg-type]

    assert (answer["tenant_id"], answer["plan"]) == ("globex", "default")
    assert limits(ledger, "globex") == SEEDS


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("malformed_no_tenant_id", "detail.tenant_id: Field required"),
        ("malformed_bad_tenant_id", "detail.tenant_id: String should match pattern"),
        (
            "unknown_plan",
            "plan 'platinum' is not one of [enterprise, free, pro] and there is no fallback plan",
        ),
    ],
)
def test_a_malformed_event_is_dead_lettered_with_its_reason_and_not_retried(
    ledger: Ledger,
    name: str,
    reason: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    strict = Onboarding(ledger, parse_plans(TIERS, fallback=None))
    dead = Recorded()
    before = snapshot(ledger)
    event = sample(name)

    answer = onboarding_handler.handler(event, CONTEXT, onboard=strict, dead=dead)  # type: ignore[arg-type]

    assert answer["status"] == "dead-lettered" and answer["reason"].startswith(reason)
    [(sent, why)] = dead.sent
    assert sent == event and why == answer["reason"]
    assert snapshot(ledger) == before
    out = capsys.readouterr().out
    [logged] = [r for r in caplog.records if r.getMessage() == "malformed TenantCreated event"]
    assert logged.levelname == "ERROR" and logged.reason.startswith(reason)
    assert '"TenantCreatedRejected"' in out  # the EMF metric


@pytest.mark.parametrize(
    "event",
    [
        {**sample("tenant_created"), "detail-type": "TenantDeleted"},
        {"detail": {"tenant_id": "acme"}},  # not an EventBridge envelope
        {**sample("tenant_created"), "detail": "acme"},
    ],
)
def test_what_is_not_a_tenant_created_event_is_dead_lettered(
    seeds: Onboarding, event: dict[str, Any]
) -> None:
    dead = Recorded()
    answer = onboarding_handler.handler(event, CONTEXT, onboard=seeds, dead=dead)  # type: ignore[arg-type]
    assert answer["status"] == "dead-lettered" and len(dead.sent) == 1


def test_without_a_queue_a_malformed_event_is_raised_for_lambda_to_dead_letter(
    seeds: Onboarding, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the composition root of a deployment without a dead-letter queue
    monkeypatch.setattr(
        onboarding_handler, "root", lambda: onboarding_handler.Onboarder(seeds, lambda: None)
    )
    with pytest.raises(MalformedEvent, match="tenant_id"):
        onboarding_handler.handler(sample("malformed_no_tenant_id"), CONTEXT, onboard=seeds)  # type: ignore[arg-type]


def test_a_ledger_failure_is_raised_so_lambda_retries(
    seeds: Onboarding, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.errors import LedgerUnavailable

    def down(*_: Any, **__: Any) -> Any:
        raise LedgerUnavailable(
            "ledger unavailable: EndpointConnectionError", retry_after_seconds=2
        )

    monkeypatch.setattr(seeds.ledger, "seed_quotas", down)
    dead = Recorded()
    with pytest.raises(LedgerUnavailable):
        onboarding_handler.handler(sample("tenant_created"), CONTEXT, onboard=seeds, dead=dead)  # type: ignore[arg-type]
    assert dead.sent == []  # not a malformed event: Lambda's retries, then its DLQ


def test_the_sqs_dead_letter_message_is_the_event_with_its_reason() -> None:
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="onboarding-dlq")["QueueUrl"]
        event = sample("malformed_no_tenant_id")

        SqsDeadLetters(sqs, url).send(event, "detail.tenant_id: Field required")

        [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
        assert json.loads(message["Body"]) == event
        assert message["MessageAttributes"]["ErrorCode"]["StringValue"] == "malformed_event"
        assert (
            message["MessageAttributes"]["ErrorMessage"]["StringValue"]
            == "detail.tenant_id: Field required"
        )


# ---------------------------------------------------------------------- announcing a tenant
class Bus:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[tuple[str, dict[str, Any]]] = []

    def put(self, detail_type: str, detail: Any) -> None:
        if self.fail:
            raise PublishFailed("EventBridge put_events failed: EndpointConnectionError")
        self.events.append((detail_type, dict(detail)))


def test_announcing_a_tenant_puts_the_event_and_seeds_nothing_itself(
    seeds: Onboarding, ledger: Ledger
) -> None:
    bus = Bus()
    tenant = ledger.create_tenant("acme", "Acme Inc", "pro")

    assert announce_tenant(bus, tenant, seeds) is None

    assert bus.events == [
        (
            "TenantCreated",
            {
                "tenant_id": "acme",
                "name": "Acme Inc",
                "plan": "pro",
                "created_at": "2026-11-25T12:00:00.000000Z",
            },
        )
    ]
    assert ledger.quotas("acme") == []


def test_when_the_bus_refuses_the_event_the_defaults_are_seeded_directly(
    seeds: Onboarding, ledger: Ledger
) -> None:
    tenant = ledger.create_tenant("acme", "Acme Inc", "pro")

    done = announce_tenant(Bus(fail=True), tenant, seeds)

    assert done is not None and done.result.first
    assert limits(ledger, "acme") == SEEDS

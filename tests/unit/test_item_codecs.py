"""The typed item codecs (costguard.store.items) against what the ledger and the alert book
really write: every stored attribute survives a decode and an encode, and a malformed item is
a corrupted ledger, never a KeyError downstream."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from costguard.alerts import AlertBook, AlertDraft, AlertType, Severity
from costguard.auth import ApiKeys, fingerprint
from costguard.errors import LedgerCorrupted
from costguard.forecasts import ForecastRules, current_forecasts, run_forecasts
from costguard.ledger import Ledger
from costguard.models import Usage
from costguard.quotas import Mode
from costguard.store.items import (
    AlertItem,
    ApiKeyItem,
    CostRecordItem,
    DayRollup,
    ForecastItem,
    TenantItem,
    policy_of,
    quota_spec,
)
from costguard.store.keys import (
    API_KEY_SK,
    FORECAST_PREFIX,
    POLICY_SK,
    TENANT_SK,
    alerts_pk,
    api_key_pk,
    records_pk,
    tenant_pk,
)
from costguard.store.schema import HOLDS_PK, HOLDS_SK, TTL_ATTRIBUTE
from costguard.store.writes import ItemWrite

from tests.conftest import Clock
from tests.helpers import actual, quota, set_quota, usd

T = "acme"
WRITTEN_BY_OTHERS = {"pk", TTL_ATTRIBUTE, HOLDS_PK, HOLDS_SK}
"""Attributes the codec leaves to the write that sets them: the partition, TTL, index keys."""


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.create_tenant(T, "Acme Inc")
    set_quota(ledger, T, "tenant:llm:month", "10.00")
    return ledger


def gpt4o(**kw: Any) -> Usage:
    return Usage(resource="llm", provider="openai", model="gpt-4o", **kw)


def stored_records(ledger: Ledger) -> list[dict[str, Any]]:
    return ledger.table.query_all("pk = :p", {":p": records_pk(T)}, consistent=True)


def test_every_attribute_of_every_record_the_engine_writes_survives_the_codec(
    acme: Ledger,
) -> None:
    # Given a committed, a held, a released, an overrun and a recorded record, with usage and
    # every attribution
    who = {"user_id": "u-1", "conversation_id": "c-1", "task_id": "t-1", "operation": "chat"}
    committed = acme.reserve(T, gpt4o(input_tokens=1_000, output_tokens=100, **who))
    acme.commit(T, committed.reservation_id, gpt4o(input_tokens=900, output_tokens=80, **who))
    # (a hold with attribution beyond user_id is a transaction with its own held record, D82)
    acme.reserve(T, gpt4o(input_tokens=10, output_tokens=10, **who))
    released = acme.reserve(T, gpt4o(input_tokens=10, output_tokens=10))
    acme.release(T, released.reservation_id)
    over = acme.reserve(T, gpt4o(input_tokens=10, output_tokens=10))
    acme.commit(T, over.reservation_id, gpt4o(input_tokens=10_000, output_tokens=10_000))
    acme.record_usage(
        T, Usage(resource="sandbox", cost_usd="0.25", user_id="u-2", metadata={"k": "v"})
    )
    items = stored_records(acme)
    assert sorted(i["status"] for i in items) == [
        "committed",
        "committed",
        "held",
        "recorded",
        "released",
    ]

    # When each is decoded and encoded again
    for item in items:
        record = CostRecordItem.from_item(item)

        # Then nothing the engine wrote is lost or changed
        assert record.to_item() == {k: v for k, v in item.items() if k not in WRITTEN_BY_OTHERS}
        assert CostRecordItem.from_item(record.to_item()) == record


def test_a_settled_record_decodes_to_what_the_api_shows(acme: Ledger) -> None:
    r = acme.reserve(T, gpt4o(input_tokens=1_000, output_tokens=100, user_id="u-1"))
    shown = acme.commit(T, r.reservation_id, gpt4o(input_tokens=900, output_tokens=80))

    [record], _ = acme.settled_records(T, acme.now().replace(day=1), acme.now(), limit=10)

    assert record.reservation_id == r.reservation_id
    assert record.charged_usd == shown.cost_usd == usd("0.003050")
    assert acme.cost_record(record) == shown


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"cost_usd": None}, "a committed record without its cost"),
        ({"cost_usd": "lots"}, "a cost that is not a number"),
        ({"created_at": "yesterday"}, "a time that does not parse"),
        ({"plan": None}, "no plan: the reservation id cannot be rebuilt"),
        ({"input_tokens": "many"}, "a token count that is not a number"),
    ],
)
def test_a_malformed_record_is_a_corrupted_ledger(
    acme: Ledger, change: dict[str, Any], why: str
) -> None:
    acme.record_usage(T, actual("0.25"))
    [item] = stored_records(acme)
    item["status"] = "committed"
    broken = {k: v for k, v in (item | change).items() if v is not None}

    with pytest.raises(LedgerCorrupted):
        CostRecordItem.from_item(broken)


def test_a_day_rollup_decodes_spend_by_resource_model_tier_and_user_bucket(
    acme: Ledger,
) -> None:
    acme.record_usage(T, gpt4o(input_tokens=1_000_000, output_tokens=0, user_id="u-1"))
    acme.record_usage(T, actual("0.50", "sandbox"))

    [day] = acme.daily_rollups(T, acme.now(), acme.now())

    assert day.day == acme.now().date()
    assert (day.spent(), day.spent("llm"), day.spent("sandbox")) == (
        usd("3.00"),
        usd("2.50"),
        usd("0.50"),
    )
    assert day.calls == 2
    assert day.by_model_or_tier() == {"openai/gpt-4o": usd("2.50"), "sandbox:-": usd("0.50")}
    assert list(day.by_bucket.values()) == [usd("2.50")]
    assert list(day.bucket_users.values()) == ["u-1"]


def test_a_day_rollup_with_a_figure_that_is_not_a_number_is_corrupted() -> None:
    with pytest.raises(LedgerCorrupted):
        DayRollup.from_item({"pk": "TENANT#acme", "sk": "DAY#2026-11-25", "usd_all": "x"})


def test_a_policy_item_decodes_to_the_policy_it_was_written_from(acme: Ledger) -> None:
    soft = quota("tenant:sandbox:day", "5", Mode.SOFT, grace="10")
    acme.put_quota(T, soft)

    item = acme.table.get((tenant_pk(T), POLICY_SK))
    policy = policy_of(item)

    assert item is not None and item["quotas"]["tenant:sandbox:day"] == quota_spec(soft)
    assert [str(q.quota_id) for q in policy.quotas] == ["tenant:llm:month", "tenant:sandbox:day"]
    assert policy.quotas[1] == soft
    assert policy.exists and policy.version == item["version"]
    assert policy_of(None).exists is False


def test_a_policy_with_a_quota_id_that_does_not_parse_is_corrupted() -> None:
    item = {"pk": "TENANT#acme", "sk": "POLICY", "quotas": {"no-such-quota": {"limit_usd": 1}}}
    with pytest.raises(LedgerCorrupted):
        policy_of(item)


def test_every_attribute_of_a_recorded_alert_survives_the_codec(
    ledger: Ledger, clock: Clock
) -> None:
    # Given two drafts recorded together (one notifies, the other is grouped into it)
    book = AlertBook(ledger.table, clock)
    drafts = [
        AlertDraft(
            alert_type=AlertType.THRESHOLD,
            severity=severity,
            dedup_key=f"threshold#{pct}",
            tenant_id=T,
            title=f"{pct} %",
            message="spent",
            quota_id="tenant:llm:month",
            period_key="MONTH#2026-11",
            threshold_pct=pct,
            spent_usd=usd("9.5"),
            limit_usd=usd("10"),
            utilization=Decimal("0.9500"),
            resets_at=datetime(2026, 12, 1, tzinfo=UTC),
            details={"scope": "tenant"},
            caused_by_request="req-1",
        )
        for pct, severity in ((80, Severity.INFO), (90, Severity.WARNING))
    ]
    created = book.record(drafts)

    # When the stored items are read back
    stored = ledger.table.query_all(
        "pk = :p AND begins_with(sk, :a)", {":p": alerts_pk(T), ":a": "A#"}, consistent=True
    )

    # Then they are exactly what the codec wrote, and decode to the alerts returned
    assert sorted(
        ({k: v for k, v in i.items() if k != "pk"} for i in stored), key=lambda i: i["sk"]
    ) == sorted((a.to_item() for a in created), key=lambda i: i["sk"])
    assert sorted((AlertItem.from_item(i) for i in stored), key=lambda a: a.alert_id) == sorted(
        created, key=lambda a: a.alert_id
    )
    leader = next(a for a in created if a.notify)
    assert (leader.threshold_pct, leader.grouped, leader.delivery) == (90, [80, 90], "pending")
    assert leader.outbox is not None
    assert {a.notified_in for a in created if not a.notify} == {leader.alert_id}


def test_an_alert_without_a_title_is_corrupted() -> None:
    with pytest.raises(LedgerCorrupted):
        AlertItem.from_item({"sk": "A#1", "alert_id": "1", "alert_type": "threshold"})


def without_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def test_every_attribute_of_a_stored_forecast_survives_the_codec(
    acme: Ledger, clock: Clock
) -> None:
    # Given a tenant quota about to break (a breach day, a utilization) and a user quota
    set_quota(acme, T, "user:u-1:llm:day", "8.00")
    acme.record_usage(T, actual("6.00", user_id="u-1"))
    report = run_forecasts(acme, AlertBook(acme.table, clock), ForecastRules())
    assert report.tenants == 1

    # When the stored forecasts are read back
    stored = acme.table.query_all(
        "pk = :p AND begins_with(sk, :f)", {":p": tenant_pk(T), ":f": FORECAST_PREFIX}
    )
    served = current_forecasts(acme, T)

    # Then each is exactly what its codec writes, and decodes to what is served
    assert [i["quota_id"] for i in stored] == ["tenant:llm:month", "user:u-1:llm:day"]
    assert [without_keys(i) for i in stored] == [f.to_item() for f in served]
    assert [ForecastItem.from_item(f.to_item()) for f in served] == served
    tenant_quota, user_quota = served
    assert tenant_quota.breach_on is not None and tenant_quota.projected_utilization
    assert (tenant_quota.user_id, user_quota.user_id) == (None, "u-1")
    assert "user_id" not in stored[0] and stored[1]["user_id"] == "u-1"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"risk": "dire"}, "a risk no forecast has"),
        ({"spent_usd": None}, "no spend"),
        ({"breach_on": "soon"}, "a breach day that does not parse"),
        ({"history_days": "many"}, "history that is not a number"),
    ],
)
def test_a_malformed_forecast_is_a_corrupted_ledger(
    acme: Ledger, clock: Clock, change: dict[str, Any], why: str
) -> None:
    acme.record_usage(T, actual("6.00"))
    run_forecasts(acme, AlertBook(acme.table, clock), ForecastRules())
    [item] = acme.table.query_all(
        "pk = :p AND begins_with(sk, :f)", {":p": tenant_pk(T), ":f": FORECAST_PREFIX}
    )
    broken = {
        k: v for k, v in (item | {"breach_on": "2026-11-30"} | change).items() if v is not None
    }

    with pytest.raises(LedgerCorrupted):
        ForecastItem.from_item(broken)


def test_an_api_key_item_survives_the_codec_and_verifies(acme: Ledger) -> None:
    keys = ApiKeys(acme.table, frozenset(), cache_seconds=0)
    issued = keys.issue(T, acme.now())

    item = acme.table.get((api_key_pk(issued.key_id), API_KEY_SK), consistent=True)

    assert item is not None
    key = ApiKeyItem.from_item(item)
    assert key == ApiKeyItem(issued.key_id, T, fingerprint(issued.api_key), acme.now())
    assert key.to_item() == without_keys(item)
    assert keys.verify(issued.api_key) is not None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"fingerprint": None}, "no fingerprint: nothing to compare with"),
        ({"fingerprint": 42}, "a fingerprint that is not a string"),
        ({"tenant_id": None}, "a key bound to no tenant"),
        ({"created_at": "today"}, "a time that does not parse"),
    ],
)
def test_a_malformed_api_key_item_is_a_corrupted_ledger_where_it_is_verified(
    acme: Ledger, change: dict[str, Any], why: str
) -> None:
    keys = ApiKeys(acme.table, frozenset(), cache_seconds=0)
    issued = keys.issue(T, acme.now())
    key = (api_key_pk(issued.key_id), API_KEY_SK)
    item = acme.table.get(key, consistent=True)
    assert item is not None
    broken = {k: v for k, v in (without_keys(item) | change).items() if v is not None}
    acme.table.put(ItemWrite(key=key, kind="Put", item=broken))

    with pytest.raises(LedgerCorrupted):
        keys.verify(issued.api_key)


@pytest.mark.parametrize("plan", ["pro", None])
def test_a_tenant_registration_survives_the_codec(ledger: Ledger, plan: str | None) -> None:
    created = ledger.create_tenant(T, "Acme Inc", plan)

    item = ledger.table.get((tenant_pk(T), TENANT_SK), consistent=True)

    assert item is not None and created == TenantItem(T, "Acme Inc", ledger.now(), plan)
    assert created.to_item() == without_keys(item)
    assert ledger.tenant(T) == created
    assert ("plan" in item) is (plan is not None)


def test_a_registration_without_a_name_is_corrupted() -> None:
    with pytest.raises(LedgerCorrupted):
        TenantItem.from_item({"pk": "TENANT#acme", "sk": "TENANT", "tenant_id": T})


def test_the_engines_encoder_writes_only_what_a_record_declares() -> None:
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)

    encoded = CostRecordItem.encode(
        {"status": "released", "settled_at": at, "user_id": None, TTL_ATTRIBUTE: 1}
    )

    assert encoded == {
        "status": "released",
        "settled_at": "2026-11-25T12:00:00.000000Z",
        TTL_ATTRIBUTE: 1,
    }
    with pytest.raises(ValueError, match="no attribute 'cost'"):
        CostRecordItem.encode({"status": "committed", "cost": usd("1")})

"""The single-item reserve (D70–D72) on moto: one UpdateItem whose new image is the figures,
holds in the counter, settled by one transaction; when it applies and when the transaction
decides instead; a stale policy version; a forged id; expiry by a refusal and the sweeper."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from costguard.errors import (
    OverrunRejected,
    Paused,
    QuotaExceeded,
    ReservationNotFound,
    ReservationNotHeld,
)
from costguard.ledger import Ledger, LedgerTable
from costguard.ledger.in_item import MAX_HOLDS, attribute, listed_pk
from costguard.ledger.policies import PLATFORM_FRESH_SECONDS
from costguard.ledger.terms import ReservationRef
from costguard.models import TenantSettings
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.settings import Settings
from costguard.store.counters import HOLD_COUNT
from costguard.store.keys import records_pk, tenant_pk
from costguard.store.schema import HOLDS_PK, HOLDS_SK

from tests.conftest import Clock
from tests.helpers import actual, estimate, quota_state, set_quota, usd

T = "acme"
Q = "tenant:llm:month"
MONTH = (tenant_pk(T), "MONTH#2026-11")


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, Q, "10.00")
    set_quota(ledger, T, "tenant:all:month", "20.00")
    # The period's first write is a transaction: it creates the counter
    first = ledger.reserve(T, estimate("0.01"))
    assert not ReservationRef.parse(first.reservation_id).in_item
    ledger.release(T, first.reservation_id)
    return ledger


@pytest.fixture
def calls(acme: Ledger) -> Iterator[list[str]]:
    """The DynamoDB operations the ledger sends, in order."""
    sent: list[str] = []
    send = acme.table._send

    def counting(operation: str, **kwargs: Any) -> Any:
        sent.append(operation)
        return send(operation, **kwargs)

    acme.table._send = counting  # type: ignore[method-assign]
    yield sent
    acme.table._send = send  # type: ignore[method-assign]


def _counter(ledger: Ledger) -> dict[str, Any]:
    item = ledger.table.get(MONTH)
    assert item is not None
    return item


def _other_process(ledger: Ledger, clock: Clock) -> Ledger:
    return Ledger(ledger.table, ledger.settings, clock=clock)


def test_a_default_reserve_is_one_update_item_whose_new_image_is_the_figures(
    acme: Ledger, calls: list[str]
) -> None:
    r = acme.reserve(T, estimate("2.50"))

    assert calls == ["update_item"]
    assert ReservationRef.parse(r.reservation_id).in_item
    figures = {q.quota_id: (q.limit_usd, q.spent_usd, q.reserved_usd) for q in r.quotas or []}
    assert figures == {
        Q: (usd("10.00"), usd("0"), usd("2.50")),
        "tenant:all:month": (usd("20.00"), usd("0"), usd("2.50")),
    }
    counter = _counter(acme)
    ref = ReservationRef.parse(r.reservation_id)
    assert counter[attribute(ref)]["p"] == ref.terms
    assert counter[HOLD_COUNT] == 1
    assert (counter[HOLDS_PK], counter[HOLDS_SK]) == (listed_pk(T), "MONTH#2026-11")
    assert acme.table.get((records_pk(T), str(ref.ulid))) is None  # no record until settled
    assert acme.reconcile(T) == []


def test_a_commit_is_one_transaction_and_a_retry_answers_the_first_record(
    acme: Ledger, calls: list[str]
) -> None:
    r = acme.reserve(T, estimate("2.50"))
    calls.clear()

    first = acme.commit(T, r.reservation_id, actual("1.25"))
    again = acme.commit(T, r.reservation_id, actual("1.25"))

    assert calls[0] == "transact_write_items" and calls.count("transact_write_items") == 2
    assert first == again
    assert (first.status, first.cost_usd, first.estimated_usd) == (
        "committed",
        usd("1.25"),
        usd("2.50"),
    )
    q = quota_state(acme, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (usd("1.25"), usd("0"))
    assert attribute(ReservationRef.parse(r.reservation_id)) not in _counter(acme)
    assert _counter(acme)[HOLD_COUNT] == 0
    assert acme.reconcile(T) == []
    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, r.reservation_id, actual("2"))
    assert refused.value.status == "committed with a different body"


def test_a_forged_id_is_unknown_and_changes_nothing(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("2.50"))
    forged = r.reservation_id.replace("~2.50~", "~0.01~")
    before = _counter(acme)

    with pytest.raises(ReservationNotFound):
        acme.commit(T, forged, actual("0.01"))
    with pytest.raises(ReservationNotFound):
        acme.release(T, forged)

    assert _counter(acme) == before
    assert acme.reconcile(T) == []


def test_an_id_claiming_an_in_item_hold_on_two_counters_is_unknown(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("1"))
    ulid = r.reservation_id.split("~", 1)[0]

    with pytest.raises(ReservationNotFound):
        ReservationRef.parse(f"{ulid}~l~1~@td-l.tm-l~")


def test_release_gives_the_hold_back_once_and_answers_a_late_commit(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("2.50"))

    first = acme.release(T, r.reservation_id)
    again = acme.release(T, r.reservation_id)

    assert (first.status, first.released_usd) == ("released", usd("2.50"))
    assert (again.status, again.released_usd) == ("released", usd("0"))
    assert quota_state(acme, T, Q).reserved_usd == 0
    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, r.reservation_id, actual("1"))
    assert refused.value.status == "released"
    assert acme.reconcile(T) == []


def test_usage_unknown_charges_the_hold_read_from_the_counter_once(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("2.50"))

    first = acme.commit(T, r.reservation_id, None)
    again = acme.commit(T, r.reservation_id, None)

    assert first == again
    assert (first.cost_usd, first.usage_unknown, first.settled_by) == (
        usd("2.50"),
        True,
        "usage_unknown",
    )
    assert quota_state(acme, T, Q).spent_usd == usd("2.50")
    assert acme.reconcile(T) == []


def test_an_overrun_rejected_charges_the_hold(acme: Ledger) -> None:
    acme.put_tenant_settings(T, TenantSettings(overrun="reject"))
    r = acme.reserve(T, estimate("1"))

    with pytest.raises(OverrunRejected) as rejected:
        acme.commit(T, r.reservation_id, actual("3"))

    assert (rejected.value.record.cost_usd, rejected.value.record.actual_usd) == (
        usd("1"),
        usd("3"),
    )
    assert quota_state(acme, T, Q).spent_usd == usd("1")
    assert acme.reconcile(T) == []


@pytest.mark.parametrize(("on_expiry", "charged"), [("charge", usd("2.50")), ("release", None)])
def test_a_late_commit_settles_the_expired_hold_by_the_setting_exactly_once(
    acme: Ledger, clock: Clock, on_expiry: str, charged: Decimal | None
) -> None:
    acme.put_tenant_settings(T, TenantSettings(on_expiry=on_expiry))
    r = acme.reserve(T, estimate("2.50"), ttl_seconds=60)
    clock.advance(seconds=61)

    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, r.reservation_id, actual("1"))
    with pytest.raises(ReservationNotHeld) as again:
        acme.commit(T, r.reservation_id, actual("1"))

    assert (refused.value.status, refused.value.charged_usd) == ("expired", charged)
    assert again.value.status == refused.value.status
    q = quota_state(acme, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (charged or usd("0"), usd("0"))
    assert acme.expire_due() == 0
    assert acme.release(T, r.reservation_id).status == "expired"
    assert acme.reconcile(T) == []


def test_the_sweeper_settles_expired_in_item_holds_once(acme: Ledger, clock: Clock) -> None:
    held = [acme.reserve(T, estimate("1"), ttl_seconds=60) for _ in range(3)]
    clock.advance(seconds=61)

    assert acme.expire_due() == 3
    assert acme.expire_due() == 0

    q = quota_state(acme, T, Q)
    assert (q.spent_usd, q.reserved_usd) == (usd("3"), usd("0"))
    for r in held:
        record = acme.table.get((records_pk(T), r.reservation_id.split("~", 1)[0]))
        assert record is not None and record["settled_by"] == "expiry"
    assert acme.reconcile(T) == []


def test_a_refused_reserve_expires_due_in_item_holds_then_admits(
    acme: Ledger, clock: Clock
) -> None:
    acme.reserve(T, estimate("9"), ttl_seconds=60)
    clock.advance(seconds=61)
    acme.put_tenant_settings(T, TenantSettings(on_expiry="release"))

    r = acme.reserve(T, estimate("5"))

    assert ReservationRef.parse(r.reservation_id).in_item
    assert quota_state(acme, T, Q).reserved_usd == usd("5")
    assert acme.reconcile(T) == []


def test_a_refusal_names_the_binding_quota_from_the_item_as_it_was(acme: Ledger) -> None:
    acme.reserve(T, estimate("8"))
    before = _counter(acme)

    with pytest.raises(QuotaExceeded) as refused:
        acme.reserve(T, estimate("2.01"))

    b = refused.value.binding
    assert (b.quota_id, b.held_usd, b.remaining_usd) == (Q, usd("8"), usd("2.00"))
    assert _counter(acme) == before


def test_a_fifth_concurrent_hold_takes_the_transaction(acme: Ledger) -> None:
    ids = [acme.reserve(T, estimate("1")).reservation_id for _ in range(MAX_HOLDS + 1)]

    assert [ReservationRef.parse(i).in_item for i in ids] == [True] * MAX_HOLDS + [False]
    assert quota_state(acme, T, Q).reserved_usd == usd("5")
    assert acme.reconcile(T) == []
    for i in ids:
        acme.commit(T, i, actual("0.5"))
    assert quota_state(acme, T, Q).spent_usd == usd("2.5")
    assert acme.reconcile(T) == []


@pytest.mark.parametrize(
    "reserve",
    [
        pytest.param(lambda lg: lg.reserve(T, estimate("1", user_id="bob")), id="user_quota"),
        pytest.param(
            lambda lg: lg.reserve(T, estimate("1"), idempotency_key="k1"), id="idempotency_key"
        ),
        pytest.param(
            lambda lg: lg.reserve(T, estimate("1", conversation_id="c1")), id="attribution"
        ),
    ],
)
def test_what_one_item_cannot_prove_takes_the_transaction(acme: Ledger, reserve: Any) -> None:
    set_quota(acme, T, "user:bob:llm:day", "5")

    r = reserve(acme)

    assert not ReservationRef.parse(r.reservation_id).in_item


def test_a_sliced_quota_takes_the_transaction(acme: Ledger) -> None:
    acme.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal("10"), slices=2))

    assert not ReservationRef.parse(acme.reserve(T, estimate("1")).reservation_id).in_item


def test_quotas_on_two_counter_items_take_the_transaction(acme: Ledger) -> None:
    set_quota(acme, T, "tenant:llm:day", "5")

    assert not ReservationRef.parse(acme.reserve(T, estimate("1")).reservation_id).in_item


def test_a_stale_policy_version_is_refused_by_the_counter_and_retried(
    acme: Ledger, clock: Clock
) -> None:
    # Given another process whose cached policy says the limit is 10
    other = _other_process(acme, clock)
    other.reserve(T, estimate("1"))

    # When this process adds a day quota of $1 (on another counter item)
    set_quota(acme, T, "tenant:llm:day", "1")

    # Then the other process's next reserve is refused by it at once: its month counter
    # carries the new version, the write fails, the policy is re-read
    with pytest.raises(QuotaExceeded) as refused:
        other.reserve(T, estimate("1.5"))
    assert refused.value.binding.quota_id == "tenant:llm:day"
    assert quota_state(acme, T, Q).reserved_usd == usd("1")
    assert acme.reconcile(T) == []


def test_a_pause_applies_to_the_next_single_item_reserve_of_any_process(
    acme: Ledger, clock: Clock
) -> None:
    other = _other_process(acme, clock)
    other.reserve(T, estimate("1"))

    acme.set_paused(T, True)

    with pytest.raises(Paused):
        other.reserve(T, estimate("1"))


def test_a_new_platform_quota_binds_every_process_within_the_announced_delay(
    acme: Ledger, clock: Clock
) -> None:
    # Given another process that read the platform policy just now (no platform quota)
    other = _other_process(acme, clock)
    assert ReservationRef.parse(other.reserve(T, estimate("1")).reservation_id).in_item

    # When a platform quota is written
    set_quota(acme, None, "platform:llm:month", "0.5")

    # Then within the announced delay the other process may still reserve alone...
    assert ReservationRef.parse(other.reserve(T, estimate("0.1")).reservation_id).in_item
    # ...and once its platform read is older than that, the platform quota binds it
    other._platform_read_at = time.monotonic() - PLATFORM_FRESH_SECONDS - 0.1
    with pytest.raises(QuotaExceeded) as refused:
        other.reserve(T, estimate("1"))
    assert refused.value.binding.quota_id == "platform:llm:month"


def test_a_counter_not_stamped_with_the_version_takes_the_transaction(acme: Ledger) -> None:
    w = acme.table  # an item the policy writes never stamped (a counter from before D71)
    w.client.update_item(
        TableName=w.name,
        Key={"pk": {"S": MONTH[0]}, "sk": {"S": MONTH[1]}},
        UpdateExpression="REMOVE pv",
    )

    r = acme.reserve(T, estimate("1"))

    assert not ReservationRef.parse(r.reservation_id).in_item
    assert ReservationRef.parse(acme.reserve(T, estimate("1")).reservation_id).in_item


def test_without_the_setting_every_reserve_is_a_transaction(moto_client: Any, clock: Clock) -> None:
    s = Settings(table_name="costguard-test", single_item_reserve=False)
    ledger = Ledger(LedgerTable(moto_client, s.table_name, s), s, clock=clock)
    ledger.create_tenant(T, "Acme Inc")
    set_quota(ledger, T, Q, "10")

    assert not any(
        ReservationRef.parse(ledger.reserve(T, estimate("1")).reservation_id).in_item
        for _ in range(3)
    )


def test_reconcile_reports_a_hold_count_that_disagrees_with_the_holds(acme: Ledger) -> None:
    acme.reserve(T, estimate("1"))
    acme.table.client.update_item(
        TableName=acme.table.name,
        Key={"pk": {"S": MONTH[0]}, "sk": {"S": MONTH[1]}},
        UpdateExpression="ADD hn :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )

    assert acme.reconcile(T) == [f"{MONTH} hn 2 != 1"]


def test_the_sweeper_drops_a_counter_from_its_list_once_no_hold_can_remain(
    acme: Ledger, clock: Clock
) -> None:
    # Given November's counter listed by an in-item hold, settled since
    r = acme.reserve(T, estimate("1"))
    acme.commit(T, r.reservation_id, actual("1"))

    # When the sweeper runs in December, within a day plus the longest TTL of its end
    clock.at = clock.at.replace(month=12, day=2, hour=23)
    acme.expire_due()
    listed_in_december = HOLDS_PK in _counter(acme)
    # ...and after that
    clock.advance(days=1, seconds=acme.settings.max_reservation_ttl_seconds)
    acme.expire_due()

    # Then it stays listed while a late hold could remain, and leaves the list after
    assert listed_in_december
    assert HOLDS_PK not in _counter(acme) and HOLDS_SK not in _counter(acme)
    assert _counter(acme)[HOLD_COUNT] == 0


def test_the_sweepers_walk_of_in_item_holds_runs_at_its_cadence(
    moto_client: Any, clock: Clock
) -> None:
    # Given a sweeper that walks the listed counters every 10 minutes, and two expired holds
    settings = Settings(table_name="costguard-test", held_sweep_minutes=10)
    ledger = Ledger(LedgerTable(moto_client, settings.table_name, settings), settings, clock=clock)
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, Q, "10.00")
    ledger.release(T, ledger.reserve(T, estimate("0.01")).reservation_id)  # the counter
    for _ in range(2):
        assert ReservationRef.parse(
            ledger.reserve(T, estimate("1"), ttl_seconds=60).reservation_id
        ).in_item
    clock.at = clock.at.replace(minute=3)  # 12:03, the holds expired at 12:01

    # When the sweeper runs off its cadence, Then it leaves them
    assert ledger.expire_due() == 0
    assert quota_state(ledger, T, Q).reserved_usd == usd("2")

    # When it runs at a multiple of 10 minutes, Then it settles both
    clock.at = clock.at.replace(minute=10)
    assert ledger.expire_due() == 2
    assert quota_state(ledger, T, Q).reserved_usd == usd("0")
    assert ledger.reconcile(T) == []


def test_a_tenants_own_expiry_walks_its_counters_whatever_the_cadence(
    moto_client: Any, clock: Clock
) -> None:
    settings = Settings(table_name="costguard-test", held_sweep_minutes=10)
    ledger = Ledger(LedgerTable(moto_client, settings.table_name, settings), settings, clock=clock)
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, Q, "10.00")
    ledger.release(T, ledger.reserve(T, estimate("0.01")).reservation_id)
    ledger.reserve(T, estimate("1"), ttl_seconds=60)
    clock.at = clock.at.replace(minute=3)

    assert ledger.expire_due(T) == 1

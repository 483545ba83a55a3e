"""The ledger's operations and error paths, on moto (single-threaded)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, NoReturn

import pytest
from costguard.errors import (
    IdempotencyMismatch,
    InvalidRequest,
    Paused,
    QuotaExceeded,
    QuotaNotFound,
    ReservationNotFound,
    ReservationNotHeld,
    TenantExists,
    UnknownPrice,
)
from costguard.ledger import Ledger, LedgerTable
from costguard.models import TenantSettings, Usage
from costguard.quotas import Mode, QuotaId
from costguard.settings import Enforcement, Settings

from tests.conftest import Clock
from tests.helpers import (
    actual,
    estimate,
    one_token_at_30_cents_per_million,
    quota_state,
    set_quota,
    usd,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


T = "acme"


@pytest.fixture(params=[True, False], ids=["single_item", "transactional"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Every test on both reserve paths: one UpdateItem on the counter (D70) and the
    transaction with a record."""
    return Settings(table_name="costguard-test", single_item_reserve=request.param)


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, "tenant:llm:month", "10.00")
    return ledger


def test_reserve_holds_the_estimate_and_reports_figures(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("2.50"))

    assert r.reserved_usd == usd("2.50")
    [q] = r.quotas or []
    assert (q.quota_id, q.limit_usd, q.spent_usd, q.reserved_usd, q.remaining_usd) == (
        "tenant:llm:month",
        usd("10.00"),
        usd("0"),
        usd("2.50"),
        usd("7.50"),
    )
    assert acme.reconcile(T) == []


def test_reserve_over_the_limit_names_the_binding_quota_and_writes_nothing(acme: Ledger) -> None:
    acme.reserve(T, estimate("8"))

    with pytest.raises(QuotaExceeded) as refused:
        acme.reserve(T, estimate("2.01"))

    b = refused.value.binding
    assert (b.quota_id, b.limit_usd, b.spent_usd, b.held_usd, b.remaining_usd) == (
        "tenant:llm:month",
        usd("10.00"),
        usd("0"),
        usd("8"),
        usd("2.00"),
    )
    assert refused.value.requested_usd == usd("2.01")
    assert b.retry_after_seconds == 6 * 86400 - 12 * 3600  # 2026-11-25T12:00 → 2026-12-01
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("8")
    assert len(acme.records(T, acme.now().replace(day=1), acme.now())) == 1


def test_an_estimate_above_the_whole_limit_is_refused_without_a_write(acme: Ledger) -> None:
    with pytest.raises(QuotaExceeded) as refused:
        acme.reserve(T, estimate("10.01"))
    assert refused.value.binding.remaining_usd == usd("10.00")
    assert acme.records(T, acme.now().replace(day=1), acme.now()) == []


def test_commit_moves_the_hold_to_spent_and_writes_the_record_and_rollup(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("1.00", user_id="u-1", conversation_id="c-9"))
    usage = Usage(
        resource="llm",
        model="gpt-4o",
        input_tokens=1200,
        output_tokens=400,
        cached_input_tokens=200,
        operation="chat",
    )

    record = acme.commit(T, r.reservation_id, usage)

    # (1000 × 2.50 + 200 × 1.25 + 400 × 10.00) / 1e6
    assert record.cost_usd == usd("0.00675")
    assert (record.status, record.model, record.provider, record.overrun) == (
        "committed",
        "gpt-4o",
        "openai",
        False,
    )
    assert record.user_id == "u-1" and record.operation == "chat"
    q = quota_state(acme, T, "tenant:llm:month")
    assert (q.spent_usd, q.reserved_usd, q.remaining_usd) == (
        usd("0.00675"),
        Decimal(0),
        usd("9.99325"),
    )
    [day] = acme.daily_rollups(T, acme.now(), acme.now())
    assert day.spent("llm") == day.spent() == usd("0.00675")
    assert day.by_model == {"openai/gpt-4o": usd("0.00675")} and day.calls == 1
    assert acme.reconcile(T) == []


def test_a_commit_retried_five_times_counts_once(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("1.00"))
    first = acme.commit(T, r.reservation_id, actual("0.40"))

    again = [acme.commit(T, r.reservation_id, actual("0.40")) for _ in range(5)]

    assert all(a.record_id == first.record_id and a.cost_usd == usd("0.40") for a in again)
    assert quota_state(acme, T, "tenant:llm:month").spent_usd == usd("0.40")
    assert acme.daily_rollups(T, acme.now(), acme.now())[0].spent() == usd("0.40")
    assert acme.reconcile(T) == []


def test_a_second_commit_with_another_body_is_refused(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("1.00"))
    acme.commit(T, r.reservation_id, actual("0.40"))

    with pytest.raises(ReservationNotHeld):
        acme.commit(T, r.reservation_id, actual("0.41"))
    assert quota_state(acme, T, "tenant:llm:month").spent_usd == usd("0.40")


def test_an_actual_above_the_estimate_is_recorded_and_flagged(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("1.00"))

    record = acme.commit(T, r.reservation_id, actual("1.30"))

    assert record.overrun is True and record.cost_usd == usd("1.30")
    assert quota_state(acme, T, "tenant:llm:month").remaining_usd == usd("8.70")
    assert acme.reconcile(T) == []


def test_release_returns_the_hold_once_and_blocks_a_later_commit(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("4"))

    first = acme.release(T, r.reservation_id)
    second = acme.release(T, r.reservation_id)

    assert (first.status, first.released_usd) == ("released", usd("4"))
    assert (second.status, second.released_usd) == ("released", Decimal(0))
    assert quota_state(acme, T, "tenant:llm:month").remaining_usd == usd("10.00")
    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, r.reservation_id, actual("1"))
    assert refused.value.status == "released"


def test_a_committed_reservation_cannot_be_released(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("1"))
    acme.commit(T, r.reservation_id, actual("1"))
    with pytest.raises(ReservationNotHeld):
        acme.release(T, r.reservation_id)


@pytest.mark.parametrize(
    "bad",
    ["nope", "01JDX3V5Y4ZK9Q8W7E6R5T4Y3U~l~1~tm-l~", "01JDX3V5Y4ZK9Q8W7E6R5T4Y3U~x~1~~", "~~~~"],
)
def test_unknown_or_malformed_reservation_ids_are_not_found(acme: Ledger, bad: str) -> None:
    with pytest.raises(ReservationNotFound):
        acme.commit(T, bad, actual("1"))
    with pytest.raises(ReservationNotFound):
        acme.release(T, bad)


def test_a_tampered_estimate_in_the_id_changes_nothing(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("4"))
    forged = r.reservation_id.replace("~4~", "~0.01~")

    with pytest.raises(ReservationNotFound):
        acme.release(T, forged)
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("4")


def test_another_tenant_cannot_settle_a_reservation(acme: Ledger) -> None:
    acme.create_tenant("globex", "Globex")
    r = acme.reserve(T, estimate("4"))
    with pytest.raises(ReservationNotFound):
        acme.commit("globex", r.reservation_id, actual("1"))
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("4")


def test_commit_checks_resource_and_user(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("1", user_id="u-1"))
    with pytest.raises(InvalidRequest) as wrong_resource:
        acme.commit(T, r.reservation_id, actual("1", resource="sandbox"))
    assert wrong_resource.value.field == "resource"
    with pytest.raises(InvalidRequest) as wrong_user:
        acme.commit(T, r.reservation_id, actual("1", user_id="u-2"))
    assert wrong_user.value.field == "user_id"


def test_an_expired_hold_is_returned_lazily_by_the_reserve_it_would_block(
    acme: Ledger, clock: Clock
) -> None:
    acme.put_tenant_settings(T, TenantSettings(on_expiry="release"))
    acme.reserve(T, estimate("9"), ttl_seconds=60)
    clock.advance(seconds=61)

    r = acme.reserve(T, estimate("5"))

    assert r.reserved_usd == usd("5")
    q = quota_state(acme, T, "tenant:llm:month")
    assert (q.reserved_usd, q.spent_usd) == (usd("5"), Decimal(0))
    assert acme.reconcile(T) == []


def test_the_sweeper_returns_expired_holds_and_a_late_commit_is_refused(
    acme: Ledger, clock: Clock
) -> None:
    late = acme.reserve(T, estimate("3"), ttl_seconds=30)
    live = acme.reserve(T, estimate("2"), ttl_seconds=300)
    clock.advance(seconds=31)

    assert acme.expire_due() == 1
    assert acme.expire_due() == 0

    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("2")
    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, late.reservation_id, actual("3"))
    assert refused.value.status == "expired"
    acme.commit(T, live.reservation_id, actual("2"))
    assert acme.reconcile(T) == []


def test_a_commit_after_expiry_returns_the_hold_itself(acme: Ledger, clock: Clock) -> None:
    r = acme.reserve(T, estimate("3"), ttl_seconds=30)
    clock.advance(seconds=30)
    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, r.reservation_id, actual("3"))
    assert refused.value.status == "expired"
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == 0
    assert acme.release(T, r.reservation_id).status == "expired"


def test_ttl_outside_bounds_is_invalid(acme: Ledger) -> None:
    with pytest.raises(InvalidRequest) as bad:
        acme.reserve(T, estimate("1"), ttl_seconds=0)
    assert bad.value.field == "ttl_seconds"


def test_soft_quota_never_refuses_and_grace_refuses_past_the_grace(ledger: Ledger) -> None:
    set_quota(ledger, T, "tenant:llm:day", "1", mode=Mode.SOFT)
    set_quota(ledger, T, "tenant:sandbox:day", "1", mode=Mode.SOFT, grace="10")

    ledger.reserve(T, estimate("5"))
    ledger.reserve(T, estimate("1.10", resource="sandbox"))
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve(T, estimate("0.01", resource="sandbox"))

    assert refused.value.binding.quota_id == "tenant:sandbox:day"
    assert quota_state(ledger, T, "tenant:llm:day").reserved_usd == usd("5")


def test_every_applicable_quota_is_held_and_the_tightest_binds(ledger: Ledger) -> None:
    set_quota(ledger, None, "platform:all:month", "1000")
    set_quota(ledger, T, "tenant:all:month", "100")
    set_quota(ledger, T, "tenant:llm:day", "50")
    set_quota(ledger, T, "user:u-1:llm:day", "3")
    set_quota(ledger, T, "user:u-2:llm:day", "1")

    r = ledger.reserve(T, estimate("2", user_id="u-1"))
    assert sorted(q.quota_id for q in r.quotas or []) == [
        "platform:all:month",
        "tenant:all:month",
        "tenant:llm:day",
        "user:u-1:llm:day",
    ]
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve(T, estimate("1.5", user_id="u-1"))
    assert refused.value.binding.quota_id == "user:u-1:llm:day"

    ledger.reserve(T, estimate("0.5", resource="sandbox", user_id="u-1"))  # user quota is llm
    assert quota_state(ledger, None, "platform:all:month").reserved_usd == usd("2.5")
    assert ledger.reconcile(T) == []


def test_a_paused_tenant_or_user_is_refused_until_unpaused(acme: Ledger) -> None:
    acme.set_paused(T, True)
    with pytest.raises(Paused) as paused:
        acme.reserve(T, estimate("1"))
    assert paused.value.user_id is None
    acme.set_paused(T, False)
    acme.set_paused(T, True, user_id="u-9")
    with pytest.raises(Paused) as paused_user:
        acme.reserve(T, estimate("1", user_id="u-9"))
    assert paused_user.value.user_id == "u-9"
    acme.reserve(T, estimate("1", user_id="u-8"))
    acme.set_paused(T, False, user_id="u-9")
    acme.reserve(T, estimate("1", user_id="u-9"))


def test_a_stale_policy_cache_is_caught_by_the_write_itself(
    moto_client: DynamoDBClient, settings: Settings, clock: Clock
) -> None:
    # Given two processes: one has cached the tenant's policy, the other changes it
    one = Ledger(LedgerTable(moto_client, settings.table_name, settings), settings, clock=clock)
    other = Ledger(LedgerTable(moto_client, settings.table_name, settings), settings, clock=clock)
    one.create_tenant(T, "Acme")
    one.reserve(T, estimate("1"))  # caches "no quotas"

    # When the other adds a quota and pauses a user
    set_quota(other, T, "tenant:llm:month", "1.50")

    # Then the first process's next reserve enforces it at once
    with pytest.raises(QuotaExceeded) as refused:
        one.reserve(T, estimate("2"))
    assert refused.value.binding.quota_id == "tenant:llm:month"
    other.set_paused(T, True)
    with pytest.raises(Paused):
        one.reserve(T, estimate("0.01"))


def test_lowering_a_limit_applies_to_the_current_period_at_once(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("6"))
    acme.commit(T, r.reservation_id, actual("6"))
    acme.reserve(T, estimate("1"))

    set_quota(acme, T, "tenant:llm:month", "7.5")

    q = quota_state(acme, T, "tenant:llm:month")
    assert (q.limit_usd, q.spent_usd, q.reserved_usd, q.remaining_usd) == (
        usd("7.5"),
        usd("6"),
        usd("1"),
        usd("0.5"),
    )
    with pytest.raises(QuotaExceeded):
        acme.reserve(T, estimate("0.51"))
    acme.reserve(T, estimate("0.5"))
    assert acme.reconcile(T) == []


def test_a_quota_added_mid_period_to_an_existing_counter_counts_from_then(acme: Ledger) -> None:
    set_quota(acme, T, "tenant:all:month", "5")
    acme.reserve(T, estimate("4"))
    with pytest.raises(QuotaExceeded):
        acme.reserve(T, estimate("2"))
    assert quota_state(acme, T, "tenant:all:month").remaining_usd == usd("1")


def test_delete_quota_and_unknown_quota(acme: Ledger) -> None:
    acme.delete_quota(T, QuotaId.parse("tenant:llm:month"))
    acme.reserve(T, estimate("50"))
    with pytest.raises(QuotaNotFound):
        acme.delete_quota(T, QuotaId.parse("tenant:llm:month"))


def test_malformed_quota_ids_are_invalid() -> None:
    for bad in ["tenant:llm", "user::llm:day", "tenant:gpu:month", "tenant:llm:year", "x:llm:day"]:
        with pytest.raises(InvalidRequest):
            QuotaId.parse(bad)


def test_period_rollover_needs_no_reset_and_late_commits_charge_their_period(
    acme: Ledger, clock: Clock
) -> None:
    clock.at = clock.at.replace(day=30, hour=23, minute=59, second=59)
    r = acme.reserve(T, estimate("9"), ttl_seconds=120)
    clock.advance(seconds=2)  # 2026-12-01T00:00:01

    fresh = acme.reserve(T, estimate("9"))
    acme.commit(T, r.reservation_id, actual("8"))

    assert fresh.quotas and fresh.quotas[0].period_key == "MONTH#2026-12"
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("9")
    nov = acme.table.get(("TENANT#acme", "MONTH#2026-11"))
    assert nov and (nov["q_llm_spent"], nov["q_llm_held"]) == (usd("8"), 0)
    assert acme.daily_rollups(T, clock.at.replace(month=11, day=30), clock.at)[0].spent() == 8
    assert acme.reconcile(T) == []


def test_a_price_change_applies_from_its_effective_date(acme: Ledger, clock: Clock) -> None:
    from costguard.pricing import ModelPrice

    acme.put_price(
        ModelPrice(
            "openai", "gpt-4o", usd("5"), usd("20"), usd("2.5"), clock.at.replace(day=26, hour=0)
        )
    )
    usage = Usage(resource="llm", model="gpt-4o", input_tokens=1_000_000, output_tokens=0)

    before = acme.record_usage(T, usage)
    clock.advance(days=1)
    after = acme.record_usage(T, usage)

    assert (before.cost_usd, after.cost_usd) == (usd("2.50"), usd("5"))
    assert after.price and after.price["effective_from"] == "2026-11-26T00:00:00Z"


def test_unknown_model_or_tier_is_a_typed_error_never_zero(acme: Ledger) -> None:
    with pytest.raises(UnknownPrice):
        acme.reserve(T, Usage(resource="llm", model="gpt-99", input_tokens=1))
    with pytest.raises(UnknownPrice):
        acme.reserve(T, Usage(resource="sandbox", tier="quantum", seconds="1"))


def test_a_configured_fallback_prices_unknown_models(
    moto_client: DynamoDBClient, clock: Clock
) -> None:
    s = Settings(
        table_name="costguard-test",
        fallback_input_per_million_usd=Decimal("10"),
        fallback_output_per_million_usd=Decimal("30"),
    )
    ledger = Ledger(LedgerTable(moto_client, s.table_name, s), s, clock=clock)
    record = ledger.record_usage(
        T, Usage(resource="llm", model="gpt-99", input_tokens=100_000, output_tokens=100_000)
    )
    assert record.cost_usd == usd("4")


def test_direct_record_is_atomic_with_quotas_and_refusable(acme: Ledger) -> None:
    acme.record_usage(T, actual("9"))
    with pytest.raises(QuotaExceeded):
        acme.record_usage(T, actual("2"))
    forced = acme.record_usage(T, actual("2"), enforce=False)
    assert forced.status == "recorded"
    assert quota_state(acme, T, "tenant:llm:month").spent_usd == usd("11")
    assert acme.reconcile(T) == []


def test_direct_record_with_an_idempotency_key_counts_once(acme: Ledger) -> None:
    first = acme.record_usage(T, actual("1"), idempotency_key="k-1")
    again = [acme.record_usage(T, actual("1"), idempotency_key="k-1") for _ in range(5)]

    assert {a.record_id for a in again} == {first.record_id}
    assert quota_state(acme, T, "tenant:llm:month").spent_usd == usd("1")
    with pytest.raises(IdempotencyMismatch):
        acme.record_usage(T, actual("2"), idempotency_key="k-1")


def test_check_is_a_dry_run(acme: Ledger) -> None:
    acme.reserve(T, estimate("8"))

    yes = acme.check(T, estimate("2"))
    no = acme.check(T, estimate("2.01"))

    assert (yes.allowed, no.allowed, no.binding_quota_id) == (True, False, "tenant:llm:month")
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("8")


def test_monitor_mode_counts_but_never_refuses(moto_client: DynamoDBClient, clock: Clock) -> None:
    s = Settings(table_name="costguard-test", enforcement=Enforcement.MONITOR)
    ledger = Ledger(LedgerTable(moto_client, s.table_name, s), s, clock=clock)
    set_quota(ledger, T, "tenant:llm:month", "1")
    ledger.set_paused(T, True)

    ledger.reserve(T, estimate("5"))

    assert quota_state(ledger, T, "tenant:llm:month").remaining_usd == usd("-4")


def test_a_tenant_is_created_once(ledger: Ledger) -> None:
    ledger.create_tenant(T, "Acme")
    with pytest.raises(TenantExists):
        ledger.create_tenant(T, "Acme again")
    with pytest.raises(InvalidRequest):
        ledger.create_tenant("Bad_Id", "x")


def test_a_commit_equal_to_its_estimate_leaves_exact_zeros(acme: Ledger) -> None:
    # 0.011100 - 0.0111 is Decimal("0E-6"): stored as a plain 0, which every store accepts
    r = acme.reserve(T, estimate("0.011100"))
    acme.commit(T, r.reservation_id, actual("0.0111"))
    again = acme.reserve(T, estimate("1"))
    assert again.reserved_usd == 1
    assert quota_state(acme, T, "tenant:llm:month").spent_usd == usd("0.0111")
    assert acme.reconcile(T) == []


def test_tiny_amounts_and_their_differences_stay_exact(acme: Ledger) -> None:
    one = one_token_at_30_cents_per_million(acme)
    r = acme.reserve(T, one)
    acme.commit(T, r.reservation_id, one)  # held 0.0000003 - 0.0000003 = 0E-7
    acme.record_usage(T, one)
    acme.reserve(T, one)
    q = quota_state(acme, T, "tenant:llm:month")
    assert (q.spent_usd, q.reserved_usd) == (usd("0.0000006"), usd("0.0000003"))
    assert acme.reconcile(T) == []


def test_fail_open_grants_unguarded_reservations_and_records_their_commit_once(
    moto_client: DynamoDBClient, clock: Clock
) -> None:
    from costguard.errors import LedgerUnavailable
    from costguard.settings import FailMode

    s = Settings(table_name="costguard-test", fail_mode=FailMode.OPEN)
    ledger = Ledger(LedgerTable(moto_client, s.table_name, s), s, clock=clock)
    set_quota(ledger, T, "tenant:llm:month", "10")
    working = ledger.table.transact

    def down(*_: object, **__: object) -> NoReturn:
        raise LedgerUnavailable("ledger unavailable: ConnectTimeoutError", 2)

    ledger.table.transact = down  # type: ignore[method-assign]
    r = ledger.reserve(T, estimate("3"))
    ledger.table.transact = working  # type: ignore[method-assign]

    assert (r.guarded, r.reserved_usd, r.reservation_id.startswith("open~")) == (
        False,
        Decimal(0),
        True,
    )
    first = ledger.commit(T, r.reservation_id, actual("2.5"))
    again = ledger.commit(T, r.reservation_id, actual("2.5"))
    assert (first.status, first.cost_usd, again.record_id) == (
        "recorded",
        usd("2.5"),
        first.record_id,
    )
    assert quota_state(ledger, T, "tenant:llm:month").spent_usd == usd("2.5")
    assert ledger.release(T, r.reservation_id).released_usd == 0
    assert ledger.reconcile(T) == []


def test_fail_closed_is_the_default(acme: Ledger) -> None:
    from costguard.errors import LedgerUnavailable

    def down(*_: object, **__: object) -> NoReturn:
        raise LedgerUnavailable("ledger unavailable: ConnectTimeoutError", 2)

    acme.table.transact = down  # type: ignore[method-assign]
    with pytest.raises(LedgerUnavailable):
        acme.reserve(T, estimate("1"))


def test_a_hold_made_is_returned_even_when_the_figures_cannot_be_read(acme: Ledger) -> None:
    from costguard.errors import LedgerUnavailable

    def down(*_: object, **__: object) -> NoReturn:
        raise LedgerUnavailable("ledger unavailable: ReadTimeoutError", 2)

    # The transactional reserve reads its figures after its write (D8); the single-item one
    # has them from its write (tests/unit/test_single_item.py)
    acme.settings = acme.settings.model_copy(update={"single_item_reserve": False})
    acme.reserve(T, estimate("0.5"))  # the policies are cached now
    working = acme.table.batch_get
    acme.table.batch_get = down  # type: ignore[method-assign]
    r = acme.reserve(T, estimate("1"))
    acme.table.batch_get = working  # type: ignore[method-assign]

    assert (r.reserved_usd, r.quotas) == (usd("1"), None)
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("1.5")

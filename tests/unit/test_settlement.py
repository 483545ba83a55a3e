"""No money escapes: worst-case holds, overruns, unknown usage and expiry (moto, one thread).

Rates from the shipped catalog: openai/gpt-4o $2.50/M input, $10.00/M output, at most 16,384
output tokens per call.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from costguard.alerts import AlertBook, AlertType, overrun_draft
from costguard.errors import InvalidRequest, OverrunRejected, QuotaExceeded, ReservationNotHeld
from costguard.ledger import Ledger
from costguard.models import TenantSettings, TenantSettingsState, Usage
from costguard.settings import FailMode, Settings
from costguard.store.keys import records_pk

from tests.conftest import Clock
from tests.helpers import actual, estimate, quota_state, set_quota, usd

T = "acme"


@pytest.fixture(params=[True, False], ids=["single_item", "transactional"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Every test on both reserve paths: one UpdateItem on the counter (D70) and the
    transaction with a record."""
    return Settings(table_name="costguard-test", single_item_reserve=request.param)


Q = "tenant:llm:month"


def gpt4o(input_tokens: int, output_tokens: int | None = None, **kw: object) -> Usage:
    return Usage(
        resource="llm",
        provider="openai",
        model="gpt-4o",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        **kw,
    )


def list_price(input_tokens: int, output_tokens: int) -> Decimal:
    return (input_tokens * Decimal("2.50") + output_tokens * Decimal("10.00")) / 1_000_000


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.create_tenant(T, "Acme Inc")
    set_quota(ledger, T, Q, "10.00")
    return ledger


def figures(ledger: Ledger) -> tuple[Decimal, Decimal]:
    q = quota_state(ledger, T, Q)
    return q.spent_usd, q.reserved_usd


# ---------------------------------------------------------------- worst-case holds
def test_a_reserve_without_an_output_cap_holds_the_models_maximum_output(acme: Ledger) -> None:
    r = acme.reserve(T, gpt4o(2_000))

    assert r.reserved_usd == list_price(2_000, 16_384) == usd("0.16884")
    assert r.hold is not None
    assert (r.hold.basis, r.hold.output_tokens, r.hold.output_cap_from) == (
        "tokens",
        16_384,
        "catalog",
    )
    assert r.hold.priced_as == "openai/gpt-4o"


def test_output_tokens_on_a_reserve_is_the_cap_the_hold_is_priced_with(acme: Ledger) -> None:
    r = acme.reserve(T, gpt4o(2_000, 800))

    assert r.reserved_usd == list_price(2_000, 800) == usd("0.013")
    assert r.hold is not None and r.hold.output_cap_from == "request"


def test_a_reserve_without_token_counts_is_refused_on_a_nearly_exhausted_quota(
    acme: Ledger,
) -> None:
    set_quota(acme, T, Q, "0.01")

    with pytest.raises(QuotaExceeded) as refused:
        acme.reserve(T, Usage(resource="llm", provider="openai", model="gpt-4o"))

    assert refused.value.requested_usd == list_price(0, 16_384)
    assert figures(acme) == (usd("0"), usd("0"))


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        (Usage(resource="llm", estimated_cost_usd="0"), "estimated_cost_usd"),
        (Usage(resource="llm", cost_usd="0"), "cost_usd"),
        (gpt4o(0, 0), "output_tokens"),
        (Usage(resource="sandbox", tier="standard", seconds="0"), "seconds"),
    ],
)
def test_a_hold_of_zero_is_refused_naming_the_field(acme: Ledger, usage: Usage, field: str) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        acme.reserve(T, usage)

    assert invalid.value.field == field
    assert figures(acme) == (usd("0"), usd("0"))


def test_a_dry_run_check_uses_the_same_worst_case(acme: Ledger) -> None:
    assert acme.check(T, gpt4o(2_000)).requested_usd == usd("0.16884")


# ---------------------------------------------------------------- overruns
def test_a_commit_above_its_hold_is_recorded_in_full_and_blocks_new_reserves(
    acme: Ledger,
) -> None:
    set_quota(acme, T, Q, "0.02")
    r = acme.reserve(T, estimate("0.01"))

    record = acme.commit(T, r.reservation_id, actual("0.05"))

    assert (record.cost_usd, record.overrun, record.overrun_usd) == (usd("0.05"), True, usd("0.04"))
    assert record.settled_by == "commit"
    assert figures(acme) == (usd("0.05"), usd("0"))  # past the limit: money spent is never dropped
    with pytest.raises(QuotaExceeded):
        acme.reserve(T, estimate("0.000001"))
    assert acme.reconcile(T) == []


def test_overrun_reject_charges_the_hold_and_answers_the_same_on_every_retry(
    acme: Ledger,
) -> None:
    acme.put_tenant_settings(T, TenantSettings(overrun="reject"))
    r = acme.reserve(T, estimate("0.01"))

    for _ in range(3):
        with pytest.raises(OverrunRejected) as rejected:
            acme.commit(T, r.reservation_id, actual("0.05"))
        assert (rejected.value.charged_usd, rejected.value.actual_usd) == (
            usd("0.01"),
            usd("0.05"),
        )

    assert figures(acme) == (usd("0.01"), usd("0"))
    assert acme.reconcile(T) == []


def test_a_commit_within_its_hold_is_not_an_overrun_under_reject(acme: Ledger) -> None:
    acme.put_tenant_settings(T, TenantSettings(overrun="reject"))
    r = acme.reserve(T, estimate("0.01"))

    record = acme.commit(T, r.reservation_id, actual("0.01"))

    assert (record.cost_usd, record.overrun_usd, record.settled_by) == (
        usd("0.01"),
        usd("0"),
        "commit",
    )


def test_an_overrun_is_alerted_once_per_reservation(acme: Ledger, clock: Clock) -> None:
    r = acme.reserve(T, estimate("0.01"))
    acme.commit(T, r.reservation_id, actual("0.05"))
    ulid = r.reservation_id.split("~", 1)[0]
    new = acme.table.get((records_pk(T), ulid))
    assert new is not None
    old = {**new, "status": "held"}
    keys = {"pk": records_pk(T), "sk": ulid}
    book = AlertBook(acme.table, clock)

    draft = overrun_draft(keys, old, new)
    assert draft is not None and draft.alert_type is AlertType.OVERRUN
    created = [book.record([draft]) for _ in range(3)]  # the stream delivers at least once

    assert [len(c) for c in created] == [1, 0, 0]
    (alert,) = book.recent(T)[0]
    assert alert.details["overrun_usd"] == "0.040000"
    assert overrun_draft(keys, new, new) is None  # a later change of the record: no alert


def test_a_commit_within_its_hold_is_not_alerted(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("0.05"))
    acme.commit(T, r.reservation_id, actual("0.05"))
    ulid = r.reservation_id.split("~", 1)[0]
    new = acme.table.get((records_pk(T), ulid))

    assert overrun_draft({"pk": records_pk(T), "sk": ulid}, {"status": "held"}, new) is None


# ---------------------------------------------------------------- unknown usage
def test_usage_unknown_charges_the_whole_hold_once(acme: Ledger) -> None:
    r = acme.reserve(T, gpt4o(2_000, 800, user_id="u-1"))

    records = [acme.commit(T, r.reservation_id, None) for _ in range(3)]

    assert {x.record_id for x in records} == {records[0].record_id}
    first = records[0]
    assert (first.cost_usd, first.usage_unknown, first.settled_by) == (
        usd("0.013"),
        True,
        "usage_unknown",
    )
    assert (first.model, first.input_tokens, first.output_tokens) == ("gpt-4o", 2_000, 800)
    assert figures(acme) == (usd("0.013"), usd("0"))
    assert acme.reconcile(T) == []
    day = acme.daily_rollups(T, acme.now(), acme.now())
    assert day[0].by_model["openai/gpt-4o"] == usd("0.013")


def test_usage_unknown_after_a_known_commit_is_refused(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("0.05"))
    acme.commit(T, r.reservation_id, actual("0.02"))

    with pytest.raises(ReservationNotHeld):
        acme.commit(T, r.reservation_id, None)
    assert figures(acme) == (usd("0.02"), usd("0"))


def test_usage_unknown_on_a_released_reservation_is_refused(acme: Ledger) -> None:
    r = acme.reserve(T, estimate("0.05"))
    acme.release(T, r.reservation_id)

    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, r.reservation_id, None)

    assert refused.value.status == "released"
    assert figures(acme) == (usd("0"), usd("0"))


# ---------------------------------------------------------------- expiry
def test_an_expired_hold_is_charged_by_default_and_a_late_commit_is_refused(
    acme: Ledger, clock: Clock
) -> None:
    r = acme.reserve(T, estimate("0.30"), ttl_seconds=60)
    clock.advance(seconds=61)

    assert acme.expire_due() == 1
    assert acme.expire_due() == 0

    assert figures(acme) == (usd("0.30"), usd("0"))
    with pytest.raises(ReservationNotHeld) as refused:
        acme.commit(T, r.reservation_id, actual("0.10"))
    assert refused.value.status == "expired"
    assert acme.release(T, r.reservation_id).status == "expired"
    assert figures(acme) == (usd("0.30"), usd("0"))
    (record,) = acme.settled_records(T, clock.at.replace(day=1), clock.at, limit=10)[0]
    assert (record.settled_by, record.cost_usd) == ("expiry", usd("0.30"))
    assert acme.reconcile(T) == []


def test_a_late_commit_settles_an_unswept_expired_hold_by_the_setting(
    acme: Ledger, clock: Clock
) -> None:
    r = acme.reserve(T, estimate("0.30"), ttl_seconds=60)
    clock.advance(seconds=61)

    with pytest.raises(ReservationNotHeld):
        acme.commit(T, r.reservation_id, actual("0.10"))

    assert figures(acme) == (usd("0.30"), usd("0"))


def test_on_expiry_release_returns_the_hold(acme: Ledger, clock: Clock) -> None:
    acme.put_tenant_settings(T, TenantSettings(on_expiry="release"))
    acme.reserve(T, estimate("0.30"), ttl_seconds=60)
    clock.advance(seconds=61)

    assert acme.expire_due() == 1

    assert figures(acme) == (usd("0"), usd("0"))
    assert acme.reconcile(T) == []


def test_a_lazily_expired_hold_is_charged_too(acme: Ledger, clock: Clock) -> None:
    set_quota(acme, T, Q, "1.00")
    acme.reserve(T, estimate("0.90"), ttl_seconds=60)
    clock.advance(seconds=61)

    with pytest.raises(QuotaExceeded):  # the charged hold leaves 0.10
        acme.reserve(T, estimate("0.50"))

    assert figures(acme) == (usd("0.90"), usd("0"))
    acme.reserve(T, estimate("0.10"))


def test_tenant_settings_default_and_round_trip(acme: Ledger) -> None:
    assert acme.tenant_settings(T) == TenantSettingsState(overrun="record", on_expiry="charge")

    acme.put_tenant_settings(T, TenantSettings(overrun="reject", on_expiry="release"))

    assert acme.tenant_settings(T) == TenantSettingsState(overrun="reject", on_expiry="release")


# ---------------------------------------------------------------- fail open
def test_usage_unknown_on_a_fail_open_reservation_charges_its_worst_case(
    ledger: Ledger, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.create_tenant(T, "Acme")
    set_quota(ledger, T, Q, "10.00")
    ledger.price_book()  # warm, as a running function's is
    open_settings = settings.model_copy(update={"fail_mode": FailMode.OPEN})
    monkeypatch.setattr(ledger, "settings", open_settings)
    from costguard.errors import LedgerUnavailable

    def down(*_: object, **__: object) -> None:
        raise LedgerUnavailable("down")

    monkeypatch.setattr(ledger.table, "transact", down)
    r = ledger.reserve(T, gpt4o(2_000, 800))
    assert not r.guarded
    monkeypatch.undo()

    record = ledger.commit(T, r.reservation_id, None)

    assert record.cost_usd == usd("0.013")
    assert quota_state(ledger, T, Q).spent_usd == usd("0.013")

"""The counter items' codec (costguard.store.counters, D114) against what the ledger really
writes: every field kind (a quota's figures, a slice's grant, a lease and the pool's lessees, an
in-item hold, the policy stamp, the hold count) survives a decode and an encode, and a malformed
item is a corrupted ledger where it is decoded, never a KeyError or TypeError downstream."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from costguard.alerts.detection import Rule, crossings
from costguard.errors import LedgerCorrupted
from costguard.ledger import Ledger
from costguard.ledger import escrow as E
from costguard.ledger.terms import ReservationRef
from costguard.models import Usage
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.store.codec import iso
from costguard.store.counters import (
    CounterItem,
    InItemHold,
    LeaseTerms,
    QuotaFields,
    figures_changed,
    quota_fields,
)
from costguard.store.keys import tenant_pk
from costguard.store.schema import HOLDS_PK, HOLDS_SK

from tests.conftest import Clock
from tests.helpers import estimate, set_quota, usd

T = "acme"
MONTH = (tenant_pk(T), "MONTH#2026-11")
KEYS_AND_LISTING = {"pk", "sk", HOLDS_PK, HOLDS_SK}
"""What the codec leaves to the writes that set them: the keys and the `holds` listing."""


def _parts(item: dict[str, Any]) -> tuple[Any, ...]:
    """Everything the codec decodes of a counter item."""
    view = CounterItem(item)
    holds = sorted(view.holds(), key=lambda h: h.ulid)
    return view.groups(), view.leases(), holds, view.pv, view.hold_count, view.last_request_id


def _round_trip(item: dict[str, Any]) -> None:
    """Decoded, encoded and decoded again, a counter item reads the same; every attribute it
    has is one the codec knows (an absent `held` or `spent` reads as, and encodes to, zero)."""
    groups, leases, holds, pv, hold_count, request = _parts(item)
    again = CounterItem.encode(groups, leases, holds, pv, hold_count, request)
    assert _parts(again) == _parts(item)
    assert set(item) - KEYS_AND_LISTING <= set(again)


def test_every_field_kind_round_trips_through_the_codec() -> None:
    groups = {
        "q_llm_": QuotaFields(usd("10"), usd("6.5"), usd("1.5"), usd("2")),
        "q_all_": QuotaFields(usd("20"), usd("20"), usd("0"), usd("0")),
        "l_all_": QuotaFields(usd("3"), usd("1"), usd("0.5"), usd("1.5")),
    }
    leases = {"l_all_": LeaseTerms("2026-11-25T12:01:00.000000Z", 2, "2026-11-25T12:00:00.000000Z")}
    holds = [
        InItemHold("01KB0000000000000000000001", "l~0.25~@tm-la~", "2026-11-25T12:05:00.000000Z"),
        InItemHold(
            "01KB0000000000000000000002",
            "l~0.5~@tm-la~",
            "2026-11-25T12:06:00.000000Z",
            provider="openai",
            model="gpt-4o",
        ),
    ]
    item = CounterItem.encode(groups, leases, holds, pv=3, hold_count=2, last_request_id="r-1")

    view = CounterItem(item)

    assert view.groups() == groups
    assert view.leases() == leases
    assert sorted(view.holds(), key=lambda h: h.ulid) == holds
    assert view.hold(holds[1].ulid) == holds[1]
    assert view.hold("01KB0000000000000000000009") is None
    assert (view.pv, view.hold_count, view.last_request_id) == (3, 2, "r-1")
    _round_trip(item)
    assert CounterItem.encode(*_parts(item)) == item
    # The pool's side of a lease: the move count and the lessees (a string set).
    pool = CounterItem.encode(leases={"l_all_": LeaseTerms(moves=7, lessees=frozenset({"a", "b"}))})
    assert pool == {"l_all_moves": Decimal(7), "l_all_lessees": {"a", "b"}}
    assert CounterItem(pool).lease("l_all_") == LeaseTerms(moves=7, lessees=frozenset({"a", "b"}))


def test_an_absent_item_or_group_reads_as_nothing_written() -> None:
    for view in (CounterItem(None), CounterItem({"pk": "TENANT#acme", "sk": "MONTH#2026-11"})):
        assert view.fields("q_llm_") == QuotaFields(None, None, usd("0"), usd("0"))
        assert not view.has("q_llm_")
        assert (view.pv, view.hold_count, view.listing) == (None, 0, None)
        assert list(view.holds()) == [] and view.leases() == {}
    assert QuotaFields().limit_or(usd("5")) == usd("5")
    assert QuotaFields().avail_or(usd("5")) == usd("5")


def test_the_single_item_reserve_writes_what_the_codec_reads(ledger: Ledger) -> None:
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, "tenant:llm:month", "10.00")
    ledger.release(T, ledger.reserve(T, estimate("0.01")).reservation_id)  # creates the counter
    usage = Usage(resource="llm", provider="openai", model="gpt-4o", estimated_cost_usd="0.25")

    rid = ledger.reserve(T, usage).reservation_id

    item = ledger.table.get(MONTH)
    assert item is not None
    ref = ReservationRef.parse(rid)
    view = CounterItem(item)
    (held,) = view.holds()
    assert held == InItemHold(str(ref.ulid), ref.terms, held.expires_at, "openai", "gpt-4o")
    assert held.attribute in item and held.to_value() == item[held.attribute]
    assert view.fields("q_llm_") == QuotaFields(usd("10.00"), usd("9.75"), usd("0.25"), usd("0"))
    assert (view.pv, view.hold_count) == (ledger.policies(T)[1].version, 1)
    assert view.listing == (f"HELD#{T}", MONTH[1])
    _round_trip(item)


def test_slices_as_written_round_trip(ledger: Ledger) -> None:
    ledger.create_tenant(T, "Acme Inc", "pro")
    sliced = QuotaDefinition(QuotaId.parse("tenant:llm:month"), usd("8"), slices=4)
    ledger.put_quota(T, sliced)
    for _ in range(12):
        ledger.reserve(T, estimate("0.5"), with_figures=False)

    keys = [(f"{tenant_pk(T)}#S{i:02d}" if i else tenant_pk(T), MONTH[1]) for i in range(4)]
    written = [CounterItem(ledger.table.get(k)) for k in keys]

    assert sum(s.fields("q_llm_").held for s in written) == usd("6")
    assert sum(s.fields("q_llm_").limit_or(usd("2")) for s in written) == usd("8")
    for key in keys:
        if (item := ledger.table.get(key)) is not None:
            _round_trip(item)


def test_leases_as_written_round_trip(ledger: Ledger, clock: Clock) -> None:
    leased = QuotaDefinition(QuotaId.parse("platform:all:month"), usd("100"), leased=True)
    ledger.put_quota(None, leased)
    for tenant in ("acme", "beta"):
        ledger.reserve(tenant, estimate("1"), with_figures=False)

    lease, pool = ledger.table.get(MONTH), ledger.table.get(("PLATFORM", MONTH[1]))

    assert lease is not None and pool is not None
    view = CounterItem(lease)
    assert view.fields("l_all_") == QuotaFields(usd("1"), usd("0"), usd("1"), usd("0"))
    (stored,) = ledger.policies(T)[0].quotas
    assert view.lease("l_all_").epoch == stored.lease_epoch
    assert view.lease("l_all_").live(iso(clock.at), stored.lease_epoch)
    assert not view.lease("l_all_").live(iso(clock.at + timedelta(minutes=2)), stored.lease_epoch)
    assert not view.lease("l_all_").live(iso(clock.at), stored.lease_epoch + 1)
    assert CounterItem(pool).lease("l_all_").lessees == {"acme", "beta"}
    assert CounterItem(pool).fields("q_all_").limit == usd("98")
    _round_trip(lease)
    _round_trip(pool)


@pytest.mark.parametrize(
    ("attributes", "why"),
    [
        ({"q_llm_limit": "ten"}, "a figure that is not a number"),
        ({"q_llm_spent": Decimal("NaN")}, "a figure that is not finite"),
        ({"q_llm_held": 3}, "a figure the deserializer would not give"),
        ({"pv": Decimal("1.5")}, "a policy stamp that is not whole"),
        ({"hn": "two"}, "a hold count that is not a number"),
        ({"l_all_until": Decimal(1)}, "a lease expiry that is not a time"),
        ({"l_all_epoch": "x"}, "a lease epoch that is not a number"),
        ({"l_all_lessees": ["a"]}, "lessees that are not a set"),
        ({"h_01KB0000000000000000000001": "held"}, "a hold that is not a map"),
        ({"h_01KB0000000000000000000001": {"p": 1, "x": "t"}}, "a hold's terms not a string"),
        ({"h_01KB0000000000000000000001": {"p": "t", "u": "gpt"}}, "a hold's u not a map"),
        ({HOLDS_PK: 1, HOLDS_SK: "MONTH#2026-11"}, "a listing that is not a key"),
    ],
)
def test_a_malformed_counter_is_corrupted_where_it_is_decoded(
    attributes: dict[str, Any], why: str
) -> None:
    view = CounterItem({"pk": "TENANT#acme", "sk": "MONTH#2026-11", **attributes})
    with pytest.raises(LedgerCorrupted):
        view.fields("q_llm_")
        view.lease("l_all_")
        _ = (view.pv, view.hold_count, view.listing)
        view.hold("01KB0000000000000000000001")
        pytest.fail(f"{why}: decoded")


def test_a_damaged_hold_is_skipped_by_the_walk_and_counted_by_reconcile() -> None:
    good = InItemHold("01KB0000000000000000000002", "l~0.5~@tm-la~", "2026-11-25T12:06:00.000000Z")
    item = {"h_01KB0000000000000000000001": "held", **CounterItem.encode(holds=[good])}
    assert list(CounterItem(item).holds()) == [good]


def test_a_malformed_counter_is_corrupted_on_the_engine_and_stream_paths(ledger: Ledger) -> None:
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, "tenant:llm:month", "10.00")
    ledger.reserve(T, estimate("1"))
    ledger.table.client.update_item(
        TableName=ledger.table.name,
        Key={"pk": {"S": MONTH[0]}, "sk": {"S": MONTH[1]}},
        UpdateExpression="SET q_llm_held = :s",
        ExpressionAttributeValues={":s": {"S": "lots"}},
    )
    with pytest.raises(LedgerCorrupted):
        ledger.quotas(T)
    # A slice whose grant was written without its avail.
    lay = E.Layout(usd("8"), 4)
    with pytest.raises(LedgerCorrupted):
        E.state_of({"q_llm_limit": usd("2")}, "q_llm_", 1, lay)

    def rules(tenant_id: str | None, quota_id: QuotaId) -> Rule:
        return Rule("hard", (50, 100))

    with pytest.raises(LedgerCorrupted):
        crossings(*MONTH, None, {"q_llm_limit": usd("10"), "q_llm_spent": "6"}, rules)


def test_the_stream_screen_sees_a_figure_change_in_raw_images() -> None:
    old = {"q_llm_limit": {"N": "10"}, "q_llm_spent": {"N": "1"}, "pv": {"N": "1"}}
    assert figures_changed({**old, "q_llm_spent": {"N": "2"}}, old)
    assert figures_changed({**old, "l_all_limit": {"N": "3"}}, old)
    assert not figures_changed({**old, "q_llm_held": {"N": "5"}, "pv": {"N": "2"}}, old)
    assert not figures_changed({"q_llm_spent": {"N": "2"}}, {})  # no quota there


def test_the_figures_shown_do_not_read_a_broken_avail() -> None:
    # Given a counter whose avail is not a number (its spent, held and limit are)
    item = {
        "pk": "TENANT#a",
        "sk": "MONTH#2026-11",
        "q_llm_limit": usd("10"),
        "q_llm_avail": "lots",
        "q_llm_held": usd("1"),
        "q_llm_spent": usd("2"),
    }
    # When its figures are read for showing, Then they come without avail
    assert quota_fields(item, "q_llm_", with_avail=False) == QuotaFields(
        usd("10"), None, usd("1"), usd("2")
    )
    # And spending's read (with avail) refuses it, as a broken spent refuses both
    with pytest.raises(LedgerCorrupted):
        quota_fields(item, "q_llm_")
    with pytest.raises(LedgerCorrupted):
        quota_fields({**item, "q_llm_spent": "x"}, "q_llm_", with_avail=False)

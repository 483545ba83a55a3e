"""A hot tenant's lanes (decisions D98), on moto: the key layout (lane 0 is today's keys, lane
i adds `#S<ii>`), the lane a reservation's id names, where a sliced spend writes, and record
pages whose one cursor runs across every lane, exactly and completely."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from costguard.alerts.detection import overrun_draft
from costguard.alerts.stream import may_alert
from costguard.errors import Paused, QuotaExceeded, ReservationNotFound
from costguard.ledger import Ledger
from costguard.ledger.terms import LANE_FLAG, ReservationRef
from costguard.quotas import QuotaDefinition, QuotaId, Resource, Scope
from costguard.store import keys as K
from costguard.store.items import DayRollup
from costguard.store.writes import ItemWrite
from ulid import ULID

from tests.conftest import Clock
from tests.helpers import actual, estimate, usd

T = "acme"
Q = "tenant:llm:month"
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_lane_zero_is_todays_keys_and_lane_i_adds_its_suffix() -> None:
    assert K.records_pk(T) == K.records_pk(T, 0) == "TENANT#acme#REC"
    assert K.records_pk(T, 7) == "TENANT#acme#REC#S07"
    assert K.holds_pk(T) == "HOLD#acme" and K.holds_pk(T, 12) == "HOLD#acme#S12"
    assert K.day_key(T, AT) == ("TENANT#acme", "DAY#2026-11-25")
    assert K.day_key(T, AT, "UTC", 3) == ("TENANT#acme#S03", "DAY#2026-11-25")
    # A lane's day item is slice 3's day counter of the tenant: one item, as in lane 0
    assert K.split_slice(K.rollup_pk(T, 3)) == ("TENANT#acme", 3)
    for lane in (0, 1, 63):
        assert K.tenant_of_records_pk(K.records_pk(T, lane)) == T
        assert K.is_records_pk(K.records_pk(T, lane))
        assert K.tenant_of_holds_pk(K.holds_pk(T, lane)) == T
    assert not K.is_records_pk(K.rollup_pk(T, 3))
    assert K.record_key(T, "01J", 5) == ("TENANT#acme#REC#S05", "01J")


def _ref(slices: dict[QuotaId, int], quotas: list[str]) -> ReservationRef:
    defs = [QuotaDefinition(QuotaId.parse(q), Decimal(10)) for q in quotas]
    return ReservationRef.build(
        ULID.from_datetime(AT), Resource.LLM, Decimal(1), defs, "u-1", "UTC", slices
    )


def test_the_lane_is_the_largest_slice_of_a_tenant_or_user_quota_in_the_id() -> None:
    tm, ua, pm = (QuotaId.parse(q) for q in (Q, "user:u-1:all:day", "platform:llm:month"))
    quotas = [Q, "user:u-1:all:day", "platform:llm:month"]
    assert _ref({}, quotas).lane == 0  # unsliced: today's keys
    assert _ref({tm: 5}, quotas).lane == 5
    assert _ref({tm: 5, ua: 9}, quotas).lane == 9
    assert _ref({pm: 30}, quotas).lane == 0  # a platform slice spreads the platform, not this
    ref = _ref({tm: 5}, quotas)
    again = ReservationRef.parse(ref.reservation_id)
    assert again.lane == 5 and again.record_key(T) == ("TENANT#acme#REC#S05", str(ref.ulid))
    assert pm.scope is Scope.PLATFORM


def test_an_unsliced_tenant_writes_todays_keys(ledger: Ledger) -> None:
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(10)))
    rid = ledger.reserve(T, estimate("1"), with_figures=False).reservation_id
    ledger.commit(T, rid, actual("1"))
    scanned = ledger.table.client.scan(TableName=ledger.table.name)["Items"]
    pks = {item["pk"]["S"] for item in scanned}
    assert not any("#S" in pk for pk in pks)
    assert ledger.lanes(T) == 1
    assert "lanes" not in (ledger.table.get(("TENANT#acme", "POLICY")) or {})


def test_a_sliced_spend_writes_its_record_holds_entry_and_rollup_in_its_lane(
    ledger: Ledger,
) -> None:
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(64), slices=8))
    lanes: set[int] = set()
    for _ in range(40):
        ref = ReservationRef.parse(
            ledger.reserve(T, estimate("1"), with_figures=False).reservation_id
        )
        lanes.add(ref.lane)
        item = ledger.table.get(ref.record_key(T))
        assert item is not None and item["gsi1pk"] == K.holds_pk(T, ref.lane)
        if ref.lane:
            ledger.commit(T, ref.reservation_id, actual("0.5"))
            day = ledger.table.get(K.day_key(T, ref.created_at, "UTC", ref.lane))
            assert day is not None and day["usd_all"] > 0
    assert len(lanes) > 1 and ledger.lanes(T) == 8
    assert ledger.reconcile(T) == []
    # Un-slicing keeps every lane readable: the lanes never shrink
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(64), slices=1))
    ledger.delete_quota(T, QuotaId.parse(Q))
    assert ledger.lanes(T) == 8
    assert ledger.reconcile(T) == []


def _made_before_lanes(ledger: Ledger, ref: ReservationRef) -> str:
    """The id and record `ref` would have had before lanes (D110): its record (and `holds`
    entry) in lane 0, its id without the lane flag."""
    item = ledger.table.get(ref.record_key(T))
    assert item is not None and ref.lane
    ledger.table.client.delete_item(
        TableName=ledger.table.name,
        Key={"pk": {"S": K.records_pk(T, ref.lane)}, "sk": {"S": str(ref.ulid)}},
    )
    item = {k: v for k, v in item.items() if k not in ("pk", "sk")}
    old_id = ref.reservation_id.replace(LANE_FLAG, "", 1)
    item["gsi1pk"] = K.holds_pk(T)
    item["plan"] = old_id.split("~", 1)[1]
    _put(ledger, K.record_key(T, str(ref.ulid)), item)
    assert LANE_FLAG in ref.reservation_id and old_id != ref.reservation_id
    return old_id


@pytest.mark.parametrize("settle", ["commit", "release", "expiry"])
def test_a_sliced_hold_made_before_lanes_settles_from_lane_zero(
    ledger: Ledger, clock: Clock, settle: str
) -> None:
    """An id on slice i made before lanes carries no lane flag and its record is in lane 0:
    commit, release and expiry find it there and give back or charge exactly its hold, so an
    upgrade strands no hold and loses no spend (D110)."""
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(64), slices=8))
    for _ in range(40):
        ref = ReservationRef.parse(
            ledger.reserve(T, estimate("2"), with_figures=False).reservation_id
        )
        if ref.lane:
            break
        ledger.release(T, ref.reservation_id)
    assert ref.lane
    old_id = _made_before_lanes(ledger, ref)
    old = ReservationRef.parse(old_id)
    assert old.lane == 0 and old.slices == ref.slices and old.record_key(T)[0] == K.records_pk(T)
    if settle == "commit":
        ledger.commit(T, old_id, actual("1.5"))
        spent = Decimal("1.5")
    elif settle == "release":
        ledger.release(T, old_id)
        spent = Decimal(0)
    else:
        clock.advance(days=1)
        assert ledger.expire_due(T) == 1
        spent = Decimal(2)  # the tenant's default: an expired hold is charged its estimate
    item = ledger.table.get(K.record_key(T, str(ref.ulid)))
    assert item is not None and item["status"] != "held" and "gsi1pk" not in item
    [state] = ledger.quotas(T)
    assert state.spent_usd == spent and state.reserved_usd == 0
    assert ledger.reconcile(T) == []


def test_a_lane_flag_on_an_id_without_a_lane_is_unknown() -> None:
    ref = _ref({}, [Q])
    terms = ref.reservation_id.split("~")
    terms[3] = LANE_FLAG + terms[3]
    with pytest.raises(ReservationNotFound):
        ReservationRef.parse("~".join(terms))


def _put(ledger: Ledger, key: K.Key, item: dict[str, Any]) -> None:
    ledger.table.put(ItemWrite(key=key, kind="Put", item=item))


def _put_record(ledger: Ledger, lane: int, ulid: ULID, status: str, user: str) -> None:
    _put(
        ledger,
        K.record_key(T, str(ulid), lane),
        {
            "tenant_id": T,
            "status": status,
            "plan": "l~1~tm-l~",
            "resource": "llm",
            "estimate_usd": Decimal(1),
            "cost_usd": Decimal(1),
            "created_at": "2026-11-25T12:00:00.000000Z",
            "recorded_at": "2026-11-25T12:00:00.000000Z",
            "user_id": user,
        },
    )


@pytest.mark.parametrize(("limit", "max_pages"), [(1, 8), (3, 8), (7, 1), (50, 2), (500, 8)])
def test_pages_across_lanes_return_every_settled_record_once_in_order(
    ledger: Ledger, clock: Clock, limit: int, max_pages: int
) -> None:
    """Records spread unevenly over 6 lanes (one lane empty), a third not settled and a
    sparse user filter: paging with any limit and page budget returns exactly the settled
    (and matching) records, each once, in id order."""
    rng = random.Random(limit * 31 + max_pages)
    _put(ledger, ("TENANT#acme", "POLICY"), {"version": 1, "quotas": {}, "lanes": 6})
    settled: list[tuple[str, str]] = []
    for n in range(150):
        ulid = ULID.from_timestamp(AT.timestamp() + rng.random() * 3600)
        lane = rng.choice([0, 1, 1, 1, 2, 4, 5])  # lane 3 stays empty
        status = rng.choice(["committed", "recorded", "held"])
        who = f"u-{n % 7}"
        _put_record(ledger, lane, ulid, status, who)
        if status != "held":
            settled.append((str(ulid), who))
    settled.sort()
    first, last = AT - timedelta(hours=1), AT + timedelta(hours=2)
    cases: list[tuple[str | None, list[str]]] = [
        (None, [r for r, _ in settled]),
        ("u-3", [r for r, u in settled if u == "u-3"]),
    ]
    for user, want in cases:
        got: list[str] = []
        after: str | None = None
        for _ in range(1000):
            page, after = ledger.settled_records(
                T, first, last, limit=limit, after=after, user_id=user, max_pages=max_pages
            )
            assert len(page) <= limit
            got.extend(r.record_id for r in page)
            if after is None:
                break
        assert got == want
    # and the records of every lane, settled or not, once each in id order
    assert len(ledger.records(T, first, last)) == 150


def test_a_day_rollup_is_the_sum_of_its_lanes() -> None:
    day = {"sk": "DAY#2026-11-25"}
    parts = [
        DayRollup.from_item(
            {**day, "usd_all": Decimal("1.5"), "usd_llm": Decimal("1.5"), "calls": 2,
             "usd#m#openai/gpt-4o": Decimal("1.5"), "usd#b#03": Decimal(1), "usr#b#03": "u-1"}
        ),
        DayRollup.from_item(
            {**day, "usd_all": Decimal("2"), "usd_sandbox": Decimal("2"), "calls": 1,
             "usd#t#small": Decimal(2), "usd#b#03": Decimal(2), "usr#b#03": "u-9"}
        ),
    ]  # fmt: skip
    whole = DayRollup.summed(parts)
    assert (whole.spent(), whole.spent("llm"), whole.spent("sandbox")) == (
        usd("3.5"), usd("1.5"), usd("2")
    )  # fmt: skip
    assert whole.calls == 3 and whole.by_bucket == {"03": usd("3")}
    assert whole.by_model_or_tier() == {"openai/gpt-4o": usd("1.5"), "sandbox:small": usd("2")}
    assert whole.bucket_users == {"03": "u-1"}  # lane 0's first


def _lane_reserve(ledger: Ledger, amount: str = "1") -> ReservationRef:
    """A reserve that landed on a lane > 0 (the others are released)."""
    for _ in range(200):
        rid = ledger.reserve(T, estimate(amount), with_figures=False).reservation_id
        ref = ReservationRef.parse(rid)
        if ref.lane:
            return ref
        ledger.release(T, rid)
    raise AssertionError("no reserve landed on a lane > 0")


def test_policy_copies_follow_every_version_and_refuse_a_stale_process(ledger: Ledger) -> None:
    """A process whose cached policy is older (another process paused the tenant) proves the
    stale version on a copy: the copy refuses it, it reads the policy and is refused as
    paused, whatever lane it takes."""
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(1000), slices=8))
    other = Ledger(ledger.table, ledger.settings, clock=ledger.now)
    _lane_reserve(ledger)  # this process caches the policy and proves it on a copy
    other.set_paused(T, True)
    policy = ledger.table.get(("TENANT#acme", "POLICY")) or {}
    copies = [ledger.table.get((f"TENANT#acme#S{r:02d}", "POLICY")) for r in range(1, 16)]
    assert [c and c["version"] for c in copies] == [policy["version"]] * 7 + [None] * 8
    for _ in range(20):
        with pytest.raises(Paused):
            ledger.reserve(T, estimate("1"), with_figures=False)
    other.set_paused(T, False)
    _lane_reserve(ledger)  # refused once by its copy, then proven on the fresh version
    assert ledger.reconcile(T) == []


def test_a_lane_checks_the_platform_policy_only_when_a_platform_quota_applies(
    ledger: Ledger,
) -> None:
    ledger.put_quota(T, QuotaDefinition(QuotaId.parse(Q), Decimal(1000), slices=8))
    checked: list[str] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        for action in params.get("TransactItems", []):
            if "ConditionCheck" in action:
                checked.append(action["ConditionCheck"]["Key"]["pk"]["S"])

    ledger.table.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", seen
    )
    ref = _lane_reserve(ledger)
    assert checked[-1:] == [f"TENANT#acme#S{ref.lane:02d}"]  # its copy, no platform check
    ledger.put_quota(None, QuotaDefinition(QuotaId.parse("platform:llm:month"), Decimal(2)))
    ledger.forget_policy("PLATFORM")
    checked.clear()
    ref = _lane_reserve(ledger, "0.5")
    assert "PLATFORM" in checked
    with pytest.raises(QuotaExceeded) as refused:
        ledger.reserve(T, estimate("1.75"), with_figures=False)
    assert refused.value.binding.scope == "platform"


def test_a_record_committed_beyond_its_hold_alerts_from_any_lane() -> None:
    """The overrun alert reads a committed record's stream image in lane i as in lane 0."""
    keys = {"pk": K.records_pk(T, 9), "sk": "01JDFT0000000000000000000"}
    old = {"status": "held", "estimate_usd": Decimal(1)}
    new = {**old, "status": "committed", "cost_usd": Decimal(3), "overrun_usd": Decimal(2)}
    draft = overrun_draft(keys, old, new)
    assert draft is not None and draft.tenant_id == T
    image = {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": {"pk": {"S": keys["pk"]}, "sk": {"S": keys["sk"]}},
            "NewImage": {"status": {"S": "committed"}, "overrun_usd": {"N": "2"}},
            "OldImage": {"status": {"S": "held"}},
        },
    }
    assert may_alert(image)

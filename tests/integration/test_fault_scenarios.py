"""Fault scenarios on DynamoDB Local, seen from the client and checked in the ledger.

Each test plays one failure of the store and asserts two things: what the client got from the
API (status, problem type, `Retry-After`) and what the ledger holds afterwards
(`Ledger.reconcile()` is empty: every counter equals the records, so nothing is counted twice
or lost; no quota above its limit; no hold alive past its expiry once the sweeper ran).

The API is the real Lambda handler invoked with API Gateway events (the HTTP contract minus
the socket; the e2e tests cover the socket). Faults come from botocore event hooks on the
handler's DynamoDB client (throttling, 5xx, answers lost after the write) or from a TCP proxy
between that client and DynamoDB Local (store down, stalled, slow) — never from patching the
domain. The table of scenarios is in docs/hardening.md.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlparse

import pytest
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from costguard.auth import ApiKeys, fingerprint
from costguard.ledger import Ledger, LedgerTable, make_client
from costguard.settings import FailMode, Settings
from costguard.store.keys import records_pk

from functions.api import handler
from functions.api.deps import get_keys, get_ledger
from tests.api.conftest import ADMIN_KEY, CONTEXT, Answer, http_event
from tests.conftest import Clock
from tests.helpers import set_quota
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.ddblocal
A, B = "acme", "globex"
LIMIT = Decimal(10)
EST = {"resource": "llm", "estimated_cost_usd": "2"}
RETRY_AFTER = 2  # Settings.unavailable_retry_after_seconds (default)


# ------------------------------------------------------------------------------ the stage
def fast_settings(table: str, **overrides: Any) -> Settings:
    """Production defaults with shorter timeouts and one retry: a stalled store fails a call in
    ~3 s, and a loaded CI machine still answers well inside them."""
    values: dict[str, Any] = {
        "table_name": table,
        "ddb_connect_timeout_seconds": 0.5,
        "ddb_read_timeout_seconds": 1.5,
        "ddb_max_attempts": 1,  # botocore: one retry
        "api_key_cache_seconds": 0,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Front:
    """The API handler serving one ledger; the keys are read from the same (faulty) store."""

    ledger: Ledger

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        handler.app.dependency_overrides[get_ledger] = lambda: self.ledger
        handler.app.dependency_overrides[get_keys] = lambda: ApiKeys(
            self.ledger.table, frozenset({fingerprint(ADMIN_KEY)}), cache_seconds=0
        )
        try:
            event = http_event(method, path, body, key or ADMIN_KEY, headers=headers)
            raw = handler.lambda_handler(event, CONTEXT)
        finally:
            handler.app.dependency_overrides.clear()
        heads = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        return Answer(raw["statusCode"], heads, raw.get("body") or "")

    def reserve(self, tenant: str = A, body: Any = None, **kw: Any) -> Answer:
        return self.call("POST", f"/v1/tenants/{tenant}/reservations", body or EST, **kw)

    def commit(self, rid: str, cost: str, tenant: str = A) -> Answer:
        return self.call(
            "POST",
            f"/v1/tenants/{tenant}/reservations/{rid}/commit",
            {"resource": "llm", "cost_usd": cost},
        )


@pytest.fixture
def proxy(ddb_local: str) -> Iterator[FaultProxy]:
    p = FaultProxy(urlparse(ddb_local).port or 0).start()
    try:
        yield p
    finally:
        p.stop()


Stage = Callable[..., tuple[Front, Any]]
"""Makes an API front over the fault proxy; keyword arguments override its settings."""


@pytest.fixture
def stage(local_ledger: Ledger, clock: Clock, proxy: FaultProxy) -> Stage:
    """Tenants acme and globex with an llm month limit of $10; returns a factory for an API
    front whose DynamoDB client goes through the fault proxy (and can carry hooks)."""
    for t in (A, B):
        local_ledger.create_tenant(t, t.title())
        set_quota(local_ledger, t, "tenant:llm:month", str(LIMIT))

    def front(**overrides: Any) -> tuple[Front, Any]:
        settings = fast_settings(local_ledger.table.name, **overrides)
        client = make_client(settings, endpoint_url=proxy.endpoint)
        ledger = Ledger(LedgerTable(client, settings.table_name, settings), settings, clock=clock)
        return Front(ledger), client

    return front


def assert_sound(ledger: Ledger, clock: Clock, *tenants: str) -> None:
    """No quota above its limit, counters equal to the records, no hold past its expiry."""
    for t in tenants or (A, B):
        assert ledger.reconcile(t) == [], t
        for q in ledger.quotas(t):
            assert q.spent_usd + q.reserved_usd <= q.limit_usd, q
    later = clock.at
    clock.advance(seconds=ledger.settings.reservation_ttl_seconds + 1)
    ledger.expire_due()
    for t in tenants or (A, B):
        held = ledger.table.query_all("pk = :p", {":p": records_pk(t)}, consistent=True)
        assert [r["sk"] for r in held if r["status"] == "held"] == [], t
        assert all(q.reserved_usd == 0 for q in ledger.quotas(t)), t
        assert ledger.reconcile(t) == [], t
    clock.at = later


def figures(ledger: Ledger, tenant: str = A) -> tuple[Decimal, Decimal]:
    q = next(q for q in ledger.quotas(tenant) if q.quota_id == "tenant:llm:month")
    return q.spent_usd, q.reserved_usd


def assert_unavailable(answer: Answer) -> None:
    assert answer.status == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["type"].endswith("/ledger-unavailable")
    assert answer.headers["retry-after"] == str(RETRY_AFTER)


# ------------------------------------------------------------------------------ botocore hooks
class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def aws_error(url: str, status: int, code: str, message: str = "injected") -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    # The stubs ask for HTTPHeaders; AWSResponse wraps any mapping in a HeadersDict.
    return AWSResponse(url, status, headers, _Raw(body.encode()))  # type: ignore[arg-type]


Fault = AWSResponse | BaseException | tuple[Literal["apply_first"], BaseException] | None
"""What a plan answers for one call: see `Faults`."""


class Faults:
    """A before-send hook on every DynamoDB call of one client.

    `plan(operation, request)` returns None to let the call through, or the fault to play:
    an AWSResponse (the store refused), or an exception (the answer never came). `apply_first`
    sends the request to the store before raising, so the write is applied but unanswered.
    """

    def __init__(self, client: Any, plan: Callable[[str, Any], Fault]) -> None:
        self.plan = plan
        self.sends: list[str] = []
        self._http = urllib3.PoolManager()
        client.meta.events.register("before-send.dynamodb", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        operation = request.headers.get("X-Amz-Target", b"")
        operation = operation.decode() if isinstance(operation, bytes) else operation
        operation = operation.rsplit(".", 1)[-1]
        self.sends.append(operation)
        fault = self.plan(operation, request)
        if fault is None:
            return None
        if isinstance(fault, tuple):  # ("apply_first", the exception)
            self._http.request(
                "POST", request.url, body=request.body, headers=dict(request.headers)
            )
            fault = fault[1]
        if isinstance(fault, BaseException):
            raise fault
        return fault


class LostAnswers(Faults):
    """While armed: the first write reaches the store and is applied, then its answer and
    those of every resend (botocore's retries, same token) are lost: the client gets 503."""

    def __init__(self, client: Any) -> None:
        self.armed = True
        super().__init__(client, self._plan)

    def _plan(self, operation: str, request: Any) -> Fault:
        if operation != "TransactWriteItems" or not self.armed:
            return None
        timeout = ReadTimeoutError(endpoint_url=request.url)
        applied = "TransactWriteItems" in self.sends[:-1]
        return timeout if applied else ("apply_first", timeout)


# ------------------------------------------------------------------------------ 1-2 throttling
@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttling_that_lasts_is_503_and_a_passing_throttle_is_absorbed(
    stage: Stage, local_ledger: Ledger, clock: Clock, code: str
) -> None:
    api, client = stage()
    throttled = {"on": True, "once": False}

    def plan(operation: str, request: Any) -> Fault:
        if throttled["on"] or throttled["once"]:
            throttled["once"] = False
            return aws_error(request.url, 400, code, "Rate of requests exceeds the allowed")
        return None

    faults = Faults(client, plan)

    # While the store throttles every call: 503 + Retry-After, nothing held
    assert_unavailable(api.reserve())
    assert len(faults.sends) >= 2  # botocore retried before giving up
    assert figures(local_ledger) == (Decimal(0), Decimal(0))

    # A throttle that passes within botocore's retries is invisible to the client
    throttled.update(on=False, once=True)
    first = api.reserve()
    assert first.status == 201, first.text
    assert api.commit(first.json["reservation_id"], "1.5").status == 200
    assert figures(local_ledger) == (Decimal("1.5"), Decimal(0))
    assert_sound(local_ledger, clock)


# ------------------------------------------------------------------------------ 3-4 time
def test_a_stalled_store_is_a_timeout_503_then_recovers(
    stage: Stage, proxy: FaultProxy, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage()
    assert api.reserve().status == 201  # connections warm, policies cached

    proxy.mode = "stall"  # requests swallowed: the store never sees them, nothing answers
    assert_unavailable(api.reserve())
    proxy.mode = "pass"
    again = api.reserve()

    assert again.status == 201, again.text
    assert figures(local_ledger) == (Decimal(0), Decimal(4))  # two holds, not three
    assert_sound(local_ledger, clock)


def test_a_slow_store_under_the_timeout_only_makes_answers_slower(
    stage: Stage, proxy: FaultProxy, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage()
    proxy.mode, proxy.delay = "slow", 0.2  # well below the 1.5 s read timeout

    r = api.reserve()
    c = api.commit(r.json["reservation_id"], "1")

    assert (r.status, c.status) == (201, 200), (r.text, c.text)
    assert figures(local_ledger) == (Decimal(1), Decimal(0))
    assert_sound(local_ledger, clock)


# ------------------------------------------------------------------------------ 5 store down
def test_store_down_refuses_with_503_and_everything_settles_once_it_is_back(
    stage: Stage, proxy: FaultProxy, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage()
    held = api.reserve()
    assert held.status == 201

    proxy.go_down()  # connection refused
    assert_unavailable(api.reserve())
    assert_unavailable(api.commit(held.json["reservation_id"], "1.25"))
    assert_unavailable(api.call("GET", f"/v1/tenants/{A}/quotas"))

    proxy.come_back()
    committed = api.commit(held.json["reservation_id"], "1.25")
    retried = api.commit(held.json["reservation_id"], "1.25")  # the client's own retry

    assert (committed.status, retried.status) == (200, 200)
    assert committed.json["record_id"] == retried.json["record_id"]
    assert figures(local_ledger) == (Decimal("1.25"), Decimal(0))
    assert_sound(local_ledger, clock)


# ------------------------------------------------------------------------------ 6 intermittent
def test_thirty_percent_intermittent_failures_over_a_burst(
    stage: Stage, local_ledger: Ledger, clock: Clock
) -> None:
    """60 reserve+commit pairs while 30 % of DynamoDB calls fail (500, throttling, timeouts).

    Every answer is a success or a 503 with Retry-After; the ledger ends with exactly the
    commits the client saw succeed, and the holds it saw granted and never settled.
    """
    api, client = stage()
    rng = random.Random(11)  # deterministic

    def plan(operation: str, request: Any) -> Fault:
        roll = rng.random()
        if roll >= 0.30:
            return None
        played: list[Fault] = [
            aws_error(request.url, 500, "InternalServerError"),
            aws_error(request.url, 400, "ThrottlingException"),
            ReadTimeoutError(endpoint_url=request.url),
        ]
        return played[int(roll * 10)]

    faults = Faults(client, plan)
    spent, held, statuses = Decimal(0), Decimal(0), []
    for i in range(60):
        r = api.reserve(body={"resource": "llm", "estimated_cost_usd": "0.1"})
        statuses.append(r.status)
        if r.status == 503:
            assert_unavailable(r)
            continue
        assert r.status in (201, 429), r.text
        if r.status == 429:
            continue
        cost = Decimal("0.05") + Decimal(i % 3) / 100
        c = api.commit(r.json["reservation_id"], str(cost))
        statuses.append(c.status)
        if c.status == 200:
            spent += cost
        else:
            assert_unavailable(c)
            held += Decimal("0.1")

    assert 503 in statuses and 201 in statuses  # the faults did play, and did not stop all
    assert len(faults.sends) > 120
    assert figures(local_ledger) == (spent, held)
    assert_sound(local_ledger, clock)


# ------------------------------------------------------------------------------ 7 lost answers
@pytest.mark.parametrize("route", ["reserve", "record"])
def test_a_write_applied_but_never_answered_then_retried_with_its_idempotency_key_counts_once(
    stage: Stage, local_ledger: Ledger, clock: Clock, route: str
) -> None:
    api, client = stage()
    api.reserve(body={"resource": "llm", "estimated_cost_usd": "0.01"})  # warm caches
    lost = LostAnswers(client)
    key = {"Idempotency-Key": f"order-{route}-1"}
    if route == "reserve":
        path, body = f"/v1/tenants/{A}/reservations", EST
    else:
        path, body = f"/v1/tenants/{A}/usage", {"resource": "llm", "cost_usd": "2"}

    first = api.call("POST", path, body, headers=key)
    lost.armed = False
    second = api.call("POST", path, body, headers=key)
    third = api.call("POST", path, body, headers=key)

    assert_unavailable(first)  # the client cannot know the write happened…
    assert (second.status, third.status) == (201, 201), second.text
    id_field = "reservation_id" if route == "reserve" else "record_id"
    assert second.json[id_field] == third.json[id_field]  # …and its retry finds it, once
    spent, reserved = figures(local_ledger)
    if route == "reserve":
        assert (spent, reserved) == (Decimal(0), Decimal("2.01"))
    else:
        assert (spent, reserved) == (Decimal(2), Decimal("0.01"))
    assert_sound(local_ledger, clock)


def test_a_commit_applied_but_never_answered_is_retried_and_counted_once(
    stage: Stage, local_ledger: Ledger, clock: Clock
) -> None:
    api, client = stage()
    rid = api.reserve().json["reservation_id"]
    lost = LostAnswers(client)

    first = api.commit(rid, "1.75")
    lost.armed = False
    second = api.commit(rid, "1.75")

    assert_unavailable(first)
    assert second.status == 200, second.text
    assert figures(local_ledger) == (Decimal("1.75"), Decimal(0))
    assert_sound(local_ledger, clock)


# ------------------------------------------------------------------------------ 8-10 corruption
def _corrupt(ledger: Ledger, key: tuple[str, str], **attributes: Any) -> None:
    from costguard.store.writes import serialize

    names = {f"#a{i}": k for i, k in enumerate(attributes)}
    values = {f":v{i}": serialize(v) for i, v in enumerate(attributes.values())}
    ledger.table.client.update_item(
        TableName=ledger.table.name,
        Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(attributes))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def assert_corrupted(answer: Answer) -> None:
    assert answer.status == 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json["type"].endswith("/ledger-corrupted")
    assert "Traceback" not in answer.text


def test_a_counter_with_a_non_numeric_field_is_refused_for_its_tenant_only(
    stage: Stage, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage()
    held = api.reserve()  # the month counter exists
    _corrupt(local_ledger, (f"TENANT#{A}", "MONTH#2026-11"), q_llm_avail="lots")

    refused = api.reserve()
    commit = api.commit(held.json["reservation_id"], "1")
    listed = api.call("GET", f"/v1/tenants/{A}/quotas")
    _corrupt(local_ledger, (f"TENANT#{A}", "MONTH#2026-11"), q_llm_spent="x")
    listed_after = api.call("GET", f"/v1/tenants/{A}/quotas")
    other = api.reserve(tenant=B)

    assert_corrupted(refused)
    assert_corrupted(commit)  # arithmetic on the field fails inside DynamoDB
    assert listed.status == 200  # the figures shown do not use the broken field
    assert_corrupted(listed_after)
    assert other.status == 201, other.text
    assert local_ledger.reconcile(A) != []  # reported by the audit, which does not crash
    assert_sound(local_ledger, clock, B)


@pytest.mark.parametrize(
    "quotas",
    [
        {"tenant:llm:month": {"mode": "hard"}},  # no limit
        "everything",  # not a map (was an AttributeError: 500 internal)
        {"tenant:llm:fortnight": {"limit_usd": 10}},  # an unreadable quota id (was a 422)
    ],
    ids=["missing-limit", "not-a-map", "bad-quota-id"],
)
def test_a_policy_missing_its_limit_is_refused_for_its_tenant_only(
    stage: Stage, local_ledger: Ledger, clock: Clock, quotas: Any
) -> None:
    api, _ = stage()
    assert api.reserve().status == 201  # policy cached in this process
    _corrupt(local_ledger, (f"TENANT#{A}", "POLICY"), quotas=quotas, version=99)
    # as a policy write does, the version is stamped on the tenant's counter (D71): a policy
    # changed behind the ledger's back without it is not seen by a warm one-write reserve
    _corrupt(local_ledger, (f"TENANT#{A}", "MONTH#2026-11"), pv=99)

    refused = api.reserve()
    listed = api.call("GET", f"/v1/tenants/{A}/quotas")
    other = api.reserve(tenant=B)

    assert_corrupted(refused)
    assert_corrupted(listed)
    assert other.status == 201, other.text
    assert_sound(local_ledger, clock, B)


def test_a_reservation_record_with_a_broken_plan_is_refused_and_reported(
    stage: Stage, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage()
    rid = api.reserve().json["reservation_id"]
    _corrupt(local_ledger, (records_pk(A), rid.split("~", 1)[0]), plan="l~two~??~")

    commit = api.commit(rid, "1")
    release = api.call("DELETE", f"/v1/tenants/{A}/reservations/{rid}")
    swept = local_ledger.expire_due()  # the sweeper skips it instead of failing every minute
    other = api.reserve(tenant=B)

    assert (commit.status, release.status) == (404, 404)
    assert commit.json["type"].endswith("/not-found")
    assert swept == 0
    assert any("malformed terms" in p for p in local_ledger.reconcile(A))
    assert other.status == 201
    assert_sound(local_ledger, clock, B)


# ------------------------------------------------------------------------------ 11 clock
def test_the_period_boundary_has_no_race_and_no_reset_job(
    stage: Stage, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage()
    clock.at = datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=UTC)
    spend_all = api.call("POST", f"/v1/tenants/{A}/usage", {"resource": "llm", "cost_usd": "8"})
    late = api.reserve()  # $2 of the last $2, half a second before midnight
    refused = api.reserve()

    clock.at = datetime(2026, 12, 1, 0, 0, 0, 100_000, tzinfo=UTC)
    settled = api.commit(late.json["reservation_id"], "2")
    fresh = api.reserve(body={"resource": "llm", "estimated_cost_usd": "10"})

    assert (spend_all.status, late.status, settled.status) == (201, 201, 200)
    assert refused.status == 429
    assert refused.headers["retry-after"] == "1"  # 0.5 s to the reset, rounded up
    assert refused.json["period"] == "month" and refused.json["remaining_usd"] == "0.000000"
    assert fresh.status == 201, fresh.text  # December starts at zero, no job ran
    nov = local_ledger.table.get((f"TENANT#{A}", "MONTH#2026-11"))
    dec = local_ledger.table.get((f"TENANT#{A}", "MONTH#2026-12"))
    assert nov is not None and dec is not None
    assert (nov["q_llm_spent"], nov["q_llm_held"]) == (LIMIT, 0)  # charged to its own month
    assert (dec.get("q_llm_spent", 0), dec["q_llm_held"]) == (Decimal(0), LIMIT)
    assert_sound(local_ledger, clock)


# ------------------------------------------------------------------------------ 12-13 modes
def test_fail_closed_refuses_while_the_store_is_down_and_records_nothing(
    stage: Stage, proxy: FaultProxy, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage(fail_mode=FailMode.CLOSED)
    proxy.go_down()

    reserve = api.reserve()
    record = api.call("POST", f"/v1/tenants/{A}/usage", {"resource": "llm", "cost_usd": "1"})
    proxy.come_back()

    assert_unavailable(reserve)
    assert_unavailable(record)
    assert figures(local_ledger) == (Decimal(0), Decimal(0))
    assert_sound(local_ledger, clock)


def test_fail_open_lets_calls_through_and_records_their_spend_once_when_back(
    stage: Stage, proxy: FaultProxy, local_ledger: Ledger, clock: Clock
) -> None:
    api, _ = stage(fail_mode=FailMode.OPEN)
    proxy.go_down()

    granted = [api.reserve(body={"resource": "llm", "estimated_cost_usd": "6"}) for _ in range(2)]
    early_commit = api.commit(granted[0].json["reservation_id"], "6")
    proxy.come_back()
    commits = [api.commit(g.json["reservation_id"], "6") for g in granted]
    repeat = api.commit(granted[0].json["reservation_id"], "6")

    assert [g.status for g in granted] == [201, 201]
    assert all(g.json["guarded"] is False for g in granted)
    assert all(g.json["reservation_id"].startswith("open~") for g in granted)
    assert_unavailable(early_commit)  # a commit needs the ledger: the client retries it
    assert [c.status for c in commits] == [200, 200]
    assert repeat.json["record_id"] == commits[0].json["record_id"]
    # What was spent while the ledger was down is counted, once, even over the limit (D17)
    assert figures(local_ledger) == (Decimal(12), Decimal(0))
    assert local_ledger.reconcile(A) == []
    refused = api.reserve(body={"resource": "llm", "estimated_cost_usd": "0.01"})
    assert refused.status == 429  # and the next guarded call is refused

"""Faults DynamoDB Local does not produce by itself, injected with botocore event hooks.

Real DynamoDB cancels a transaction that collides with another in flight on the same item
(`TransactionConflict`), and a response can be lost after the write was applied. Neither
emulator does either, so the hooks below make the client see them; the ledger must retry and
count everything exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from costguard.errors import LedgerUnavailable
from costguard.ledger import Ledger, LedgerTable
from costguard.settings import Settings

from tests.conftest import Clock
from tests.helpers import actual, estimate, quota_state, set_quota, usd

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


T = "acme"
pytestmark = pytest.mark.ddblocal


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _conflict(url: str) -> AWSResponse:
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[TransactionConflict]",
            "CancellationReasons": [{"Code": "TransactionConflict", "Message": "conflict"}],
        }
    ).encode()
    # The stubs ask for HTTPHeaders; AWSResponse wraps any mapping in a HeadersDict.
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, 400, headers, _Raw(body))  # type: ignore[arg-type]


class Injector:
    """Before-send hook on an operation (TransactWriteItems unless told): plays a fault for the
    next `count` sends."""

    def __init__(
        self, client: Any, fault: str, count: int, operation: str = "TransactWriteItems"
    ) -> None:
        self.fault, self.count, self.sends = fault, count, 0
        self.tokens: list[str] = []
        self._http = urllib3.PoolManager()
        client.meta.events.register(f"before-send.dynamodb.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sends += 1
        self.tokens.append(json.loads(request.body).get("ClientRequestToken", ""))
        if self.count <= 0:
            return None
        self.count -= 1
        if self.fault == "conflict":
            return _conflict(request.url)
        # "lost": the write reaches the server and is applied, the answer never arrives.
        self._http.request("POST", request.url, body=request.body, headers=dict(request.headers))
        raise ReadTimeoutError(endpoint_url=request.url)


@pytest.fixture
def acme(local_ledger: Ledger) -> Ledger:
    """On the transactional reserve (the faults below are a transaction's); the one-write
    reserve's lost answer has its own test."""
    local_ledger.settings = local_ledger.settings.model_copy(update={"single_item_reserve": False})
    set_quota(local_ledger, T, "tenant:llm:month", "10")
    local_ledger.reserve(T, estimate("0.01"))  # warm the policy cache
    return local_ledger


def test_transaction_conflicts_are_retried_and_counted_once(
    acme: Ledger, local_client: DynamoDBClient
) -> None:
    injector = Injector(local_client, "conflict", count=3)

    r = acme.reserve(T, estimate("1"))
    acme.commit(T, r.reservation_id, actual("1"))

    assert injector.sends == 5  # 3 conflicts + reserve + commit
    assert len(set(injector.tokens[:4])) == 1  # one token across the resends of one reserve
    q = quota_state(acme, T, "tenant:llm:month")
    assert (q.spent_usd, q.reserved_usd) == (usd("1"), usd("0.01"))
    assert acme.reconcile(T) == []


def test_endless_conflicts_end_in_ledger_unavailable_with_nothing_written(
    acme: Ledger, local_client: DynamoDBClient
) -> None:
    Injector(local_client, "conflict", count=100)

    with pytest.raises(LedgerUnavailable) as unavailable:
        acme.reserve(T, estimate("1"))

    assert unavailable.value.retry_after_seconds >= 1
    assert quota_state(acme, T, "tenant:llm:month").reserved_usd == usd("0.01")


@pytest.mark.parametrize("operation", ["reserve", "commit", "release", "record"])
def test_a_write_applied_but_unanswered_is_resent_with_its_token_and_counted_once(
    acme: Ledger, local_client: DynamoDBClient, operation: str
) -> None:
    r = acme.reserve(T, estimate("2"))
    injector = Injector(local_client, "lost", count=1)

    if operation == "reserve":
        acme.reserve(T, estimate("3"))
    elif operation == "commit":
        acme.commit(T, r.reservation_id, actual("1.5"))
    elif operation == "release":
        acme.release(T, r.reservation_id)
    else:
        acme.record_usage(T, actual("0.25"))

    assert injector.sends == 2 and injector.tokens[0] == injector.tokens[1]
    q = quota_state(acme, T, "tenant:llm:month")
    expected = {
        "reserve": (0, "5.01"),
        "commit": ("1.5", "0.01"),
        "release": (0, "0.01"),
        "record": ("0.25", "2.01"),
    }[operation]
    assert (q.spent_usd, q.reserved_usd) == (usd(str(expected[0])), usd(expected[1]))
    assert acme.reconcile(T) == []


def test_a_one_write_reserve_applied_but_unanswered_holds_once(
    local_ledger: Ledger, local_client: DynamoDBClient
) -> None:
    # Given a warm tenant whose reserves take the one-write path (D70)
    set_quota(local_ledger, T, "tenant:llm:month", "10")
    local_ledger.reserve(T, estimate("0.01"))  # the period's first reserve: a transaction
    injector = Injector(local_client, "lost", count=1, operation="UpdateItem")

    # When the reserve's UpdateItem is applied but its answer is lost (the SDK resends it)
    r = local_ledger.reserve(T, estimate("3"))

    # Then the resend finds its hold and the reservation stands, held once
    assert injector.sends == 2
    assert "~@" in r.reservation_id
    assert r.quotas is not None and r.quotas[0].reserved_usd == usd("3.01")
    q = quota_state(local_ledger, T, "tenant:llm:month")
    assert (q.spent_usd, q.reserved_usd) == (usd("0"), usd("3.01"))
    assert local_ledger.reconcile(T) == []
    # and it settles once
    local_ledger.commit(T, r.reservation_id, actual("2.5"))
    q = quota_state(local_ledger, T, "tenant:llm:month")
    assert (q.spent_usd, q.reserved_usd) == (usd("2.5"), usd("0.01"))
    assert local_ledger.reconcile(T) == []


def test_an_unreachable_ledger_is_ledger_unavailable(clock: Clock) -> None:
    import boto3
    from botocore.config import Config

    s = Settings(table_name="costguard-x", ddb_connect_timeout_seconds=0.2, ddb_max_attempts=2)
    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        config=Config(connect_timeout=0.2, retries={"max_attempts": 2}),
    )
    ledger = Ledger(LedgerTable(client, s.table_name, s), s, clock=clock)

    with pytest.raises(LedgerUnavailable) as unavailable:
        ledger.reserve(T, estimate("1"))
    assert unavailable.value.retry_after_seconds == s.unavailable_retry_after_seconds

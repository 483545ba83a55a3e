"""A records cursor from outside the query's range, on DynamoDB Local: DynamoDB refuses such a
start key (ValidationException "outside query boundaries"), which the API answered with a 500;
moto does not check it, so this is pinned here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from costguard.ledger import Ledger

from tests.conftest import Clock
from tests.helpers import actual, set_quota

T = "acme"


@pytest.mark.ddblocal
@pytest.mark.parametrize(
    ("cursor", "expected"),
    [
        ("00000000000000000000000000", "all"),  # before the range: the range from its start
        ("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "none"),  # after the range: nothing follows it
        ("first", "rest"),  # a real cursor: the records after it
    ],
)
def test_a_records_cursor_outside_the_range_pages_from_where_it_points(
    local_ledger: Ledger, clock: Clock, cursor: str, expected: str
) -> None:
    local_ledger.create_tenant(T, "Acme")
    set_quota(local_ledger, T, "tenant:all:month", "100")
    for _ in range(3):
        local_ledger.record_usage(T, actual("0.01"))
        clock.advance(seconds=1)
    first = datetime(2026, 11, 25, tzinfo=UTC)
    last = first + timedelta(days=1)
    everything, _ = local_ledger.settled_records(T, first, last, limit=10)
    ids = [item.record_id for item in everything]
    after = ids[0] if cursor == "first" else cursor

    found, next_cursor = local_ledger.settled_records(T, first, last, limit=10, after=after)

    want = {"all": ids, "none": [], "rest": ids[1:]}[expected]
    assert [item.record_id for item in found] == want
    assert next_cursor is None

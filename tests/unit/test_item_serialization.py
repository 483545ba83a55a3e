"""The ledger's DynamoDB JSON is boto3's, value for value (issue 22 made it cheaper)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from costguard.store.writes import serialize, serialize_item

CASES: list[Any] = [
    "acme",
    "",
    Decimal("0.010000"),
    Decimal("-1.5"),
    Decimal("1E+3"),
    Decimal("123456789012345678901234567890.12345678"),
    0,
    7,
    -3,
    True,
    False,
    None,
    {"limit_usd": Decimal("100"), "thresholds": [50, 80], "nested": {"x": None, "y": "z"}},
    [],
    {},
    {"a", "b"},
    {Decimal(1), Decimal(2)},
    b"bytes",
]


@pytest.mark.parametrize("value", CASES, ids=repr)
def test_every_value_is_serialized_as_boto3_does(value: Any) -> None:
    assert serialize(value) == TypeSerializer().serialize(value)


def test_a_decimal_zero_is_sent_without_an_exponent() -> None:
    # a zero computed from decimals can print as 0E-7, which some compatible stores refuse
    zero = Decimal("0E-7")
    assert serialize(zero) == {"N": "0"}
    assert serialize_item({"a": zero, "b": None}) == {"a": {"N": "0"}}


@pytest.mark.parametrize(
    "value", [1.5, Decimal("NaN"), Decimal("Infinity"), Decimal("1." + "1" * 40)], ids=repr
)
def test_floats_non_numbers_and_inexact_decimals_are_refused(value: Any) -> None:
    with pytest.raises(Exception) as raised:
        serialize(value)
    with pytest.raises(type(raised.value)):
        TypeSerializer().serialize(value)

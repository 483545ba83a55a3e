"""Two fixes to moto (the embedded store and the unit tests), until moto ships them.

TransactGetItems: moto still refuses more than 25 items, DynamoDB's limit before 2022 (it is
100 since, as for TransactWriteItems); a sliced quota's snapshot reads up to 65.

moto adds and subtracts DynamoDB numbers with `Decimal` and stores `f"{result}"`, which for a
zero or a very small result is exponent notation ("0E-7", "1E-7"); its next arithmetic on that
attribute then parses it with `int()` and fails (ValueError inside a transaction). DynamoDB
and DynamoDB Local both handle these values. The fix formats results in plain notation.
"""

from __future__ import annotations

from decimal import Decimal

from moto.dynamodb.models.dynamo_type import DDBType, DynamoType

_original_add = DynamoType.__add__
_original_sub = DynamoType.__sub__


def _number(text: str) -> Decimal:
    return Decimal(text)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text if text not in ("-0",) else "0"


def _add(self: DynamoType, other: DynamoType) -> DynamoType:
    if self.is_number() and other.is_number():
        return DynamoType({DDBType.NUMBER: _plain(_number(self.value) + _number(other.value))})
    return _original_add(self, other)


def _sub(self: DynamoType, other: DynamoType) -> DynamoType:
    if self.is_number() and other.is_number():
        return DynamoType({DDBType.NUMBER: _plain(_number(self.value) - _number(other.value))})
    return _original_sub(self, other)


def apply() -> None:
    from moto.dynamodb import responses

    responses.TRANSACTION_MAX_ITEMS = 100
    DynamoType.__add__ = _add  # type: ignore[method-assign]
    DynamoType.__sub__ = _sub  # type: ignore[method-assign]

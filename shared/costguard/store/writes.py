"""Building DynamoDB transaction items without placeholder bookkeeping in every caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer

from costguard.store.keys import Key

_serializer = TypeSerializer()
_NOT_NUMBERS = frozenset({"Infinity", "-Infinity", "NaN", "-NaN", "sNaN", "-sNaN"})


def serialize(value: Any) -> dict[str, Any]:
    """DynamoDB JSON, as boto3's TypeSerializer writes it, without its type dispatch for what
    the ledger writes (str, Decimal, int, bool, None, dict, list: ~4× cheaper, issue 22);
    anything else (sets, bytes) goes through boto3's, which also refuses floats."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is Decimal:
        # A zero computed from decimals ("0.0111" - "0.011100") can print as "0E-7"; some
        # DynamoDB-compatible stores (moto) reject exponent notation, so send a plain 0.
        if value.is_zero():
            return {"N": "0"}
        number = str(DYNAMODB_CONTEXT.create_decimal(value))  # Inexact/Rounded raise, as boto3
        if number in _NOT_NUMBERS:
            raise TypeError("Infinity and NaN not supported")
        return {"N": number}
    if kind is bool:
        return {"BOOL": value}
    if kind is int:
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(value))}
    if value is None:
        return {"NULL": True}
    if kind is dict:
        return {"M": {k: serialize(v) for k, v in value.items()}}
    if kind is list:
        return {"L": [serialize(v) for v in value]}
    serialized: dict[str, Any] = dict(_serializer.serialize(value))
    return serialized


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: serialize(v) for k, v in item.items() if v is not None}


@dataclass
class ItemWrite:
    """One item's part of a transaction: an Update, a Put or a ConditionCheck.

    Several concerns may touch the same item in one transaction (a tenant's day counter is
    also its day rollup); DynamoDB allows one action per item, so they merge here.
    """

    key: Key
    kind: str = "Update"
    sets: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    item: dict[str, Any] | None = None
    return_old_on_failure: bool = True

    def name(self, attribute: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def add(self, attribute: str, amount: Any) -> None:
        self.adds.append(f"{self.name(attribute)} {self.value(amount)}")

    def condition(self, expression: str) -> None:
        self.conditions.append(f"({expression})")

    def to_transact_item(self, table_name: str) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": table_name}
        if self.kind == "Put":
            assert self.item is not None
            body["Item"] = serialize_item({"pk": self.key[0], "sk": self.key[1], **self.item})
        else:
            body["Key"] = {"pk": {"S": self.key[0]}, "sk": {"S": self.key[1]}}
        if self.kind == "Update":
            parts = []
            if self.sets:
                parts.append("SET " + ", ".join(self.sets))
            if self.adds:
                parts.append("ADD " + ", ".join(self.adds))
            if self.removes:
                parts.append("REMOVE " + ", ".join(self.removes))
            if self.deletes:
                parts.append("DELETE " + ", ".join(self.deletes))
            body["UpdateExpression"] = " ".join(parts)
        if self.conditions:
            body["ConditionExpression"] = " AND ".join(self.conditions)
        if self.names:
            body["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            body["ExpressionAttributeValues"] = {k: serialize(v) for k, v in self.values.items()}
        if self.return_old_on_failure and self.conditions:
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {self.kind: body}


class TransactionBuilder:
    """Collects item writes by key so that each item appears once."""

    def __init__(self) -> None:
        self._writes: dict[Key, ItemWrite] = {}

    def update(self, key: Key) -> ItemWrite:
        write = self._writes.get(key)
        if write is None:
            write = self._writes[key] = ItemWrite(key=key)
        return write

    def put(self, key: Key, item: dict[str, Any], condition: str | None = None) -> ItemWrite:
        write = ItemWrite(key=key, kind="Put", item=item)
        if condition:
            write.condition(condition)
        self._writes[key] = write
        return write

    def check(self, key: Key, condition: str, values: dict[str, Any] | None = None) -> ItemWrite:
        write = ItemWrite(key=key, kind="ConditionCheck")
        write.condition(condition)
        write.values.update(values or {})
        self._writes[key] = write
        return write

    @property
    def writes(self) -> list[ItemWrite]:
        return list(self._writes.values())

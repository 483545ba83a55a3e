"""The DynamoDB edge: one place that talks to the table, retries conflicts, maps failures."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from costguard import telemetry
from costguard.errors import LedgerCorrupted, LedgerUnavailable
from costguard.settings import Settings
from costguard.store.keys import Key
from costguard.store.lean import known_services, lean
from costguard.store.writes import ItemWrite, serialize

_deserializer = TypeDeserializer()

# Errors that mean "the ledger could not answer now", after botocore's own retries.
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "ResourceNotFoundException",
    }
)


_OPERATION_NAMES = {
    "transact_write_items": "TransactWriteItems",
    "get_item": "GetItem",
    "batch_get_item": "BatchGetItem",
    "query": "Query",
    "scan": "Scan",
    "update_item": "UpdateItem",
    "put_item": "PutItem",
}


_TYPE_MISMATCH = re.compile(r"incorrect data type|type mismatch", re.IGNORECASE)


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


class ConditionFailed(Exception):
    """A single write's condition failed; `old` is the item as it was (None: absent)."""

    def __init__(self, old: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.old = old


class Cancelled(Exception):
    """A transaction was cancelled by a condition; `reasons` are aligned with its items.

    DynamoDB's cancellation reasons are translated here, at the edge: callers ask which items'
    conditions failed (by position or by key) and what those items held, never for codes.
    """

    def __init__(self, reasons: list[dict[str, Any]], keys: Sequence[Key] = ()) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons
        self.keys = list(keys)

    def failed(self) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """(index, old item or None) of every item whose condition failed."""
        for index, reason in enumerate(self.reasons):
            if reason.get("Code") == "ConditionalCheckFailed":
                item = reason.get("Item")
                yield index, deserialize(item) if item else None

    def by_key(self) -> dict[Key, dict[str, Any] | None]:
        """{key: old item or None} of every item whose condition failed."""
        return {self.keys[index]: item for index, item in self.failed()}

    def old(self, key: Key) -> dict[str, Any] | None:
        """The item at `key` if its condition failed (None if it did not, or was absent)."""
        return self.by_key().get(key)


def make_client(settings: Settings, endpoint_url: str | None = None) -> Any:
    """A DynamoDB client with short timeouts: a slow ledger must fail fast, not hang a call."""
    config = Config(
        connect_timeout=settings.ddb_connect_timeout_seconds,
        read_timeout=settings.ddb_read_timeout_seconds,
        retries={"max_attempts": settings.ddb_max_attempts, "mode": "standard"},
        tcp_keepalive=True,
        # Every request is built by this module and covered by tests against DynamoDB Local;
        # client-side validation would double the CPU of a transaction (bench/results).
        parameter_validation=False,
    )
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session: Any = boto3.DEFAULT_SESSION
    # One session for every client of the process (as boto3.client); its loader skips
    # botocore's listing of every service before loading a model (D121).
    known_services(session)
    # The ledger's requests are built in wire form here: botocore need not walk them (D102).
    return lean(session.client("dynamodb", endpoint_url=endpoint_url, config=config))


class LedgerTable:
    """Typed access to the ledger table; every call maps AWS failures to domain errors."""

    def __init__(self, client: Any, table_name: str, settings: Settings) -> None:
        self.client = client
        self.name = table_name
        self._attempts = settings.transaction_attempts
        self._retry_after = settings.unavailable_retry_after_seconds

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        return LedgerUnavailable(
            f"ledger unavailable: {type(exc).__name__}", retry_after_seconds=self._retry_after
        )

    def _call(self, operation: str, **kwargs: Any) -> Any:
        name = _OPERATION_NAMES.get(operation) or operation.title().replace("_", "")
        if not telemetry.tracing() and not telemetry.metrics_on():
            return self._send(operation, **kwargs)  # nothing to time or to trace (D68)
        started = time.perf_counter()
        try:
            if not telemetry.tracing():  # no span to start, no attribute to build (D68)
                return self._send(operation, **kwargs)
            with telemetry.tracer.start_as_current_span(
                f"dynamodb.{name}", record_exception=False, set_status_on_exception=False
            ) as span:
                span.set_attribute("db.system", "dynamodb")
                span.set_attribute("db.operation", name)
                span.set_attribute("aws.dynamodb.table_names", [self.name])
                try:
                    return self._send(operation, **kwargs)
                except Exception as exc:
                    span.set_attribute("costguard.outcome", type(exc).__name__)
                    raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            telemetry.count(f"LedgerMs.{name}", elapsed_ms, telemetry.MetricUnit.Milliseconds)

    def _send(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if (
                code in _UNAVAILABLE_CODES
                or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) >= 500
            ):
                raise self._unavailable(exc) from exc
            raise
        except BotoCoreError as exc:
            raise self._unavailable(exc) from exc

    def transact(self, writes: Sequence[ItemWrite]) -> None:
        """Run one transaction; retry `TransactionConflict` cancellations with full jitter.

        One `ClientRequestToken` goes unchanged with every resend (botocore's retries and the
        conflict retries here), so an attempt DynamoDB applied but whose answer was lost is
        not applied twice (the token is honoured for 10 minutes).
        """
        token = uuid.uuid4().hex
        items = [w.to_transact_item(self.name) for w in writes]
        for attempt in range(self._attempts):
            try:
                self._call("transact_write_items", TransactItems=items, ClientRequestToken=token)
                return
            except ClientError as exc:
                error = exc.response.get("Error", {})
                if error.get("Code") == "ValidationException" and _TYPE_MISMATCH.search(
                    str(error.get("Message", ""))
                ):
                    # Arithmetic on a counter field that is not a number: a corrupted item.
                    raise LedgerCorrupted(f"a transaction met a malformed item: {error}") from exc
                if error.get("Code") != "TransactionCanceledException":
                    raise
                reasons: list[dict[str, Any]] = [
                    dict(r) for r in exc.response.get("CancellationReasons") or []
                ]
                codes = {r.get("Code") for r in reasons}
                if "ConditionalCheckFailed" in codes:
                    raise Cancelled(reasons, [w.key for w in writes]) from exc
                if "TransactionConflict" in codes or "ThrottlingError" in codes:
                    if attempt + 1 < self._attempts:
                        time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311
                        continue
                    raise self._unavailable(exc) from exc
                raise
        raise AssertionError("unreachable")

    def get(self, key: Key, consistent: bool = True) -> dict[str, Any] | None:
        answer = self._call(
            "get_item",
            TableName=self.name,
            Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            ConsistentRead=consistent,
        )
        item = answer.get("Item")
        return deserialize(item) if item else None

    def transact_get(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """A serializable snapshot of up to 100 items (TransactGetItems, 2 RRU per 4 KB each):
        what a sliced quota's refusal is decided on, since its slices change independently."""
        request = [
            {"Get": {"TableName": self.name, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}}
            for pk, sk in keys
        ]
        for attempt in range(self._attempts):
            try:
                answer = self._call("transact_get_items", TransactItems=request)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                if attempt + 1 < self._attempts:
                    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311
                    continue
                raise self._unavailable(exc) from exc
            found: dict[Key, dict[str, Any]] = {}
            for response in answer.get("Responses", []):
                if response.get("Item"):
                    item = deserialize(response["Item"])
                    found[(item["pk"], item["sk"])] = item
            return found
        raise AssertionError("unreachable")

    def batch_get(self, keys: Sequence[Key], consistent: bool = True) -> dict[Key, dict[str, Any]]:
        found: dict[Key, dict[str, Any]] = {}
        pending = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in dict.fromkeys(keys)]
        for start in range(0, len(pending), 100):
            request: dict[str, Any] = {
                self.name: {"Keys": pending[start : start + 100], "ConsistentRead": consistent}
            }
            for round_ in range(8):
                answer = self._call("batch_get_item", RequestItems=request)
                for raw in answer.get("Responses", {}).get(self.name, []):
                    item = deserialize(raw)
                    found[(item["pk"], item["sk"])] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(random.uniform(0, 0.01 * 2**round_))  # noqa: S311
            if request:
                raise LedgerUnavailable("ledger kept keys unprocessed", self._retry_after)
        return found

    def query(
        self,
        key_condition: str,
        values: dict[str, Any],
        *,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start_key: dict[str, Any] | None = None,
        consistent: bool = False,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a query: items and the key to continue from (None at the end)."""
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": {k: serialize(v) for k, v in values.items()},
            "ScanIndexForward": forward,
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = consistent
        if limit:
            kwargs["Limit"] = limit
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        if names:
            kwargs["ExpressionAttributeNames"] = names
        answer = self._call("query", **kwargs)
        return [deserialize(i) for i in answer.get("Items", [])], answer.get("LastEvaluatedKey")

    def query_all(
        self, key_condition: str, values: dict[str, Any], **kw: Any
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page, start = self.query(key_condition, values, start_key=start, **kw)
            items.extend(page)
            if start is None:
                return items

    def scan_index(
        self, index: str, filter_expression: str, values: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        """Up to `limit` matches from a (sparse) index."""
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while len(found) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.name,
                "IndexName": index,
                "FilterExpression": filter_expression,
                "ExpressionAttributeValues": {k: serialize(v) for k, v in values.items()},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            answer = self._call("scan", **kwargs)
            found.extend(deserialize(i) for i in answer.get("Items", []))
            start = answer.get("LastEvaluatedKey")
            if not start:
                break
        return found[:limit]

    def update(self, write: ItemWrite) -> dict[str, Any]:
        """A single conditional UpdateItem (admin paths); returns the new item."""
        body = write.to_transact_item(self.name)["Update"]
        body.pop("ReturnValuesOnConditionCheckFailure", None)
        answer = self._call("update_item", ReturnValues="ALL_NEW", **body)
        return deserialize(answer.get("Attributes", {}))

    def update_or_old(self, write: ItemWrite) -> dict[str, Any]:
        """One conditional UpdateItem returning the item it wrote (`ALL_NEW`); a failed
        condition raises ConditionFailed with the item as it was (`ALL_OLD`, None: absent)."""
        body = write.to_transact_item(self.name)["Update"]
        try:
            answer = self._call("update_item", ReturnValues="ALL_NEW", **body)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ValidationException" and _TYPE_MISMATCH.search(
                str(error.get("Message", ""))
            ):
                raise LedgerCorrupted(f"a write met a malformed item: {error}") from exc
            if error.get("Code") != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            if old is None and "ReturnValuesOnConditionCheckFailure" in body:
                # An emulator that does not return the item: read it (a decision on it is
                # re-checked by the next write anyway).
                raise ConditionFailed(self.get(write.key)) from exc
            raise ConditionFailed(deserialize(old) if old else None) from exc
        return deserialize(answer.get("Attributes", {}))

    def put(self, write: ItemWrite) -> None:
        body = write.to_transact_item(self.name)["Put"]
        body.pop("ReturnValuesOnConditionCheckFailure", None)
        self._call("put_item", **body)

"""The ledger's stream on one machine: records delivered in batches to a handler, as Lambda does.

Two sources of records: the DynamoDB Streams API (DynamoDB Local, or any real endpoint), and
the embedded moto store, whose stream shard is drained after every call (moto keeps the whole
stream history inside the table and copies it on every transaction; draining keeps it empty).

Delivery follows Lambda's event source mapping with `ReportBatchItemFailures`: a batch is
retried from its first failed record, a bounded number of times; a record that still fails goes
to `failures` (the on-failure destination) and the records after it go on.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]
Filter = Callable[[dict[str, Any]], bool]
STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/local"
LIMIT = 1000
"""Records asked of one `GetRecords` (the API's maximum)."""


def lambda_record(record: dict[str, Any], source_arn: str) -> dict[str, Any]:
    """A stream record as Lambda hands it over: JSON-safe, with `eventSourceARN`."""
    out = copy.deepcopy(record)
    change = out.get("dynamodb", {})
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    out["eventSourceARN"] = source_arn
    return out


class Delivery:
    """Hands records to a stream handler in batches with Lambda's partial-failure semantics."""

    def __init__(
        self,
        handler: Handler,
        *,
        batch_size: int = 100,
        attempts: int = 3,
        name: str = "alerts",
        accepts: Filter | None = None,
    ) -> None:
        self.handler = handler
        self.batch_size = batch_size
        self.accepts = accepts
        """The event source mapping's filters: a record they refuse never invokes the handler."""
        self.attempts = attempts
        self.name = name
        self.failures: deque[dict[str, Any]] = deque(maxlen=1000)
        """Records that kept failing: what the on-failure queue would hold."""
        self.delivered = 0

    def deliver(self, records: Iterable[dict[str, Any]]) -> None:
        queue = [r for r in records if self.accepts is None or self.accepts(r)]
        while queue:
            batch, queue = queue[: self.batch_size], queue[self.batch_size :]
            queue = self._batch(batch) + queue

    def _batch(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Deliver one batch; returns what comes next (records after a given-up one)."""
        for _ in range(self.attempts):
            try:
                answer = self.handler({"Records": batch}) or {}
            except Exception as exc:  # the whole invocation failed: retry the whole batch
                print(f"{self.name}: invocation failed: {exc!r}", file=sys.stderr)
                continue
            failed = [f["itemIdentifier"] for f in answer.get("batchItemFailures", [])]
            if not failed:
                self.delivered += len(batch)
                return []
            seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
            first = min(seqs.index(s) for s in failed if s in seqs)
            self.delivered += first
            batch = batch[first:]
        given_up = batch[0]
        self.failures.append(given_up)
        print(
            f"{self.name}: gave up on stream record {given_up['dynamodb']['SequenceNumber']} "
            f"({given_up['dynamodb'].get('Keys')}) after {self.attempts} attempts",
            file=sys.stderr,
        )
        return batch[1:]


class MotoStream:
    """The embedded store's stream: moto's shard items, taken out after each call."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.source_arn = STREAM_ARN.format(table=table_name)
        self.pending: deque[dict[str, Any]] = deque()
        self._sequence = 0

    def drain(self) -> None:
        """Move what moto's shard holds into `pending` (call under the store's lock)."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables.get(self.table_name)
        shard = getattr(table, "stream_shard", None)
        if shard is None or not shard.items:
            return
        items, shard.items = shard.items, []
        for item in items:
            self._sequence += 1
            record = item.to_json()
            record["dynamodb"]["SequenceNumber"] = f"{self._sequence:021d}"
            self.pending.append(lambda_record(record, self.source_arn))

    def take(self) -> list[dict[str, Any]]:
        taken = []
        while self.pending:
            taken.append(self.pending.popleft())
        return taken


class RawRecords:
    """A response parser for `GetRecords` that keeps the records as the service sent them.

    The event source mapping hands Lambda the records as JSON: attribute values as DynamoDB
    JSON, `ApproximateCreationDateTime` a number, binaries base64 text. That is the Streams API's
    own answer, so `json.loads` of it is the Lambda shape already; botocore's parser walked every
    attribute value against the service model (to turn it back into this shape with
    `lambda_record`'s deep copy) and was most of the runner's CPU per stream record. Every other
    operation, and any answer but a 200, goes to botocore's parser."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_parser(self, protocol: str) -> Any:
        return _RawRecordsParser(self._inner.create_parser(protocol))


class _RawRecordsParser:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def parse(self, response: dict[str, Any], shape: Any) -> Any:
        if shape is None or shape.name != "GetRecordsOutput" or response["status_code"] != 200:
            return self._inner.parse(response, shape)
        answer = json.loads(response["body"] or b"{}")
        answer["ResponseMetadata"] = {
            "HTTPStatusCode": 200,
            "HTTPHeaders": dict(response["headers"]),
        }
        return answer


def raw_records(streams: Any) -> Any:
    """`streams` (a boto3 `dynamodbstreams` client) answering `get_records` with the records as
    sent (`RawRecords`); a client whose botocore is not shaped as expected is left as it is."""
    endpoint = getattr(streams, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    if factory is not None and not isinstance(factory, RawRecords):
        endpoint._response_parser_factory = RawRecords(factory)  # type: ignore[union-attr]
    return streams


class StreamsApi:
    """Reads a table's stream through the DynamoDB Streams API (DynamoDB Local, AWS).

    Records come as the service sends them (`raw_records`), which is what Lambda is handed.
    The shards are listed again every `rediscover_seconds`, and at once when one closes (its
    children are read from their beginning): a poll is then one `GetRecords` per open shard."""

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table_name: str,
        latest: bool = False,
        rediscover_seconds: float = 5.0,
    ) -> None:
        self.streams = raw_records(streams)
        self.stream_arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self.start = "LATEST" if latest else "TRIM_HORIZON"
        self.iterators: dict[str, str | None] = {}
        self.rediscover_seconds = rediscover_seconds
        self._discovered_at: float | None = None

    def _discover(self) -> None:
        now = time.monotonic()
        if self._discovered_at is not None and now - self._discovered_at < self.rediscover_seconds:
            return
        self._discovered_at = now
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self.iterators:
                self.iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=self.start
                )["ShardIterator"]
        # shards found later (after a split) are read from their beginning
        self.start = "TRIM_HORIZON"

    def take(self) -> list[dict[str, Any]]:
        self._discover()
        records: list[dict[str, Any]] = []
        for shard_id, iterator in list(self.iterators.items()):
            if iterator is None:  # closed and read to its end
                continue
            while iterator:
                answer = self.streams.get_records(ShardIterator=iterator, Limit=LIMIT)
                iterator = answer.get("NextShardIterator")
                page = answer.get("Records", [])
                for record in page:
                    record["eventSourceARN"] = self.stream_arn
                records.extend(page)
                if len(page) < LIMIT:  # all there is for now; the iterator goes on next poll
                    break
            self.iterators[shard_id] = iterator
            if iterator is None:  # the shard closed: its children are listed on the next poll
                self._discovered_at = None
        return records


class Poller:
    """A thread that takes records from a source and delivers them, until stopped."""

    def __init__(
        self, take: Callable[[], list[dict[str, Any]]], delivery: Delivery, every: float = 1.0
    ) -> None:
        self.take = take
        self.delivery = delivery
        self.every = every
        self.lock = threading.Lock()

    def once(self) -> int:
        """Deliver what is there now (and what that delivery wrote, until quiet)."""
        total = 0
        with self.lock:
            while records := self.take():
                self.delivery.deliver(records)
                total += len(records)
        return total

    def tick(self) -> int:
        """Deliver what one read finds: a timer's poll (what the delivery itself wrote comes
        with the next one, as a stream's next batch does)."""
        with self.lock:
            records = self.take()
            if records:
                self.delivery.deliver(records)
            return len(records)

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.every):
            try:
                self.tick()
            except Exception as exc:  # a broken poll is reported; the next one tries again
                print(f"stream poller: {exc!r}", file=sys.stderr)
                time.sleep(1)

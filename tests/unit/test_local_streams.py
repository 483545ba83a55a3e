"""The local runner's stream reader (`make run`): records as Lambda is handed them, shards
listed on a timer and when one closes, a poll that stops at a short page."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from local.streams import LIMIT, RawRecords, StreamsApi, lambda_record, raw_records

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-12-02T00:00:00.000"
BODY = {
    "Records": [
        {
            "eventID": "e1",
            "eventName": "MODIFY",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1796220625,
                "Keys": {"pk": {"S": "TENANT#a"}, "sk": {"S": "MONTH#2026-12"}},
                "NewImage": {
                    "pk": {"S": "TENANT#a"},
                    "sk": {"S": "MONTH#2026-12"},
                    "q_llm_avail": {"N": "99.99"},
                    "tags": {"SS": ["x", "y"]},
                    "holds": {"M": {"h_1": {"L": [{"N": "1"}, {"BOOL": True}, {"NULL": True}]}}},
                },
                "OldImage": {"pk": {"S": "TENANT#a"}, "sk": {"S": "MONTH#2026-12"}},
                "SequenceNumber": "000000000000000000101",
                "SizeBytes": 120,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
        }
    ],
    "NextShardIterator": "it-2",
}


def _streams_client() -> Any:
    return boto3.client("dynamodbstreams", region_name="us-east-1")


def _answer(client: Any, body: dict[str, Any], status: int = 200) -> None:
    raw = json.dumps(body).encode()

    def answer(**_: Any) -> Any:
        return AWSResponse("https://streams", status, {"x-amzn-requestid": "r"}, _Raw(raw))  # type: ignore[arg-type]

    client.meta.events.register_first("before-send.dynamodb-streams", answer)


class _Raw:
    """The raw body botocore's response reads (`content`, `stream`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def test_records_come_as_lambda_is_handed_them() -> None:
    # Given a GetRecords answer, read by botocore's parser and by the raw one
    plain, raw = _streams_client(), raw_records(_streams_client())
    assert isinstance(raw._endpoint._response_parser_factory, RawRecords)
    _answer(plain, BODY)
    _answer(raw, BODY)
    parsed = plain.get_records(ShardIterator="it-1")["Records"]
    got = raw.get_records(ShardIterator="it-1")["Records"]
    # Then the raw records are what lambda_record makes of botocore's: the Lambda shape
    assert got == [
        {k: v for k, v in lambda_record(r, ARN).items() if k != "eventSourceARN"} for r in parsed
    ]
    assert got[0]["dynamodb"]["ApproximateCreationDateTime"] == 1796220625


def test_other_answers_go_to_botocores_parser() -> None:
    # Given a refused GetRecords (an expired iterator)
    raw = raw_records(_streams_client())
    _answer(raw, {"__type": "ExpiredIteratorException", "message": "old"}, status=400)
    # When it is read, Then botocore raises its modeled error
    with pytest.raises(raw.exceptions.ExpiredIteratorException):
        raw.get_records(ShardIterator="it-1")


class FakeStreams:
    """A Streams API with shards the test opens and closes, counting its calls."""

    def __init__(self) -> None:
        self.shards: dict[str, list[dict[str, Any]]] = {"s1": []}
        self.closed: set[str] = set()
        self.calls: list[str] = []
        self._endpoint = None

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        self.calls.append("describe")
        return {"StreamDescription": {"Shards": [{"ShardId": s} for s in self.shards]}}

    def get_shard_iterator(self, ShardId: str, **_: Any) -> dict[str, Any]:
        return {"ShardIterator": f"{ShardId}:0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls.append("get")
        shard, at = ShardIterator.split(":")
        page = self.shards[shard][int(at) : int(at) + Limit]
        end = int(at) + len(page)
        done = shard in self.closed and end == len(self.shards[shard])
        return {"Records": page, "NextShardIterator": None if done else f"{shard}:{end}"}


class FakeTable:
    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"LatestStreamArn": ARN}}


def _records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"dynamodb": {"SequenceNumber": f"{i:021d}"}} for i in range(start, start + n)]


def test_a_poll_reads_each_open_shard_once_and_lists_shards_on_a_timer() -> None:
    # Given a stream with one shard and three records
    streams = FakeStreams()
    streams.shards["s1"] = _records(3)
    api = StreamsApi(FakeTable(), streams, "t", rediscover_seconds=3600)
    # When it is polled three times
    first = api.take()
    second = api.take()
    third = api.take()
    # Then the records come once, with their source, and a poll is one GetRecords
    assert [r["dynamodb"]["SequenceNumber"] for r in first] == [f"{i:021d}" for i in range(3)]
    assert all(r["eventSourceARN"] == ARN for r in first)
    assert second == third == []
    assert streams.calls == ["describe", "get", "get", "get"]


def test_a_full_page_is_followed_in_the_same_poll() -> None:
    # Given more records than one GetRecords returns
    streams = FakeStreams()
    streams.shards["s1"] = _records(LIMIT + 5)
    api = StreamsApi(FakeTable(), streams, "t", rediscover_seconds=3600)
    # When it is polled once, Then every record comes
    assert len(api.take()) == LIMIT + 5
    assert streams.calls == ["describe", "get", "get"]


def test_a_closed_shards_children_are_read_from_their_beginning_on_the_next_poll() -> None:
    # Given a shard that closes, and its child holding records written since
    streams = FakeStreams()
    streams.shards["s1"] = _records(2)
    api = StreamsApi(FakeTable(), streams, "t", rediscover_seconds=3600)
    assert len(api.take()) == 2
    streams.shards["s1"] += _records(1, start=2)
    streams.closed.add("s1")
    streams.shards["s2"] = _records(2, start=3)
    # When polled: the parent's last record, then (listed again) the child's from its start
    assert [r["dynamodb"]["SequenceNumber"][-1] for r in api.take()] == ["2"]
    assert [r["dynamodb"]["SequenceNumber"][-1] for r in api.take()] == ["3", "4"]
    # Then the closed shard is not read again, nor the shards listed on every poll
    calls = len(streams.calls)
    assert api.take() == []
    assert streams.calls[calls:] == ["get"]

"""The DynamoDB the local runner uses: an endpoint (DynamoDB Local, which `make run` starts, or
any DynamoDB-compatible one), or — for in-process tests only — embedded moto.

`make run` never uses moto: moto copies every table on every transaction, so its latency and
memory grow with the data (measured in issue 19: 107 → 508 ms per pair over 1,000 pairs,
14.3 GB). The in-process tests (`tests/api`) keep it for speed. moto is not safe under
concurrent requests either (measured: lost updates): every call into it holds one lock, so
each DynamoDB call (a transaction included) is applied whole before the next starts — what
DynamoDB guarantees per call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from costguard.store.lean import lean
from costguard.store.schema import create_table


class SerializedClient:
    """A boto3 client whose calls run one at a time; `after` runs under the same lock after
    every call (the embedded stream is drained there, so it sees each call whole)."""

    def __init__(self, client: Any, after: Callable[[], None] | None = None) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._after = after

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("meta", "exceptions"):
            return attribute
        lock, after = self._lock, self._after

        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                try:
                    return attribute(*args, **kwargs)
                finally:
                    if after is not None:
                        after()

        return call


@dataclass
class Store:
    """The runner's DynamoDB: a client, the table's stream, and how to close it."""

    client: Any
    changes: Callable[[], list[dict[str, Any]]]
    """Stream records written since the last call, in Lambda's event shape."""
    close: Callable[[], None]


CONFIG = Config(
    max_pool_connections=64,
    retries={"max_attempts": 3, "mode": "standard"},
    parameter_validation=False,
)


def _local_credentials() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")


def client_for(endpoint: str) -> Any:
    """A DynamoDB client for a local endpoint (fake credentials unless some are set)."""
    _local_credentials()
    # The production client's shortcuts (make_client's, D102): the API's requests cost here
    # what they cost in Lambda, and so does the floor `python -m bench servercpu` compares.
    return lean(boto3.client("dynamodb", endpoint_url=endpoint, config=CONFIG))


def open_store(table_name: str, endpoint: str | None) -> Store:
    """A DynamoDB client with the ledger table (and its stream) present."""
    from local.streams import MotoStream, StreamsApi

    _local_credentials()
    config = CONFIG
    if endpoint:
        client = client_for(endpoint)
        existed = table_name in client.list_tables()["TableNames"]
        if not existed:
            create_table(client, table_name)
        streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, config=config)
        # A table that was there before: alerts start from now (replays would be harmless,
        # the dedup markers see to that, but slow).
        reader = StreamsApi(client, streams, table_name, latest=existed)
        return Store(client, reader.take, lambda: None)
    from moto import mock_aws

    from local import moto_fixes

    moto_fixes.apply()
    mock = mock_aws()
    mock.start()
    stream = MotoStream(table_name)
    client = SerializedClient(boto3.client("dynamodb", config=config), after=stream.drain)
    # moto keeps a table's stream history inside the table and deep-copies the table on every
    # transaction: the drain after each call keeps that history empty.
    create_table(client, table_name)
    return Store(client, stream.take, mock.stop)


def floor_update(client: Any, table_name: str) -> None:
    """One bare conditional UpdateItem, without any costguard code: the floor `python -m bench
    load` compares a guarded call with."""
    client.update_item(
        TableName=table_name,
        Key={"pk": {"S": "LOCAL#FLOOR"}, "sk": {"S": "MONTH#0000-00"}},
        UpdateExpression="SET #a = if_not_exists(#a, :l) - :v, #l = if_not_exists(#l, :l) "
        "ADD #h :v",
        ConditionExpression="attribute_not_exists(#a) OR #a >= :v",
        ExpressionAttributeNames={"#a": "q_llm_avail", "#l": "q_llm_limit", "#h": "q_llm_held"},
        ExpressionAttributeValues={":l": {"N": "1000000000000"}, ":v": {"N": "0.01"}},
    )

"""The DynamoDB the local runner uses: embedded moto (default) or any endpoint.

moto is not safe under concurrent requests (measured: lost updates). Every call into the
embedded store therefore holds one lock, so each DynamoDB call (a transaction included) is
applied whole before the next starts — what DynamoDB guarantees per call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from costguard.ledger.schema import create_table


class SerializedClient:
    """A boto3 client whose calls run one at a time."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("meta", "exceptions"):
            return attribute
        lock = self._lock

        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return attribute(*args, **kwargs)

        return call


def open_store(table_name: str, endpoint: str | None) -> tuple[Any, Callable[[], None]]:
    """A DynamoDB client with the ledger table present, and a function that closes it."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    config = Config(
        max_pool_connections=64,
        retries={"max_attempts": 3, "mode": "standard"},
        parameter_validation=False,
    )
    if endpoint:
        client = boto3.client("dynamodb", endpoint_url=endpoint, config=config)
        if table_name not in client.list_tables()["TableNames"]:
            create_table(client, table_name)
        return client, lambda: None
    from moto import mock_aws

    from local import moto_fixes

    moto_fixes.apply()
    mock = mock_aws()
    mock.start()
    client = SerializedClient(boto3.client("dynamodb", config=config))
    # moto deep-copies a whole table (stream history included) for every action of every
    # transaction; without a stream the embedded store stays usable for longer. Nothing reads
    # the stream locally yet (threshold alerts, issue 8, will bring that back).
    create_table(client, table_name, stream=False)
    return client, mock.stop

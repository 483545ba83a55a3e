"""Fixtures: a ledger on moto (fast, single-threaded) and on DynamoDB Local (real atomicity)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3
import pytest
from costguard.ledger import Ledger, LedgerTable
from costguard.settings import Settings
from costguard.store.lean import lean
from costguard.store.schema import create_table
from moto import mock_aws

from local import ddblocal, moto_fixes

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

moto_fixes.apply()
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@dataclass
class Clock:
    """A clock the test moves by hand."""

    at: datetime = field(default_factory=lambda: datetime(2026, 11, 25, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> Settings:
    return Settings(table_name="costguard-test")


@pytest.fixture
def moto_client() -> Iterator[DynamoDBClient]:
    with mock_aws():
        # The ledger's client as make_client builds it (D102): every test runs its shortcuts.
        client = lean(boto3.client("dynamodb", region_name="us-east-1"))
        create_table(client, "costguard-test")
        yield client


@pytest.fixture
def ledger(moto_client: DynamoDBClient, settings: Settings, clock: Clock) -> Ledger:
    return Ledger(LedgerTable(moto_client, settings.table_name, settings), settings, clock=clock)


@pytest.fixture(scope="session")
def ddb_local() -> Iterator[str]:
    reason = ddblocal.available()
    if reason:
        pytest.fail(f"DynamoDB Local is required for these tests: {reason}")
    server = ddblocal.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def local_client(ddb_local: str) -> Iterator[DynamoDBClient]:
    """A fresh table on DynamoDB Local for each test (deleted afterwards)."""
    from botocore.config import Config

    client = lean(
        boto3.client(
            "dynamodb",
            endpoint_url=ddb_local,
            region_name="us-east-1",
            config=Config(max_pool_connections=64, retries={"max_attempts": 3, "mode": "standard"}),
        )
    )
    name = f"costguard-{uuid.uuid4().hex[:8]}"
    create_table(client, name)
    client.table_name = name  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        client.delete_table(TableName=name)


@pytest.fixture
def local_ledger(local_client: DynamoDBClient, clock: Clock) -> Ledger:
    name = local_client.table_name  # type: ignore[attr-defined]
    s = Settings(table_name=name)
    return Ledger(LedgerTable(local_client, name, s), s, clock=clock)

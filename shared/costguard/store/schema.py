"""The ledger table's definition: the one source for tests, the local runner and CDK."""

from __future__ import annotations

from typing import Any

PK = "pk"
SK = "sk"
HOLDS_INDEX = "holds"
HOLDS_PK = "gsi1pk"
HOLDS_SK = "gsi1sk"
TTL_ATTRIBUTE = "ttl"
ACTIVE_INDEX = "active"
ACTIVE_PK = "gsi2pk"
ACTIVE_SK = "gsi2sk"

KEY_SCHEMA = [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": name, "AttributeType": "S"}
    for name in (PK, SK, HOLDS_PK, HOLDS_SK, ACTIVE_PK, ACTIVE_SK)
]
GLOBAL_SECONDARY_INDEXES = [
    {
        "IndexName": HOLDS_INDEX,
        "KeySchema": [
            {"AttributeName": HOLDS_PK, "KeyType": "HASH"},
            {"AttributeName": HOLDS_SK, "KeyType": "RANGE"},
        ],
        # Only live reservations carry the index keys (a sparse index): expiry reads nothing else.
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["plan", "tenant_id"]},
    },
    {
        "IndexName": ACTIVE_INDEX,
        "KeySchema": [
            {"AttributeName": ACTIVE_PK, "KeyType": "HASH"},
            {"AttributeName": ACTIVE_SK, "KeyType": "RANGE"},
        ],
        # Only day rollups carry these keys: which tenants spent on a day, for the schedules
        # (anomalies, forecasts) without scanning anything. Written once per tenant and day.
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    },
]
STREAM_SPECIFICATION = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


def create_table_request(table_name: str, stream: bool = True) -> dict[str, Any]:
    """The CreateTable request for the ledger (on-demand, stream on unless asked)."""
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "GlobalSecondaryIndexes": GLOBAL_SECONDARY_INDEXES,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if stream:
        request["StreamSpecification"] = STREAM_SPECIFICATION
    return request


def create_table(client: Any, table_name: str, stream: bool = True) -> None:
    """Create the ledger table and wait until it is active (tests, local runner)."""
    client.create_table(**create_table_request(table_name, stream))
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )

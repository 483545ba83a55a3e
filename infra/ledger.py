"""The ledger's storage: one DynamoDB table, defined by `costguard.store.schema` (never here).

Also who may do what on it: each function gets exactly the DynamoDB actions its code path
calls, on the table's ARN and, for the `holds` index, on that index's ARN only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct
from costguard.store import schema

_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_PROJECTIONS = {
    "ALL": dynamodb.ProjectionType.ALL,
    "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY,
    "INCLUDE": dynamodb.ProjectionType.INCLUDE,
}


def _attribute(name: str) -> dynamodb.Attribute:
    types = {a["AttributeName"]: a["AttributeType"] for a in schema.ATTRIBUTE_DEFINITIONS}
    return dynamodb.Attribute(name=name, type=_TYPES[types[name]])


def _keys(
    key_schema: Sequence[dict[str, str]],
) -> tuple[dynamodb.Attribute, dynamodb.Attribute | None]:
    """KeySchema → (partition key, sort key or None)."""
    by_type = {k["KeyType"]: _attribute(k["AttributeName"]) for k in key_schema}
    return by_type["HASH"], by_type.get("RANGE")


def _index(definition: dict[str, Any]) -> dynamodb.GlobalSecondaryIndexPropsV2:
    projection = definition["Projection"]
    partition_key, sort_key = _keys(definition["KeySchema"])
    return dynamodb.GlobalSecondaryIndexPropsV2(
        index_name=definition["IndexName"],
        partition_key=partition_key,
        sort_key=sort_key,
        projection_type=_PROJECTIONS[projection["ProjectionType"]],
        non_key_attributes=projection.get("NonKeyAttributes"),
    )


@dataclass(frozen=True)
class TableAccess:
    """The DynamoDB actions one function may call: on the table, and on the `holds` index."""

    table: tuple[str, ...]
    holds_index: tuple[str, ...] = ()
    active_index: tuple[str, ...] = ()


# There is no IAM action for TransactWriteItems: each item of a transaction is authorized as
# its own PutItem, UpdateItem, DeleteItem or ConditionCheckItem (DynamoDB developer guide,
# "Using IAM with DynamoDB transactions"); cfn-lint flags dynamodb:TransactWriteItems (W3037).
API_ACCESS = TableAccess(
    table=(
        "dynamodb:BatchGetItem",  # figures of quotas and policies
        "dynamodb:ConditionCheckItem",  # policy versions checked inside each transaction
        "dynamodb:GetItem",  # policies, counters, reservations, API keys, tenants
        "dynamodb:PutItem",  # prices; reservations and records inside transactions
        "dynamodb:Query",  # prices, cost records, usage days
        "dynamodb:UpdateItem",  # counters, reservations, policies, API keys
    ),
    # Lazy expiry inside a refused reserve: Query for a tenant's expired holds; Scan (bounded)
    # when the binding quota is a platform quota, whose holds belong to every tenant.
    holds_index=("dynamodb:Query", "dynamodb:Scan"),
)
SWEEPER_ACCESS = TableAccess(
    # Ledger.expire_due(None): a Scan of the sparse index, then per due hold a transaction of
    # Updates (its counters and its record). AlertBook.redrive: a Query of the index's outbox
    # partition, then the alert's delivery claim and marks (UpdateItem). Ledger.return_expired_
    # leases: the platform policy and each leased quota's pool (GetItem), the leases the pool
    # lists (BatchGetItem), then per expired lease a transaction of two Updates (D87).
    table=("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
    holds_index=("dynamodb:Query", "dynamodb:Scan"),
)
ALERTS_ACCESS = TableAccess(
    # StreamAlerts: a policy's thresholds (GetItem); an alert's dedup markers and records
    # (PutItem, inside one transaction); its delivery claim and marks (UpdateItem); the whole
    # of a sliced or leased quota: its slices, or its pool and leases, and the markers of the
    # thresholds it reached (BatchGetItem; a snapshot is TransactGetItems, i.e. GetItem).
    table=("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
)

ONBOARDING_ACCESS = TableAccess(
    # Ledger.seed_quotas: the policy, then this period's counters in the tenant's zone
    # (BatchGetItem, twice), then one
    # transaction: the policy (PutItem when new, else UpdateItem), each counter (UpdateItem, or
    # ConditionCheckItem when absent). No index, no reads of records.
    table=(
        "dynamodb:BatchGetItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ),
)

ANOMALY_ACCESS = TableAccess(
    # costguard.anomalies: the day's tenants (Query of the `active` index), each tenant's policy
    # for its time zone and its lanes (BatchGetItem, Ledger.policies and Ledger.lanes), its day
    # rollups (Query, one per lane), its anomaly
    # alerts (markers and records: PutItem inside a transaction).
    table=("dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:Query"),
    active_index=("dynamodb:Query",),
)
FORECAST_ACCESS = TableAccess(
    # costguard.forecasts: the tenants (Query of `active`), each one's policy (GetItem) and
    # current counters (BatchGetItem), day rollups and stored forecasts (Query), the new
    # forecasts and breach alerts (PutItem, alerts inside a transaction).
    table=("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"),
    active_index=("dynamodb:Query",),
)


class LedgerStorage(Construct):
    """The ledger table: on-demand, stream, TTL, PITR, deletion protection, retained."""

    def __init__(self, scope: Construct, construct_id: str, *, table_name: str | None) -> None:
        super().__init__(scope, construct_id)
        stream = schema.STREAM_SPECIFICATION
        partition_key, sort_key = _keys(schema.KEY_SCHEMA)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            table_name=table_name,
            partition_key=partition_key,
            sort_key=sort_key,
            billing=dynamodb.Billing.on_demand(),
            global_secondary_indexes=[_index(d) for d in schema.GLOBAL_SECONDARY_INDEXES],
            time_to_live_attribute=schema.TTL_ATTRIBUTE,
            dynamo_stream=(
                dynamodb.StreamViewType[str(stream["StreamViewType"])]
                if stream["StreamEnabled"]
                else None
            ),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.holds_index_arn = f"{self.table.table_arn}/index/{schema.HOLDS_INDEX}"
        self.active_index_arn = f"{self.table.table_arn}/index/{schema.ACTIVE_INDEX}"

    def grant(self, grantee: iam.IGrantable, access: TableAccess) -> None:
        """Explicit statements (grant_read_write_data would add Scan, DeleteItem, BatchWrite…)."""
        principal = grantee.grant_principal
        principal.add_to_principal_policy(
            iam.PolicyStatement(actions=list(access.table), resources=[self.table.table_arn])
        )
        for actions, arn in (
            (access.holds_index, self.holds_index_arn),
            (access.active_index, self.active_index_arn),
        ):
            if actions:
                principal.add_to_principal_policy(
                    iam.PolicyStatement(actions=list(actions), resources=[arn])
                )

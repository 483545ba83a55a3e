"""Shared setup for the benchmark sections: environment, clock, ledgers, statistics."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from costguard.ledger import Ledger, LedgerTable
from costguard.models import Usage
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.settings import Settings
from costguard.store.schema import create_table

REGION = "us-east-1"
TABLE = "costguard-bench"
TENANT = "acme"
FIXED_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def dummy_aws_environment() -> None:
    """Region and dummy credentials; nothing in the benchmark reaches AWS."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")


def fixed_clock() -> datetime:
    return FIXED_AT


def bench_settings() -> Settings:
    """Production defaults, except a price cache that never expires during a run."""
    return Settings(table_name=TABLE, price_cache_seconds=3600)


def make_ledger(client: Any, settings: Settings | None = None) -> Ledger:
    settings = settings or bench_settings()
    return Ledger(LedgerTable(client, settings.table_name, settings), settings, clock=fixed_clock)


def estimate(amount: str = "0.01", user_id: str | None = None) -> Usage:
    return Usage(resource="llm", estimated_cost_usd=amount, user_id=user_id)  # type: ignore[arg-type]


def actual(amount: str = "0.008", user_id: str | None = None) -> Usage:
    return Usage(resource="llm", cost_usd=amount, user_id=user_id)  # type: ignore[arg-type]


def quota(text: str, limit: str) -> QuotaDefinition:
    return QuotaDefinition(QuotaId.parse(text), Decimal(limit))


@contextmanager
def moto_table() -> Iterator[Any]:
    """An in-process moto DynamoDB with the ledger table; yields a fresh client."""
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE)
        yield client


def seed(ledger: Ledger, tenant_quotas: dict[str, str], platform_quotas: dict[str, str]) -> None:
    """Create the tenant and its quotas (admin writes, made before anything is measured)."""
    ledger.create_tenant(TENANT, "Acme Inc", "pro")
    for text, limit in tenant_quotas.items():
        ledger.put_quota(TENANT, quota(text, limit))
    for text, limit in platform_quotas.items():
        ledger.put_quota(None, quota(text, limit))


# ---------------------------------------------------------------------- timing and statistics
@dataclass
class Samples:
    """Per-operation CPU (process_time_ns) and wall (perf_counter_ns) times."""

    cpu_ns: list[int]
    wall_ns: list[int]


def time_interleaved(calls: int, ops: dict[str, Callable[[int], object]]) -> dict[str, Samples]:
    """Run every op once per round, in order, for `calls` rounds, timing each call.

    Interleaving makes machine drift (frequency, neighbours) hit every op alike, so their
    ratios hold even when absolute times move. The GC is off while timing.
    """
    samples = {name: Samples([], []) for name in ops}
    steps = [(op, samples[name]) for name, op in ops.items()]
    process_ns, counter_ns = time.process_time_ns, time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i in range(calls):
            for op, into in steps:
                c0, w0 = process_ns(), counter_ns()
                op(i)
                w1, c1 = counter_ns(), process_ns()
                into.cpu_ns.append(c1 - c0)
                into.wall_ns.append(w1 - w0)
    finally:
        gc.enable()
    return samples


def percentiles_us(ns: list[int]) -> dict[str, float]:
    """Mean, p50, p95, p99 in microseconds."""
    cuts = statistics.quantiles(ns, n=100, method="inclusive")
    return {
        "mean_us": round(statistics.fmean(ns) / 1000, 2),
        "p50_us": round(cuts[49] / 1000, 2),
        "p95_us": round(cuts[94] / 1000, 2),
        "p99_us": round(cuts[98] / 1000, 2),
    }


def ratio(ours: float, bare: float) -> float:
    return round(ours / bare, 2) if bare else float("nan")


def bare_update_params(pk: str, limit: str) -> dict[str, Any]:
    """A counter-shaped UpdateItem (SET/ADD + condition): the 'bare call' each ratio uses."""
    return {
        "TableName": TABLE,
        "Key": {"pk": {"S": pk}, "sk": {"S": "MONTH#2026-11"}},
        "UpdateExpression": (
            "SET #n0 = if_not_exists(#n0, :v0) - :v1, #n1 = if_not_exists(#n1, :v0) ADD #n2 :v1"
        ),
        "ConditionExpression": "(attribute_not_exists(#n0) OR #n0 >= :v1)",
        "ExpressionAttributeNames": {
            "#n0": "q_llm_avail",
            "#n1": "q_llm_limit",
            "#n2": "q_llm_held",
        },
        "ExpressionAttributeValues": {":v0": {"N": limit}, ":v1": {"N": "0.01"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }

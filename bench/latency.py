"""Section 3: latency on moto in-process, for context only.

moto runs the whole request path in this process (signing, serialization, its own parsing
and storage), so these numbers say how the ledger compares with a bare UpdateItem on the
same fake, not how fast DynamoDB is.

moto's TransactWriteItems deep-copies the whole table (items and stream history) once per
action, for its rollback, and its model instance tracker keeps every copy alive, so its
latency grows with the table and the heap. To measure something that
does not depend on how long the run is, the table here has no stream and is kept at a
constant size: each reserve/commit pair's record is deleted (untimed) before the next. A
probe then shows what the same reserve costs once the table holds more items.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import boto3
from costguard.store.keys import records_pk
from costguard.store.schema import create_table_request
from moto import mock_aws

from bench.common import (
    REGION,
    TABLE,
    TENANT,
    actual,
    bare_update_params,
    estimate,
    make_ledger,
    percentiles_us,
    ratio,
    seed,
)

WARMUP = 20
QUOTAS = {"tenant:llm:month": "100000", "tenant:all:month": "150000"}
PROBE_EXTRA_ITEMS = 300
PROBE_RESERVES = 10


def _ns(op: Callable[[], Any]) -> tuple[Any, int]:
    start = time.perf_counter_ns()
    result = op()
    return result, time.perf_counter_ns() - start


def measure_latency(operations: int = 300) -> dict[str, Any]:
    """Wall-clock p50/p95/p99 of reserve, commit and a bare UpdateItem, one moto table."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        request = create_table_request(TABLE)
        request.pop("StreamSpecification")
        client.create_table(**request)
        ledger = make_ledger(client)
        seed(ledger, QUOTAS, {})
        bare = bare_update_params("BENCH", "100000")

        def reserve() -> str:
            return ledger.reserve(TENANT, estimate(), with_figures=False).reservation_id

        def pair() -> tuple[int, int, int]:
            reservation_id, reserve_ns = _ns(reserve)
            _, commit_ns = _ns(lambda: ledger.commit(TENANT, reservation_id, actual()))
            _, bare_ns = _ns(lambda: client.update_item(**bare))
            ulid = reservation_id.split("~", 1)[0]
            client.delete_item(
                TableName=TABLE, Key={"pk": {"S": records_pk(TENANT)}, "sk": {"S": ulid}}
            )
            return reserve_ns, commit_ns, bare_ns

        for _ in range(WARMUP):
            pair()
        items_during_run = client.scan(TableName=TABLE, Select="COUNT")["Count"]
        gc.collect()
        gc.disable()  # moto keeps every rollback copy alive, so collections only get slower
        try:
            samples = [pair() for _ in range(operations)]
            for i in range(PROBE_EXTRA_ITEMS):
                client.put_item(
                    TableName=TABLE,
                    Item={"pk": {"S": "FILLER"}, "sk": {"S": f"{i:06d}"}, "pad": {"S": "x" * 200}},
                )
            probe = [_ns(reserve)[1] for _ in range(PROBE_RESERVES)]
        finally:
            gc.enable()

    ops = {
        "reserve": percentiles_us([s[0] for s in samples]),
        "commit": percentiles_us([s[1] for s in samples]),
        "bare_update_item": percentiles_us([s[2] for s in samples]),
    }
    base = ops["bare_update_item"]
    return {
        "operations": operations,
        "warmup": WARMUP,
        "table_items_during_run": items_during_run,
        "ops": ops,
        "ratios_vs_bare_update_item": {
            name: {p: ratio(ops[name][f"{p}_us"], base[f"{p}_us"]) for p in ("p50", "p95", "p99")}
            for name in ("reserve", "commit")
        },
        "moto_growth_probe": {
            "extra_items": PROBE_EXTRA_ITEMS,
            "reserves": PROBE_RESERVES,
            "reserve_p50_us": percentiles_us(probe)["p50_us"],
        },
    }

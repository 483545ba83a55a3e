"""Section 1: warm CPU time per reserve and per commit, with DynamoDB stubbed out.

A real boto3 client (the production factory `make_client`) answers from botocore's Stubber,
so each call still pays parameter validation, endpoint resolution and serialization, but
no signing, no HTTP and no response parsing. The same is true of the bare calls it is
compared with, so the ratio isolates the ledger's own Python work plus the extra botocore
work of its larger requests. The calls are timed in interleaved rounds (reserve, commit,
bare UpdateItem, the two transactions sent bare), so drift on a shared machine hits all alike.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.stub import Stubber
from costguard import telemetry
from costguard.ledger import make_client, policies
from costguard.store.keys import PLATFORM_PK, POLICY_SK, tenant_pk

from bench.common import (
    TABLE,
    TENANT,
    Samples,
    actual,
    bare_update_params,
    bench_settings,
    estimate,
    make_ledger,
    percentiles_us,
    ratio,
    time_interleaved,
)

WARMUP = 200
TENANT_LIMIT = "1000000"


def _tenant_policy_item() -> dict[str, Any]:
    """The tenant's POLICY item as DynamoDB returns it: one hard month quota, version 1."""
    spec = {
        "limit_usd": {"N": TENANT_LIMIT},
        "mode": {"S": "hard"},
        "thresholds": {"L": [{"N": t} for t in ("50", "80", "90", "100")]},
        "grace_pct": {"N": "0"},
    }
    return {
        "pk": {"S": tenant_pk(TENANT)},
        "sk": {"S": POLICY_SK},
        "version": {"N": "1"},
        "quotas": {"M": {"tenant:llm:month": {"M": spec}}},
    }


def _summary(samples: Samples) -> dict[str, float]:
    cpu, wall = percentiles_us(samples.cpu_ns), percentiles_us(samples.wall_ns)
    return {
        "cpu_mean_us": cpu["mean_us"],
        "cpu_p50_us": cpu["p50_us"],
        "wall_mean_us": wall["mean_us"],
        "wall_p50_us": wall["p50_us"],
    }


def _sdk_tracer() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    return provider.get_tracer("costguard")


def measure_cpu(iterations: int = 2000) -> dict[str, Any]:
    """Per-op CPU of reserve/commit vs one bare UpdateItem, all through the same stub."""
    settings = bench_settings()
    client = make_client(settings)
    ledger = make_ledger(client, settings)
    sent: list[tuple[str, dict[str, Any]]] = []
    capture_event = "provide-client-params.dynamodb"

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, params))

    client.meta.events.register(capture_event, capture)
    # The single-item reserve re-reads the platform policy at most every 5 s (D71): one read
    # per process per 5 s, not per request; the stub cannot time it, so it is left out here.
    fresh, policies.PLATFORM_FRESH_SECONDS = policies.PLATFORM_FRESH_SECONDS, math.inf

    # What a plain `boto3.client("dynamodb")` pays for the same UpdateItem (default config,
    # client-side parameter validation on); the ledger's client turns validation off.
    default_client = boto3.client("dynamodb")
    default_stub = Stubber(default_client)
    default_stub.activate()
    for _ in range(WARMUP + iterations):
        default_stub.add_response("update_item", {}, None)

    with Stubber(client) as stub:
        # Cold start: the price book's Query on PRICING, then the two policy items.
        stub.add_response("query", {"Items": [], "Count": 0, "ScannedCount": 0}, None)
        stub.add_response(
            "batch_get_item",
            {"Responses": {TABLE: [_tenant_policy_item()]}, "UnprocessedKeys": {}},
            None,
        )
        stub.add_response("update_item", {}, None)  # the single-item reserve (D70)
        first = ledger.reserve(TENANT, estimate(), with_figures=False)
        stub.assert_no_pending_responses()
        assert ledger._cache_get(PLATFORM_PK) is not None, "platform policy not cached"
        reserve_operation, reserve_params = sent[-1]
        assert reserve_operation == "UpdateItem", reserve_operation

        def queue(operation: str, count: int) -> None:
            for _ in range(count):
                stub.add_response(operation, {}, None)

        ids: list[str] = [first.reservation_id]

        def reserve(_: int) -> None:
            ids.append(ledger.reserve(TENANT, estimate(), with_figures=False).reservation_id)

        def commit(i: int) -> None:
            ledger.commit(TENANT, ids[i], actual())

        # The same calls with telemetry on: the OpenTelemetry SDK recording every span (into a
        # processor that drops them) and EMF metrics collected, as in a traced Lambda.
        traced_ids: list[str] = []
        sdk_tracer, off_tracer = _sdk_tracer(), telemetry.tracer

        @contextlib.contextmanager
        def telemetry_on() -> Iterator[None]:
            telemetry.tracer = sdk_tracer
            os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    yield
            finally:
                telemetry.tracer = off_tracer
                os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"

        def reserve_traced(_: int) -> None:
            with telemetry_on():
                traced_ids.append(
                    ledger.reserve(TENANT, estimate(), with_figures=False).reservation_id
                )

        def commit_traced(i: int) -> None:
            with telemetry_on():
                ledger.commit(TENANT, traced_ids[i], actual())

        bare_update = bare_update_params(tenant_pk(TENANT), TENANT_LIMIT)

        def update(_: int) -> None:
            client.update_item(**bare_update)

        # Warm-up: every path once per WARMUP, so caches, imports and the allocator settle.
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        for i in range(WARMUP):
            queue("update_item", 1)
            queue("transact_write_items", 1)
            queue("update_item", 1)
            reserve(i)
            commit(i)
            update(i)
            default_client.update_item(**bare_update)
        commit_operation, commit_params = sent[-2]
        assert commit_operation == "TransactWriteItems", commit_operation
        client.meta.events.unregister(capture_event, capture)
        for i in range(WARMUP):
            queue("update_item", 1)
            queue("transact_write_items", 1)
            reserve_traced(i)
            commit_traced(i)
        ids.clear()
        traced_ids.clear()

        # Interleaved rounds; the Stubber checks the order of operations, not parameters.
        for _ in range(iterations):
            for operation in (
                "update_item",  # reserve
                "transact_write_items",  # commit
                "update_item",  # bare UpdateItem
                "update_item",  # reserve's request sent bare
                "transact_write_items",  # commit's request sent bare
                "update_item",  # reserve, telemetry on
                "transact_write_items",  # commit, telemetry on
            ):
                queue(operation, 1)
        timed = time_interleaved(
            iterations,
            {
                "reserve": reserve,
                "commit": commit,
                "bare_update_item": update,
                "bare_update_item_default_client": lambda _: default_client.update_item(
                    **bare_update
                ),
                "bare_reserve_request": lambda _: client.update_item(**reserve_params),
                "bare_commit_request": lambda _: client.transact_write_items(**commit_params),
                "reserve_telemetry_on": reserve_traced,
                "commit_telemetry_on": commit_traced,
            },
        )
        stub.assert_no_pending_responses()
    policies.PLATFORM_FRESH_SECONDS = fresh

    ops = {name: _summary(samples) for name, samples in timed.items()}
    base = ops["bare_update_item"]
    return {
        "iterations": iterations,
        "warmup": WARMUP,
        "requests": {
            "reserve": "UpdateItem",
            "commit": f"TransactWriteItems of {len(commit_params['TransactItems'])} actions",
        },
        "ops": ops,
        "ratios_vs_bare_update_item": {
            name: {
                "cpu_mean": ratio(op["cpu_mean_us"], base["cpu_mean_us"]),
                "cpu_p50": ratio(op["cpu_p50_us"], base["cpu_p50_us"]),
            }
            for name, op in ops.items()
            if name != "bare_update_item"
        },
        "ratios_vs_default_client_update_item": {
            name: ratio(
                ops[name]["cpu_p50_us"], ops["bare_update_item_default_client"]["cpu_p50_us"]
            )
            for name in ("reserve", "commit")
        },
        "telemetry_overhead_cpu_p50_us": {
            name: round(ops[f"{name}_telemetry_on"]["cpu_p50_us"] - ops[name]["cpu_p50_us"], 2)
            for name in ("reserve", "commit")
        },
        "ledger_own_cpu_p50_us": {
            "reserve": round(
                ops["reserve"]["cpu_p50_us"] - ops["bare_reserve_request"]["cpu_p50_us"],
                2,
            ),
            "commit": round(
                ops["commit"]["cpu_p50_us"] - ops["bare_commit_request"]["cpu_p50_us"],
                2,
            ),
        },
    }

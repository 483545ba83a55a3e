"""Section 2: DynamoDB calls and request units per reserve, commit, release and record.

Measured on moto in-process, warm: one reserve first fills the price and policy caches,
then every operation is measured alone. Units follow the documented on-demand rules
(`bench.capacity`); moto itself reports no meaningful consumed capacity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3

from bench.capacity import Call, CapacityMeter
from bench.common import REGION, TABLE, TENANT, actual, estimate, make_ledger, moto_table, seed

# On-demand list prices (us-east-1), USD per million.
WRU_PRICE = 0.625
RRU_PRICE = 0.125
HTTP_API_REQUEST_PRICE = 1.00
REQUESTS_PER_GUARDED_CALL = 2  # POST reserve + POST commit through API Gateway (HTTP API)

DEFAULT_TENANT_QUOTAS = {
    "tenant:llm:month": "100",
    "tenant:sandbox:month": "50",
    "tenant:all:month": "150",
}
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {
        "description": "tenant month quotas llm 100, sandbox 50, all 150 (the default seeds)",
        "tenant_quotas": DEFAULT_TENANT_QUOTAS,
        "platform_quotas": {},
        "user_id": None,
    },
    "user_and_platform": {
        "description": (
            "default seeds + user:u-1:llm:day 20 + platform:all:month 1000, user_id u-1"
        ),
        "tenant_quotas": {**DEFAULT_TENANT_QUOTAS, "user:u-1:llm:day": "20"},
        "platform_quotas": {"platform:all:month": "1000"},
        "user_id": "u-1",
    },
}


def _summarize(calls: list[Call]) -> dict[str, Any]:
    return {
        "calls": len(calls),
        "operations": [c.operation for c in calls],
        "actions": [dict(Counter(c.actions)) for c in calls],
        "wru": sum(c.wru for c in calls),
        "gsi_wru": sum(c.gsi_wru for c in calls),
        "rru": sum(c.rru for c in calls),
        "max_item_bytes": max((c.max_item_bytes for c in calls), default=0),
    }


def cost_per_million_guarded_calls(wru: float, rru: float) -> dict[str, float]:
    dynamodb_wru, dynamodb_rru = wru * WRU_PRICE, rru * RRU_PRICE
    api = REQUESTS_PER_GUARDED_CALL * HTTP_API_REQUEST_PRICE
    return {
        "dynamodb_wru_usd": round(dynamodb_wru, 4),
        "dynamodb_rru_usd": round(dynamodb_rru, 4),
        "api_gateway_usd": api,
        "total_usd": round(dynamodb_wru + dynamodb_rru + api, 4),
    }


def measure_scenario(spec: dict[str, Any]) -> dict[str, Any]:
    user_id = spec["user_id"]
    with moto_table() as client:
        seed(make_ledger(client), spec["tenant_quotas"], spec["platform_quotas"])
        reader = boto3.client("dynamodb", region_name=REGION)
        meter = CapacityMeter(client, reader, TABLE)
        ledger = make_ledger(client)  # a fresh process: empty price and policy caches

        def measured(op: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
            meter.take()
            result = op()
            return result, _summarize(meter.take())

        cold, cold_reserve = measured(
            lambda: ledger.reserve(TENANT, estimate(user_id=user_id), with_figures=False)
        )
        # The first in-item hold on a counter lists it for the sweeper (one GSI write per
        # counter and period, D72): measured apart from the steady state below.
        listed, reserve_listing = measured(
            lambda: ledger.reserve(TENANT, estimate(user_id=user_id), with_figures=False)
        )
        ledger.release(TENANT, listed.reservation_id)
        held, reserve = measured(
            lambda: ledger.reserve(TENANT, estimate(user_id=user_id), with_figures=False)
        )
        with_figures, reserve_figures = measured(
            lambda: ledger.reserve(TENANT, estimate(user_id=user_id), with_figures=True)
        )
        _, commit = measured(
            lambda: ledger.commit(TENANT, held.reservation_id, actual(user_id=user_id))
        )
        _, release = measured(lambda: ledger.release(TENANT, cold.reservation_id))
        _, record = measured(lambda: ledger.record_usage(TENANT, actual(user_id=user_id)))
        ledger.release(TENANT, with_figures.reservation_id)
        problems = ledger.reconcile(TENANT)

    guarded = {}
    for name, r in (("with_figures_false", reserve), ("with_figures_true", reserve_figures)):
        wru, rru = r["wru"] + commit["wru"], r["rru"] + commit["rru"]
        guarded[name] = {
            "calls": r["calls"] + commit["calls"],
            "wru": wru,
            "rru": rru,
            "cost_per_million_usd": cost_per_million_guarded_calls(wru, rru),
        }
    return {
        "description": spec["description"],
        "ops": {
            "reserve_cold": cold_reserve,
            "reserve_first_in_item": reserve_listing,
            "reserve": reserve,
            "reserve_with_figures": reserve_figures,
            "commit": commit,
            "release": release,
            "record": record,
        },
        "guarded_call": guarded,
        "reconcile_problems": problems,
    }


def measure_units() -> dict[str, Any]:
    scenarios = {name: measure_scenario(spec) for name, spec in SCENARIOS.items()}
    largest = max(op["max_item_bytes"] for s in scenarios.values() for op in s["ops"].values())
    return {
        "prices_usd_per_million": {
            "wru": WRU_PRICE,
            "rru": RRU_PRICE,
            "api_gateway_http_api_request": HTTP_API_REQUEST_PRICE,
        },
        "notes": [
            "Lambda (invocations and duration) is excluded.",
            f"Item sizes come from the real before/after images; the largest is {largest} B.",
            "GSI writes are priced 1 WRU per index entry written or deleted, not doubled.",
        ],
        "scenarios": scenarios,
    }

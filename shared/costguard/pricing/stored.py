"""An operator's model price as the ledger table stores it (flat rates, bands as JSON)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from costguard.pricing import ModelPrice, _schedule, is_claude


def stored_model_item(price: ModelPrice) -> dict[str, Any]:
    """The attributes of a stored model price (its key and dates are the ledger's)."""
    standard = price.schedules["standard"]
    item: dict[str, Any] = {
        "provider": price.provider,
        "model": price.model,
        "input_per_million_usd": price.input_per_million_usd,
        "output_per_million_usd": price.output_per_million_usd,
        "cached_input_per_million_usd": price.cached_input_per_million_usd,
        "cache_write_per_million_usd": standard.base.cache_write,
        "cache_write_1h_per_million_usd": standard.base.cache_write_1h,
    }
    if price.request_usd:
        item["request_usd"] = price.request_usd
    if price.max_output_tokens is not None:
        item["max_output_tokens"] = price.max_output_tokens
    if standard.bands:
        item["long_context"] = json.dumps(
            {
                str(b.above_input_tokens): {
                    "input": str(b.rates.input),
                    "output": str(b.rates.output),
                    "cached_input": str(b.rates.cached_input),
                    "cache_write": str(b.rates.cache_write),
                    "cache_write_1h": str(b.rates.cache_write_1h),
                }
                for b in standard.bands
            },
            sort_keys=True,
        )
    return item


def stored_model_price(item: dict[str, Any]) -> ModelPrice:
    """A stored model price; items written before cache-write rates existed read as before."""
    given = {
        "input": str(item["input_per_million_usd"]),
        "output": str(item["output_per_million_usd"]),
        "cached_input": str(item["cached_input_per_million_usd"]),
        "cache_write": _opt(item.get("cache_write_per_million_usd")),
        "cache_write_1h": _opt(item.get("cache_write_1h_per_million_usd")),
        "above": json.loads(item["long_context"]) if "long_context" in item else {},
    }
    standard = _schedule(given, is_claude(item["model"]), None)
    base = standard.base
    max_output = item.get("max_output_tokens")
    return ModelPrice(
        item["provider"],
        item["model"],
        base.input,
        base.output,
        base.cached_input,
        datetime.fromisoformat(item["effective_from"].replace("Z", "+00:00")),
        item.get("source", ""),
        max_output_tokens=int(max_output) if max_output is not None else None,
        cache_write_per_million_usd=base.cache_write,
        cache_write_1h_per_million_usd=base.cache_write_1h,
        request_usd=Decimal(str(item.get("request_usd", 0))),
        schedules={"standard": standard},
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)

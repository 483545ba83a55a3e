"""Prices at the API's edge: schedules as `ModelPriceOut`, an operator's `PricePut` as a
schedule, and the opaque cursor of `GET /v1/pricing`."""

from __future__ import annotations

import base64
import binascii

from costguard.errors import InvalidRequest
from costguard.models import (
    LongContextOut,
    ModelPriceOut,
    PricePut,
    RatesOut,
    ServiceTierOut,
)
from costguard.pricing import (
    ZERO,
    ModelPrice,
    Rates,
    Schedule,
    _iso,
    _schedule,
    is_claude,
)


def _rates_out(rates: Rates) -> dict[str, object]:
    return RatesOut(
        input_per_million_usd=rates.input,
        output_per_million_usd=rates.output,
        cached_input_per_million_usd=rates.cached_input,
        cache_write_per_million_usd=rates.cache_write,
        cache_write_1h_per_million_usd=rates.cache_write_1h,
        reasoning_per_million_usd=rates.reasoning,
    ).model_dump()


def _bands(schedule: Schedule) -> list[LongContextOut]:
    return [
        LongContextOut(above_input_tokens=b.above_input_tokens, **_rates_out(b.rates))
        for b in schedule.bands
    ]


def model_price_out(p: ModelPrice) -> ModelPriceOut:
    """A schedule as `GET /v1/pricing` lists it."""
    standard = p.schedules["standard"]
    base = standard.base
    others = {
        tier: ServiceTierOut(long_context=_bands(s), **_rates_out(s.base))
        for tier, s in p.schedules.items()
        if tier != "standard"
    }
    return ModelPriceOut(
        provider=p.provider,
        model=p.model,
        input_per_million_usd=base.input,
        output_per_million_usd=base.output,
        cached_input_per_million_usd=base.cached_input,
        cache_write_per_million_usd=base.cache_write,
        cache_write_1h_per_million_usd=base.cache_write_1h,
        reasoning_per_million_usd=base.reasoning,
        request_usd=p.request_usd or None,
        long_context=_bands(standard) or None,
        service_tiers=others or None,
        max_output_tokens=p.max_output_tokens,
        max_input_tokens=p.max_input_tokens,
        effective_from=p.effective_from,
        source=p.source,
        override=p.override or None,
    )


def operator_price(provider: str, model: str, body: PricePut) -> ModelPrice:
    """An operator's price as a schedule (standard tier only: batch and flex are then priced at
    these rates, priority is refused until a price lists it)."""
    bands = {
        str(b.above_input_tokens): {
            "input": b.input_per_million_usd,
            "output": b.output_per_million_usd,
            "cached_input": b.cached_input_per_million_usd,
            "cache_write": b.cache_write_per_million_usd,
            "cache_write_1h": b.cache_write_1h_per_million_usd,
        }
        for b in body.long_context or []
    }
    if len(bands) != len(body.long_context or []):
        raise InvalidRequest("two long_context bands share a threshold", field="long_context")
    given = {
        "input": body.input_per_million_usd,
        "output": body.output_per_million_usd,
        "cached_input": body.cached_input_per_million_usd,
        "cache_write": body.cache_write_per_million_usd,
        "cache_write_1h": body.cache_write_1h_per_million_usd,
        "above": bands,
    }
    standard = _schedule(given, is_claude(model), None)
    base = standard.base
    return ModelPrice(
        provider,
        model,
        base.input,
        base.output,
        base.cached_input,
        body.effective_from,
        "operator",
        max_output_tokens=body.max_output_tokens,
        cache_write_per_million_usd=base.cache_write,
        cache_write_1h_per_million_usd=base.cache_write_1h,
        request_usd=body.request_usd if body.request_usd is not None else ZERO,
        schedules={"standard": standard},
    )


def price_key(p: ModelPrice) -> str:
    """The order of `GET /v1/pricing` (provider, model, date), as one comparable string."""
    return f"{p.provider}\x1f{p.model}\x1f{_iso(p.effective_from)}"


def pricing_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def pricing_cursor_key(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("not a cursor this API returned", field="cursor") from exc
    if key.count("\x1f") != 2:
        raise InvalidRequest("not a cursor this API returned", field="cursor")
    return key

"""The pricing catalog: prices with effective dates, and exact cost computation."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from costguard.errors import InvalidRequest, UnknownPrice
from costguard.models import Usage
from costguard.money import MILLION, parse_usd


@dataclass(frozen=True)
class ModelPrice:
    provider: str
    model: str
    input_per_million_usd: Decimal
    output_per_million_usd: Decimal
    cached_input_per_million_usd: Decimal
    effective_from: datetime
    source: str = ""
    max_output_tokens: int | None = None
    """The most output tokens one call can produce: the cap of a worst-case hold."""

    def describe(self) -> dict[str, str]:
        return {
            "input_per_million_usd": str(self.input_per_million_usd),
            "output_per_million_usd": str(self.output_per_million_usd),
            "cached_input_per_million_usd": str(self.cached_input_per_million_usd),
            "effective_from": self.effective_from.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class TierPrice:
    tier: str
    per_second_usd: Decimal
    effective_from: datetime
    source: str = ""

    def describe(self) -> dict[str, str]:
        return {
            "per_second_usd": str(self.per_second_usd),
            "effective_from": self.effective_from.isoformat().replace("+00:00", "Z"),
        }


Price = ModelPrice | TierPrice


def parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"timestamp without time zone: {text!r}")
    return at


def model_price_from(entry: dict[str, Any]) -> ModelPrice:
    return ModelPrice(
        provider=entry["provider"],
        model=entry["model"],
        input_per_million_usd=parse_usd(entry["input_per_million_usd"]),
        output_per_million_usd=parse_usd(entry["output_per_million_usd"]),
        cached_input_per_million_usd=parse_usd(
            entry.get("cached_input_per_million_usd", entry["input_per_million_usd"])
        ),
        effective_from=parse_time(entry["effective_from"]),
        source=entry.get("source", ""),
        max_output_tokens=entry.get("max_output_tokens"),
    )


def tier_price_from(entry: dict[str, Any]) -> TierPrice:
    return TierPrice(
        tier=entry["tier"],
        per_second_usd=parse_usd(entry["per_second_usd"]),
        effective_from=parse_time(entry["effective_from"]),
        source=entry.get("source", ""),
    )


def load_catalog() -> list[Price]:
    """The catalog shipped with costguard (`catalog.json`, sources and dates inside)."""
    text = resources.files(__package__).joinpath("catalog.json").read_text("utf-8")
    data = json.loads(text)
    prices: list[Price] = [model_price_from(m) for m in data["models"]]
    prices.extend(tier_price_from(t) for t in data["sandbox_tiers"])
    return prices


class PriceBook:
    """Every price with its history; the price in force at a time is the newest not after it."""

    def __init__(self, prices: Iterable[Price], fallback: ModelPrice | None = None) -> None:
        self._models: dict[tuple[str, str], list[ModelPrice]] = {}
        self._tiers: dict[str, list[TierPrice]] = {}
        self._providers: dict[str, set[str]] = {}
        for p in prices:
            if isinstance(p, ModelPrice):
                self._models.setdefault((p.provider, p.model), []).append(p)
                self._providers.setdefault(p.model, set()).add(p.provider)
            else:
                self._tiers.setdefault(p.tier, []).append(p)
        for models in self._models.values():
            models.sort(key=lambda x: x.effective_from)
        for tiers in self._tiers.values():
            tiers.sort(key=lambda x: x.effective_from)
        self._fallback = fallback

    def prices(self) -> list[Price]:
        out: list[Price] = [p for h in self._models.values() for p in h]
        out.extend(p for h in self._tiers.values() for p in h)
        return out

    @staticmethod
    def _in_force(history: list[Any], at: datetime) -> Any:
        index = bisect_right([p.effective_from for p in history], at)
        return history[index - 1] if index else None

    def model_price(self, provider: str | None, model: str, at: datetime) -> ModelPrice:
        if provider is None:
            providers = self._providers.get(model, set())
            if len(providers) > 1:
                raise InvalidRequest(
                    f"model {model!r} is sold by several providers; say which", field="provider"
                )
            provider = next(iter(providers), "")
        price = self._in_force(self._models.get((provider, model), []), at)
        if price is None:
            if self._fallback is not None:
                return self._fallback
            raise UnknownPrice("model", f"{provider}/{model}" if provider else model)
        assert isinstance(price, ModelPrice)
        return price

    def max_output_tokens(self, price: ModelPrice) -> int | None:
        """The output cap of a model: its price's, else the newest one its history states
        (an operator's price override need not repeat it)."""
        if price.max_output_tokens is not None:
            return price.max_output_tokens
        history = self._models.get((price.provider, price.model), [])
        return next(
            (p.max_output_tokens for p in reversed(history) if p.max_output_tokens is not None),
            None,
        )

    def tier_price(self, tier: str, at: datetime) -> TierPrice:
        price = self._in_force(self._tiers.get(tier, []), at)
        if price is None:
            raise UnknownPrice("sandbox tier", tier)
        assert isinstance(price, TierPrice)
        return price

    def cost(self, usage: Usage, at: datetime) -> tuple[Decimal, Price | None]:
        """Exact cost of `usage` at the prices in force at `at`, and the price used.

        An explicit `cost_usd`/`estimated_cost_usd` wins. `input_tokens` counts every input
        token, `cached_input_tokens` (a part of them) is billed at the cached rate.
        """
        if usage.explicit_usd is not None:
            return usage.explicit_usd, None
        if usage.resource == "llm":
            assert usage.model is not None
            p = self.model_price(usage.provider, usage.model, at)
            cached = usage.cached_input_tokens or 0
            fresh = (usage.input_tokens or 0) - cached
            micro_total = (
                fresh * p.input_per_million_usd
                + cached * p.cached_input_per_million_usd
                + (usage.output_tokens or 0) * p.output_per_million_usd
            )
            return micro_total / MILLION, p
        assert usage.tier is not None and usage.seconds is not None
        t = self.tier_price(usage.tier, at)
        return usage.seconds * t.per_second_usd, t

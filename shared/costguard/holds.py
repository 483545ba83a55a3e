"""Worst-case holds: what a reservation must hold so that no call can spend beyond it.

A hold is the most the call can cost, never a guess of what it will cost: an LLM call's input
(cached and cache-write tokens included) plus the output cap the app sends — or, when it sends
none, the most the model can produce — priced at the rates that would apply; a sandbox run's
seconds are its cap. A hold of $0 on a priced model would let any number of calls through an
exhausted quota, so it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from costguard.errors import InvalidRequest
from costguard.models import Usage
from costguard.money import ZERO
from costguard.pricing import ModelPrice, Price, PriceBook

Basis = Literal["tokens", "estimated_cost", "sandbox_seconds"]


@dataclass(frozen=True)
class Hold:
    """The amount to hold, the price it was computed with, and how it was derived."""

    amount: Decimal
    price: Price | None
    usage: Usage
    """The usage that was priced: the caller's, with the output cap filled in."""
    basis: Basis
    output_cap_from: Literal["request", "catalog"] | None = None

    def describe(self) -> dict[str, Any]:
        """The `hold` object of a reservation (stored on its record and returned)."""
        u = self.usage
        priced_as = (
            f"{self.price.provider}/{self.price.model}"
            if isinstance(self.price, ModelPrice)
            else None
        )
        fields: dict[str, Any] = {
            "basis": self.basis,
            "input_tokens": u.input_tokens if self.basis == "tokens" else None,
            "output_tokens": u.output_tokens if self.basis == "tokens" else None,
            "output_cap_from": self.output_cap_from,
            "seconds": u.seconds if self.basis == "sandbox_seconds" else None,
            "priced_as": priced_as,
        }
        return {k: v for k, v in fields.items() if v is not None}


def worst_case(usage: Usage, book: PriceBook, at: datetime) -> Hold:
    """The hold a reservation of `usage` needs at `at`.

    Raises InvalidRequest (naming the field) when the worst case cannot be bounded or is $0:
    an explicit estimate of zero or less, an LLM call with no output cap and a model whose
    catalog entry has no maximum output, a sandbox run of zero seconds.
    """
    explicit = usage.explicit_usd
    if explicit is not None:
        if explicit <= ZERO:
            field = "cost_usd" if usage.cost_usd is not None else "estimated_cost_usd"
            raise InvalidRequest(
                f"{field} must be more than 0: a hold of $0 admits any call on any quota",
                field=field,
            )
        return Hold(explicit, None, usage, "estimated_cost")
    if usage.resource == "sandbox":
        if not usage.seconds:
            raise InvalidRequest(
                "seconds is the run's cap and must be more than 0", field="seconds"
            )
        cost, price = book.cost(usage, at)
        return Hold(cost, price, usage, "sandbox_seconds")
    assert usage.model is not None
    cap_from: Literal["request", "catalog"] = "request"
    priced = usage
    if usage.output_tokens is None:
        price = book.model_price(usage.provider, usage.model, at)
        cap = book.max_output_tokens(price)
        if cap is None:
            raise InvalidRequest(
                f"the catalog has no maximum output for model {usage.model!r}: send "
                "output_tokens, the output cap (max_tokens) your call sends",
                field="output_tokens",
            )
        priced = usage.model_copy(update={"output_tokens": cap})
        cap_from = "catalog"
    cost, price = book.cost(priced, at)
    if cost <= ZERO and isinstance(price, ModelPrice) and _is_priced(price):
        raise InvalidRequest(
            "the worst case of this call is $0: send input_tokens and output_tokens "
            "(the output cap your call sends)",
            field="output_tokens",
        )
    return Hold(cost, price, priced, "tokens", cap_from)


def _is_priced(price: ModelPrice) -> bool:
    return price.input_per_million_usd > 0 or price.output_per_million_usd > 0

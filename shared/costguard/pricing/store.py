"""The price store: operator prices kept in the table, overlaid on the shipped catalog."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costguard import telemetry
from costguard.errors import LedgerCorrupted
from costguard.holds import Hold, worst_case
from costguard.models import Usage
from costguard.pricing import ModelPrice, Price, PriceBook, TierPrice, shipped_catalog
from costguard.pricing.stored import stored_model_item, stored_model_price
from costguard.settings import Settings
from costguard.store.codec import iso
from costguard.store.dynamo import LedgerTable
from costguard.store.keys import PRICING_PK, is_model_price, model_price_sk, tier_price_sk
from costguard.store.writes import ItemWrite


class PriceStore:
    """The price book a ledger prices with, cached briefly; thread-safe enough (a stale or
    doubly loaded book is harmless)."""

    def __init__(self, table: LedgerTable, settings: Settings, now: Callable[[], datetime]) -> None:
        self.table = table
        self.settings = settings
        self.now = now
        self._price_book: PriceBook | None = None
        self._prices_loaded_at: datetime | None = None

    def book(self) -> PriceBook:
        """The shipped catalog overlaid with prices stored in the table, cached briefly."""
        now = self.now()
        loaded = self._prices_loaded_at
        ttl = timedelta(seconds=self.settings.price_cache_seconds)
        if self._price_book is None or loaded is None or now - loaded >= ttl or now < loaded:
            fallback = None
            s = self.settings
            if (
                s.fallback_input_per_million_usd is not None
                and s.fallback_output_per_million_usd is not None
            ):
                fallback = ModelPrice(
                    "fallback",
                    "fallback",
                    s.fallback_input_per_million_usd,
                    s.fallback_output_per_million_usd,
                    s.fallback_input_per_million_usd,
                    datetime.min.replace(tzinfo=UTC),
                )
            # The shipped catalog is parsed once per process; stored (operator) prices win.
            self._price_book = PriceBook(
                self._stored_prices(), fallback=fallback, catalog=shipped_catalog()
            )
            self._prices_loaded_at = now
        return self._price_book

    def _stored_prices(self) -> list[Price]:
        items = self.table.query_all("pk = :p", {":p": PRICING_PK})
        out: list[Price] = []
        for item in items:
            try:
                if is_model_price(item["sk"]):
                    out.append(stored_model_price(item))
                else:
                    out.append(
                        TierPrice(
                            item["tier"],
                            Decimal(item["per_second_usd"]),
                            datetime.fromisoformat(item["effective_from"].replace("Z", "+00:00")),
                            item.get("source", ""),
                        )
                    )
            except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
                raise LedgerCorrupted(f"price item {item.get('sk')!r} is malformed") from exc
        return out

    def cost(self, usage: Usage, at: datetime) -> tuple[Decimal, Price | None]:
        """The cost of a usage at a time, and the price used (a `pricing` span)."""
        with telemetry.span(
            "pricing", resource=usage.resource, model=usage.model, tier=usage.tier
        ) as span:
            cost, price = self.book().cost(usage, at)
            telemetry.set_attributes(span, {"cost_usd": cost})
            return cost, price

    def hold(self, usage: Usage, at: datetime) -> Hold:
        """The worst-case hold of a reservation (a `pricing` span)."""
        with telemetry.span(
            "pricing", resource=usage.resource, model=usage.model, tier=usage.tier
        ) as span:
            hold = worst_case(usage, self.book(), at)
            telemetry.set_attributes(span, {"cost_usd": hold.amount, "hold_basis": hold.basis})
            return hold

    def put(self, price: Price) -> None:
        """Add a price from its effective date on; earlier prices stay for history."""
        if isinstance(price, ModelPrice):
            sk = model_price_sk(price.provider, price.model, iso(price.effective_from))
            item: dict[str, Any] = stored_model_item(price)
        else:
            sk = tier_price_sk(price.tier, iso(price.effective_from))
            item = {"tier": price.tier, "per_second_usd": price.per_second_usd}
        item |= {"effective_from": iso(price.effective_from), "source": price.source or "operator"}
        self.table.put(ItemWrite(key=(PRICING_PK, sk), kind="Put", item=item))
        self._price_book = None

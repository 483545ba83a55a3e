"""The shipped catalog: generated from the pinned LiteLLM map, every entry with provenance and an
effective date, overrides reviewed, names resolved as people write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from costguard.errors import InvalidRequest, UnknownPrice
from costguard.pricing import Catalog, ModelPrice, PriceBook, parse_time, shipped_catalog

from prices.__main__ import build
from prices.generate import generate
from prices.source import CATALOG, config, read_json

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return dict(json.loads(CATALOG.read_text("utf-8")))


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook(catalog=shipped_catalog())


def test_regenerating_from_the_pinned_map_is_byte_identical_to_the_committed_catalog() -> None:
    # Given the pinned map (fetched by `make install`, sha256-checked), the overrides and the
    # sandbox tiers; When the catalog is generated again
    # Then it is the committed file, byte for byte (`make prices` was run and committed)
    assert build() == CATALOG.read_text("utf-8")


def test_every_entry_has_provenance_an_effective_date_and_a_max_output(
    data: dict[str, Any],
) -> None:
    pin = f"{data['generated_from']['package']}=={data['generated_from']['version']}:"
    assert data["generated_from"]["version"] == config()["version"]
    for entry in data["models"]:
        assert parse_time(entry["effective_from"]).tzinfo is not None
        assert entry["source"].startswith(pin) or (
            entry["source"] == "prices/overrides.json" and entry["override"]["reason"]
        ), entry
        assert "max_output_tokens" in entry, entry  # an int, or null where the map has none
    for tier in data["sandbox_tiers"]:
        assert tier["source"] and parse_time(tier["effective_from"])


def test_at_least_a_thousand_chat_models_with_max_output_tokens(data: dict[str, Any]) -> None:
    capped = [m for m in data["models"] if isinstance(m["max_output_tokens"], int)]
    assert len(data["models"]) >= 1000
    assert len(capped) >= 1000
    assert shipped_catalog().history(("anthropic", "claude-sonnet-4-5"))[0].max_output_tokens == (
        64_000
    )


def test_every_override_has_a_reason_and_a_source_and_is_applied(data: dict[str, Any]) -> None:
    overrides = read_json("overrides.json")["overrides"]
    assert overrides
    entries = {(m["provider"], m["model"]): m for m in data["models"]}
    for o in overrides:
        assert len(o["reason"]) > 40 and o["source"].startswith("https://"), o
        entry = entries[(o["provider"], o["model"])]
        assert entry["override"] == {"reason": o["reason"], "source": o["source"]}
    marked = [m for m in data["models"] if "override" in m]
    assert len(marked) == len(overrides)


def test_an_unchanged_price_keeps_its_date_and_a_changed_one_adds_history() -> None:
    # Given a tiny map and the catalog generated from it
    cfg = {**config(), "effective_from": "2026-11-01T00:00:00Z"}
    entry = {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "max_output_tokens": 16384,
    }
    empty: dict[str, Any] = {"overrides": []}
    sandbox: dict[str, Any] = {"sandbox_tiers": []}
    first = json.loads(generate({"gpt-4o": entry}, cfg, empty, sandbox))

    # When the same map is regenerated later, and then a map with a new price
    later = {**cfg, "effective_from": "2026-12-15T00:00:00Z"}
    same = json.loads(generate({"gpt-4o": entry}, later, empty, sandbox, first))
    cheaper = {**entry, "input_cost_per_token": 2e-06}
    changed = json.loads(generate({"gpt-4o": cheaper}, later, empty, sandbox, first))

    # Then an unchanged price keeps its date; a changed one is added and the old one stays
    assert [m["effective_from"] for m in same["models"]] == ["2026-11-01T00:00:00Z"]
    assert [(m["effective_from"], m["rates"]["standard"]["input"]) for m in changed["models"]] == [
        ("2026-11-01T00:00:00Z", "2.5"),
        ("2026-12-15T00:00:00Z", "2"),
    ]
    book = PriceBook(catalog=Catalog(changed))
    assert book.model_price(None, "gpt-4o", AT).input_per_million_usd == parse("2.5")
    assert (
        book.model_price(None, "gpt-4o", datetime(2026, 12, 16, tzinfo=UTC)).input_per_million_usd
        == 2
    )


def test_the_lazy_index_reads_the_same_prices_as_a_full_parse() -> None:
    text = CATALOG.read_text("utf-8")
    lazy, full = Catalog.from_text(text), Catalog(json.loads(text))

    assert lazy.raw.keys() == full.raw.keys()
    assert lazy.tiers == full.tiers and lazy.generated_from == full.generated_from
    for key in list(full.raw)[::97]:
        assert lazy.history(key) == full.history(key)


RESOLVED = [
    (None, "gpt-4o-2024-08-06", "openai/gpt-4o-2024-08-06"),
    (None, "openai/gpt-4o", "openai/gpt-4o"),
    ("openai", "openai/gpt-4o", "openai/gpt-4o"),
    (None, "anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
    (None, "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5-20250929"),
    (None, "claude-3-5-sonnet-latest", "anthropic/claude-3-5-sonnet-20241022"),
    (None, "claude-sonnet-4", "anthropic/claude-sonnet-4-20250514"),
    (None, "gemini/gemini-2.5-pro", "google/gemini-2.5-pro"),
    ("gemini", "gemini-2.5-pro", "google/gemini-2.5-pro"),
    (None, "gemini-2.5-pro", "google/gemini-2.5-pro"),
    ("vertex_ai", "gemini-2.5-pro", "vertex_ai/gemini-2.5-pro"),
    (None, "vertex_ai/claude-sonnet-4-5@20250929", "vertex_ai/claude-sonnet-4-5@20250929"),
    ("vertex_ai", "claude-haiku-4-5@20251001", "vertex_ai/claude-haiku-4-5@20251001"),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    (None, "bedrock/anthropic.claude-sonnet-4-20250514-v1:0", "bedrock/anthropic.claude-sonnet-4-20250514-v1:0"),
    ("azure", "gpt-4o", "azure/gpt-4o"),
    # a platform that does not list a maker's model: the maker's schedule, said so
    ("azure", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
    ("bedrock", "anthropic.claude-sonnet-4-5-v9:0", "anthropic/claude-sonnet-4-5"),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "model", "priced_as"), RESOLVED)
def test_names_as_people_write_them_resolve_to_one_schedule(
    book: PriceBook, provider: str | None, model: str, priced_as: str
) -> None:
    price = book.model_price(provider, model, AT)

    assert isinstance(price, ModelPrice) and price.priced_as == priced_as


def test_an_unknown_model_is_refused_with_the_nearest_names(book: PriceBook) -> None:
    with pytest.raises(UnknownPrice) as refused:
        book.model_price(None, "gpt-4o-mnii", AT)
    assert "gpt-4o-mini" in refused.value.nearest

    with pytest.raises(UnknownPrice) as on_azure:
        book.model_price("azure", "my-gpt-4o-deployment", AT)
    assert on_azure.value.nearest and all(n.startswith("azure/") for n in on_azure.value.nearest)


def test_a_model_several_platforms_sell_and_no_maker_lists_needs_a_provider(
    book: PriceBook,
) -> None:
    with pytest.raises(InvalidRequest, match="several providers"):
        book.model_price(None, "meta-llama/Llama-3.3-70B-Instruct", AT)


def test_an_operator_price_wins_over_the_catalog_while_in_force() -> None:
    # Given an operator's price for gpt-4o from 2026-11-20, older than no catalog entry
    operator = ModelPrice(
        "openai", "gpt-4o", parse("5"), parse("20"), parse("5"), datetime(2026, 11, 20, tzinfo=UTC)
    )
    book = PriceBook([operator], catalog=shipped_catalog())

    # Then before its date the catalog prices, from its date on the operator's price does
    assert book.model_price(None, "gpt-4o", datetime(2026, 11, 19, tzinfo=UTC)).source.startswith(
        "litellm=="
    )
    assert book.model_price(None, "gpt-4o", AT) == operator
    # and a snapshot the operator did not price keeps its own catalog price
    assert book.model_price(None, "gpt-4o-2024-08-06", AT).input_per_million_usd == parse("2.5")
    # the operator's price did not state a maximum output: the catalog's still applies
    assert book.max_output_tokens(book.model_price(None, "gpt-4o", AT)) == 16_384


def parse(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)

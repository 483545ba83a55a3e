"""Costs computed by hand from the providers' published rates, against the shipped catalog.

Each case states its rate source. The arithmetic is in the comment beside it: rates are USD per
million tokens; "every token at the band's rate" when the prompt exceeds a long-context
threshold (Google and Anthropic bill the whole request at the higher rates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from costguard.errors import UnknownPrice
from costguard.models import Usage
from costguard.pricing import ModelPrice, PriceBook, shipped_catalog

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)

OPENAI = "https://developers.openai.com/api/docs/pricing"
ANTHROPIC = "https://platform.claude.com/docs/en/about-claude/pricing"
GOOGLE = "https://ai.google.dev/gemini-api/docs/pricing"
BEDROCK = "https://aws.amazon.com/bedrock/pricing/ (regional endpoints +10 % over global)"
QWEN = "https://www.alibabacloud.com/help/en/model-studio/models (qwen-plus tiers by prompt size)"
PERPLEXITY = (
    "Perplexity API pricing, $5 per 1,000 requests (LiteLLM key perplexity/pplx-70b-online)"
)
E2B = "https://e2b.dev/pricing ($0.000014/vCPU-s, $0.0000045/GiB-s)"
MODAL = "https://modal.com/pricing (GPU per second)"

CASES: list[tuple[str, str | None, str, dict[str, Any], str, str, str]] = [
    # id, provider, model, usage, expected USD, priced_as, source
    # --- long context, Gemini 2.5 Pro: ≤200k $1.25/$10, >200k $2.50/$15, cached $0.125/$0.25
    ("gemini-pro-300k", None, "gemini-2.5-pro", {"input_tokens": 300_000, "output_tokens": 1_000},
     "0.765", "google/gemini-2.5-pro", GOOGLE),  # 300k×2.5 + 1k×15 = 0.75 + 0.015
    ("gemini-pro-at-threshold", None, "gemini-2.5-pro", {"input_tokens": 200_000, "output_tokens": 1_000},
     "0.26", "google/gemini-2.5-pro", GOOGLE),  # not above 200k: 200k×1.25 + 1k×10
    ("gemini-pro-one-above", None, "gemini-2.5-pro", {"input_tokens": 200_001, "output_tokens": 1_000},
     "0.5150025", "google/gemini-2.5-pro", GOOGLE),  # 200,001×2.5 + 1k×15
    ("gemini-pro-above-cached", None, "gemini-2.5-pro",
     {"input_tokens": 300_000, "cached_input_tokens": 100_000, "output_tokens": 1_000},
     "0.54", "google/gemini-2.5-pro", GOOGLE),  # 200k×2.5 + 100k×0.25 + 1k×15; cached count toward the threshold
    ("gemini-pro-batch-above", "google", "gemini-2.5-pro",
     {"input_tokens": 300_000, "output_tokens": 1_000, "service_tier": "batch"},
     "0.3825", "google/gemini-2.5-pro", GOOGLE),  # batch 50 %: 300k×1.25 + 1k×7.5
    ("gemini-pro-priority", "gemini", "gemini-2.5-pro",
     {"input_tokens": 100_000, "output_tokens": 1_000, "service_tier": "priority"},
     "0.243", "google/gemini-2.5-pro", GOOGLE),  # priority 1.8×: 100k×2.25 + 1k×18
    ("gemini-flash-thinking", None, "gemini-2.5-flash",
     {"input_tokens": 10_000, "output_tokens": 2_000, "reasoning_tokens": 1_500},
     "0.008", "google/gemini-2.5-flash", GOOGLE),  # 10k×0.30 + 2k×2.50 (thinking billed as output)
    # --- long context, Claude Sonnet 4.5: ≤200k $3/$15, >200k $6/$22.50 (catalog override)
    ("sonnet-45-250k", None, "claude-sonnet-4-5", {"input_tokens": 250_000, "output_tokens": 1_000},
     "1.5225", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # 250k×6 + 1k×22.5
    ("sonnet-45-200k", None, "claude-sonnet-4-5", {"input_tokens": 200_000, "output_tokens": 1_000},
     "0.615", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # 200k×3 + 1k×15
    ("sonnet-45-long-with-caches", "anthropic", "claude-sonnet-4-5",
     {"input_tokens": 300_000, "cached_input_tokens": 100_000, "cache_write_input_tokens": 50_000,
      "cache_write_1h_input_tokens": 50_000, "output_tokens": 2_000},
     "1.68", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # 100k×6 + 100k×0.6 + 50k×7.5 + 50k×12 + 2k×22.5
    # --- cache writes 5 minutes (1.25×) and 1 hour (2×), cache reads (0.1×)
    ("sonnet-45-write-5m", None, "claude-sonnet-4-5",
     {"input_tokens": 10_000, "cache_write_input_tokens": 8_000},
     "0.036", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # 2k×3 + 8k×3.75
    ("sonnet-45-write-1h", None, "claude-sonnet-4-5",
     {"input_tokens": 10_000, "cache_write_1h_input_tokens": 8_000},
     "0.054", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # 2k×3 + 8k×6
    ("sonnet-45-read", None, "claude-sonnet-4-5",
     {"input_tokens": 10_000, "cached_input_tokens": 8_000, "output_tokens": 500},
     "0.0159", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # 2k×3 + 8k×0.30 + 500×15
    ("haiku-45-write-5m", None, "claude-haiku-4-5",
     {"input_tokens": 1_000_000, "cache_write_input_tokens": 1_000_000},
     "1.25", "anthropic/claude-haiku-4-5", ANTHROPIC),  # 1M×1.25 ($1 input ×1.25)
    ("haiku-45-write-1h", None, "claude-haiku-4-5",
     {"input_tokens": 1_000_000, "cache_write_1h_input_tokens": 1_000_000},
     "2", "anthropic/claude-haiku-4-5", ANTHROPIC),  # 1M×2 ($1 input ×2)
    # --- batch
    ("sonnet-45-batch", None, "claude-sonnet-4-5",
     {"input_tokens": 10_000, "output_tokens": 1_000, "service_tier": "batch"},
     "0.0225", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # 50 %: 10k×1.5 + 1k×7.5
    ("sonnet-45-batch-long", None, "claude-sonnet-4-5",
     {"input_tokens": 250_000, "output_tokens": 1_000, "service_tier": "batch"},
     "0.76125", "anthropic/claude-sonnet-4-5", ANTHROPIC),  # batch stacks on long context: 250k×3 + 1k×11.25
    ("haiku-45-batch-write-5m", None, "claude-haiku-4-5",
     {"input_tokens": 1_000_000, "cache_write_input_tokens": 1_000_000, "service_tier": "batch"},
     "0.625", "anthropic/claude-haiku-4-5", ANTHROPIC),  # 50 % of $1.25
    ("haiku-45-batch-write-1h", None, "claude-haiku-4-5",
     {"input_tokens": 1_000_000, "cache_write_1h_input_tokens": 1_000_000, "service_tier": "batch"},
     "1", "anthropic/claude-haiku-4-5", ANTHROPIC),  # 50 % of $2
    ("gpt-4o-batch", None, "gpt-4o",
     {"input_tokens": 1_000_000, "output_tokens": 1_000_000, "service_tier": "batch"},
     "6.25", "openai/gpt-4o", OPENAI),  # 1.25 + 5
    # --- OpenAI: prompt_tokens include cached ones; priority and flex tiers
    ("gpt-4o-plain", None, "gpt-4o", {"input_tokens": 1_000, "output_tokens": 500},
     "0.0075", "openai/gpt-4o", OPENAI),  # 1k×2.5 + 500×10
    ("gpt-4o-cached", "openai", "gpt-4o",
     {"input_tokens": 2_000, "cached_input_tokens": 1_024, "output_tokens": 100},
     "0.00472", "openai/gpt-4o", OPENAI),  # 976×2.5 + 1,024×1.25 + 100×10
    ("gpt-4o-priority", None, "gpt-4o",
     {"input_tokens": 1_000_000, "output_tokens": 1_000_000, "service_tier": "priority"},
     "21.25", "openai/gpt-4o", OPENAI),  # 4.25 + 17
    ("gpt-5-flex", None, "gpt-5",
     {"input_tokens": 1_000_000, "output_tokens": 1_000_000, "service_tier": "flex"},
     "5.625", "openai/gpt-5", OPENAI),  # 0.625 + 5
    ("gpt-56-cache-writes", None, "gpt-5.6",
     {"input_tokens": 100_000, "cached_input_tokens": 10_000, "cache_write_input_tokens": 20_000,
      "cache_write_1h_input_tokens": 50_000, "output_tokens": 1_000},
     "0.704", "openai/gpt-5.6", OPENAI),  # 20k×4 + 10k×0.4 + 20k×5 (short writes) + 50k×10 (12-hour writes) + 1k×20
    # --- reasoning tokens are output tokens (counted once)
    ("gpt-5-reasoning", None, "gpt-5",
     {"input_tokens": 1_000, "output_tokens": 10_000, "reasoning_tokens": 8_000},
     "0.10125", "openai/gpt-5", OPENAI),  # 1k×1.25 + 10k×10
    ("o3-reasoning", None, "o3",
     {"input_tokens": 1_000, "output_tokens": 5_000, "reasoning_tokens": 4_000},
     "0.042", "openai/o3", OPENAI),  # 1k×2 + 5k×8
    # --- names as people write them
    ("gpt-4o-snapshot", None, "gpt-4o-2024-08-06", {"input_tokens": 1_000, "output_tokens": 500},
     "0.0075", "openai/gpt-4o-2024-08-06", OPENAI),
    ("gpt-4o-prefixed", None, "openai/gpt-4o", {"input_tokens": 1_000, "output_tokens": 500},
     "0.0075", "openai/gpt-4o", OPENAI),
    ("claude-35-latest", None, "claude-3-5-sonnet-latest", {"input_tokens": 1_000, "output_tokens": 1_000},
     "0.018", "anthropic/claude-3-5-sonnet-20241022", ANTHROPIC),  # 1k×3 + 1k×15 (override entry)
    ("sonnet-4-undated-long", None, "claude-sonnet-4", {"input_tokens": 250_000},
     "1.5", "anthropic/claude-sonnet-4-20250514", ANTHROPIC),  # 250k×6 (override entry)
    ("vertex-sonnet-45-long", "vertex_ai", "claude-sonnet-4-5@20250929", {"input_tokens": 250_000},
     "1.5", "vertex_ai/claude-sonnet-4-5@20250929", ANTHROPIC),  # Vertex lists the same 6/22.5
    ("bedrock-regional", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"input_tokens": 100_000},
     "0.33", "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", BEDROCK),  # 100k × $3 × 1.1
    ("bedrock-prefixed-global", None, "bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
     {"input_tokens": 100_000}, "0.3", "bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0", BEDROCK),
    ("azure-snapshot", "azure", "gpt-5-mini-2025-08-07", {"input_tokens": 1_000_000},
     "0.25", "azure/gpt-5-mini-2025-08-07", OPENAI),  # Azure's own listing of the snapshot
    # --- tiers by prompt size (Qwen) and a per-request fee
    ("qwen-plus-above-256k", "dashscope", "qwen-plus-latest",
     {"input_tokens": 300_000, "output_tokens": 1_000},
     "0.3636", "dashscope/qwen-plus-latest", QWEN),  # 300k×1.2 + 1k×3.6
    ("perplexity-request-fee", "perplexity", "pplx-70b-online",
     {"input_tokens": 1_000, "output_tokens": 1_000},
     "0.0078", "perplexity/pplx-70b-online", PERPLEXITY),  # 0 + 1k×2.8 + $0.005 per request
]  # fmt: skip

SANDBOX_CASES = [
    ("standard", "60", "0.00222", E2B),  # 60 × (2×0.000014 + 2×0.0000045)
    ("cpu-8", "100", "0.013", E2B),  # 100 × (8×0.000014 + 4×0.0000045)
    ("gpu-t4", "10.5", "0.001722", MODAL),  # 10.5 × 0.000164
    ("gpu-h100", "3600", "3.9492", MODAL),  # 3,600 × 0.001097
]


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook(catalog=shipped_catalog())


@pytest.mark.parametrize(
    ("provider", "model", "counts", "expected", "priced_as", "source"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_a_call_costs_what_the_provider_bills(
    book: PriceBook,
    provider: str | None,
    model: str,
    counts: dict[str, Any],
    expected: str,
    priced_as: str,
    source: str,
) -> None:
    # Given a usage as the provider reports it
    usage = Usage(resource="llm", provider=provider, model=model, **counts)

    # When it is priced with the shipped catalog
    cost, price = book.cost(usage, AT)

    # Then it costs what the rates published at `source` give, to the last digit
    assert source
    assert cost == Decimal(expected)
    assert isinstance(price, ModelPrice) and price.priced_as == priced_as


@pytest.mark.parametrize(("tier", "seconds", "expected", "source"), SANDBOX_CASES)
def test_a_sandbox_costs_its_tier_per_second(
    book: PriceBook, tier: str, seconds: str, expected: str, source: str
) -> None:
    cost, _ = book.cost(Usage(resource="sandbox", tier=tier, seconds=seconds), AT)

    assert source and cost == Decimal(expected)


def test_the_record_shows_each_component_of_a_long_context_call(book: PriceBook) -> None:
    usage = Usage(
        resource="llm",
        model="claude-sonnet-4-5",
        input_tokens=300_000,
        cached_input_tokens=100_000,
        cache_write_input_tokens=50_000,
        cache_write_1h_input_tokens=50_000,
        output_tokens=2_000,
    )

    _, price = book.cost(usage, AT)

    assert price is not None
    described = price.describe()
    assert {k: v for k, v in described.items() if k.endswith("_usd")} == {
        "input_per_million_usd": "6",
        "output_per_million_usd": "22.5",
        "cached_input_per_million_usd": "0.6",
        "cache_write_per_million_usd": "7.5",
        "cache_write_1h_per_million_usd": "12",
        "reasoning_per_million_usd": "22.5",
        "input_usd": "0.6",
        "cached_input_usd": "0.06",
        "cache_write_usd": "0.375",
        "cache_write_1h_usd": "0.6",
        "output_usd": "0.045",
    }
    assert described["long_context_above_input_tokens"] == "200000"
    assert described["priced_as"] == "anthropic/claude-sonnet-4-5"
    assert described["service_tier"] == "standard"


def test_a_tier_the_model_lacks(book: PriceBook) -> None:
    # Given gpt-4o, which lists batch and priority but no flex rates
    flex = Usage(resource="llm", model="gpt-4o", input_tokens=1_000_000, service_tier="flex")
    # When flex is asked for, it is priced at standard (never below what could be billed)
    cost, price = book.cost(flex, AT)
    assert cost == Decimal("2.5")
    assert price is not None and price.describe()["priced_tier"] == "standard"

    # And priority without priority rates is refused: standard would under-count
    claude = Usage(
        resource="llm", model="claude-haiku-4-5", input_tokens=1, service_tier="priority"
    )
    with pytest.raises(UnknownPrice, match="priority"):
        book.cost(claude, AT)

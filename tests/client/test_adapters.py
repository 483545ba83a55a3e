"""Usage adapters on recorded payloads of each provider (tests/client/fixtures/), as raw JSON
(mappings) and as SDK-style objects (attributes)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from costguard_client.adapters import (
    TokenUsage,
    from_anthropic,
    from_gemini,
    from_openai_chat,
    from_openai_responses,
    token_usage,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def as_object(value: Any) -> Any:
    """JSON turned into attribute objects, the way the providers' SDKs hand them over."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: as_object(v) for k, v in value.items()})
    if isinstance(value, list):
        return [as_object(v) for v in value]
    return value


CASES = [
    (
        "openai_chat_completion",
        TokenUsage(1117, 46, 1024, "openai", "gpt-4o-2024-08-06", service_tier="standard"),
    ),
    ("openai_chat_completion_no_details", TokenUsage(13, 7, 0, "openai", "gpt-4o-mini")),
    # output_tokens already includes the 1,024 reasoning tokens: not added twice.
    (
        "openai_response",
        TokenUsage(2006, 1300, 1920, "openai", "o4-mini-2025-04-16", reasoning_tokens=1024),
    ),
    # 21 fresh + 188 written to the 5-minute cache + 1,800 read from it.
    (
        "anthropic_message",
        TokenUsage(
            2009,
            393,
            1800,
            "anthropic",
            "claude-sonnet-4-5-20250929",
            cache_write_input_tokens=188,
            service_tier="standard",
        ),
    ),
    ("anthropic_message_no_cache", TokenUsage(12, 6, 0, "anthropic", "claude-sonnet-4-5")),
    # promptTokenCount includes the cached content; thinking tokens are billed as output.
    (
        "gemini_rest_response",
        TokenUsage(2100, 830, 2048, "google", "gemini-2.5-flash", reasoning_tokens=480),
    ),
]


@pytest.mark.parametrize(("fixture", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("shape", ["json", "sdk"])
def test_a_whole_response_is_read_into_costguard_counts(
    fixture: str, expected: TokenUsage, shape: str
) -> None:
    # Given a provider's response, as JSON or as the SDK's object
    payload = load(fixture)
    response = payload if shape == "json" else as_object(payload)

    # When it is adapted
    # Then the counts are costguard's: input includes cached, output includes reasoning
    assert token_usage(response) == expected


@pytest.mark.parametrize(("fixture", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_usage_object_alone_gives_the_same_counts(fixture: str, expected: TokenUsage) -> None:
    payload = load(fixture)
    usage = payload.get("usage", payload.get("usageMetadata"))

    counts = token_usage(as_object(usage))

    assert (counts.input_tokens, counts.output_tokens, counts.cached_input_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
        expected.cached_input_tokens,
    )


def test_gemini_sdk_usage_metadata_counts_tool_prompts_as_input_and_none_as_zero() -> None:
    metadata = load("gemini_sdk_usage_metadata")

    assert from_gemini(metadata) == TokenUsage(600, 120, 0, "google")
    assert token_usage(SimpleNamespace(usage_metadata=as_object(metadata))) == TokenUsage(
        600, 120, 0, "google"
    )


def test_an_anthropic_sdk_usage_with_unset_cache_fields_is_read_as_anthropic() -> None:
    # The SDK's Usage has every attribute, None when the request used no cache.
    usage = SimpleNamespace(
        input_tokens=40,
        output_tokens=9,
        cache_creation_input_tokens=None,
        cache_read_input_tokens=None,
    )

    assert token_usage(usage) == TokenUsage(40, 9, 0, "anthropic")


def test_the_explicit_adapters_agree_with_detection() -> None:
    assert from_openai_chat(load("openai_chat_completion")["usage"]).cached_input_tokens == 1024
    assert from_openai_responses(load("openai_response")["usage"]).input_tokens == 2006
    assert from_anthropic(load("anthropic_message")["usage"]).input_tokens == 2009
    assert from_gemini(load("gemini_rest_response")["usageMetadata"]).output_tokens == 830


def test_what_is_not_a_usage_object_is_refused_with_a_reason() -> None:
    with pytest.raises(TypeError, match="not a usage object"):
        token_usage({"tokens": 12})
    with pytest.raises(TypeError, match="integer token count"):
        token_usage({"prompt_tokens": 1.5, "completion_tokens": 2})
    with pytest.raises(ValueError, match="negative"):
        token_usage({"input_tokens": -1, "output_tokens": 2})

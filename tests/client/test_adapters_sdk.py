"""The usage adapters on the vendors' own SDK types (openai, anthropic, google-genai; objects
built locally, no network), and the cost the server then records through the client, computed
by hand from the providers' published rates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from anthropic.types import Message
from costguard_client import CostGuard, TokenUsage, token_usage
from google.genai import types as genai
from openai.types.chat import ChatCompletion
from openai.types.responses import ResponseUsage

from tests.client.conftest import TenantKey


def openai_chat() -> ChatCompletion:
    """gpt-4o at the priority tier: 2,000 prompt tokens of which 1,024 cached, 100 out."""
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_795_608_000,
            "model": "gpt-4o-2024-08-06",
            "service_tier": "priority",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "hi"},
                }
            ],
            "usage": {
                "prompt_tokens": 2_000,
                "completion_tokens": 100,
                "total_tokens": 2_100,
                "prompt_tokens_details": {"cached_tokens": 1_024},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )


def openai_responses_usage() -> ResponseUsage:
    """o4-mini through the Responses API: 2,006 in (1,920 cached), 1,300 out (1,024 reasoning)."""
    return ResponseUsage.model_validate(
        {
            "input_tokens": 2_006,
            "input_tokens_details": {"cached_tokens": 1_920, "cache_write_tokens": 0},
            "output_tokens": 1_300,
            "output_tokens_details": {"reasoning_tokens": 1_024},
            "total_tokens": 3_306,
        }
    )


def anthropic_message() -> Message:
    """Claude Sonnet 4.5: 21 fresh, 188 written for 5 minutes, 8,000 for 1 hour, 1,800 read."""
    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 21,
                "cache_creation_input_tokens": 8_188,
                "cache_read_input_tokens": 1_800,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 188,
                    "ephemeral_1h_input_tokens": 8_000,
                },
                "output_tokens": 393,
                "service_tier": "standard",
            },
        }
    )


def gemini_response() -> genai.GenerateContentResponse:
    """Gemini 2.5 Pro with a 300,000-token prompt (100,000 cached), 700 out + 300 thinking."""
    return genai.GenerateContentResponse(
        model_version="gemini-2.5-pro",
        usage_metadata=genai.GenerateContentResponseUsageMetadata(
            prompt_token_count=300_000,
            cached_content_token_count=100_000,
            candidates_token_count=700,
            thoughts_token_count=300,
            total_token_count=301_000,
        ),
    )


SDK_CASES: list[tuple[str, Any, TokenUsage, str, str]] = [
    # id, SDK object, counts, model to reserve, expected USD (hand-computed)
    (
        "openai-chat-priority",
        openai_chat(),
        TokenUsage(2_000, 100, 1_024, "openai", "gpt-4o-2024-08-06", service_tier="priority"),
        "gpt-4o-2024-08-06",
        # priority $4.25 / $2.125 cached / $17 (developers.openai.com/api/docs/pricing):
        # 976×4.25 + 1,024×2.125 + 100×17
        "0.008024",
    ),
    (
        "openai-responses-reasoning",
        openai_responses_usage(),
        TokenUsage(2_006, 1_300, 1_920, "openai", reasoning_tokens=1_024),
        "o4-mini",
        # $1.10 / $0.275 cached / $4.40 (developers.openai.com/api/docs/pricing):
        # 86×1.1 + 1,920×0.275 + 1,300×4.4 (reasoning is output)
        "0.0063426",
    ),
    (
        "anthropic-cache-writes",
        anthropic_message(),
        TokenUsage(
            10_009,
            393,
            1_800,
            "anthropic",
            "claude-sonnet-4-5-20250929",
            cache_write_input_tokens=188,
            cache_write_1h_input_tokens=8_000,
            service_tier="standard",
        ),
        "claude-sonnet-4-5-20250929",
        # $3 in, $3.75 5-minute writes, $6 1-hour writes, $0.30 reads, $15 out
        # (platform.claude.com/docs/en/about-claude/pricing):
        # 21×3 + 188×3.75 + 8,000×6 + 1,800×0.3 + 393×15
        "0.055203",
    ),
    (
        "gemini-long-context",
        gemini_response(),
        TokenUsage(300_000, 1_000, 100_000, "google", "gemini-2.5-pro", reasoning_tokens=300),
        "gemini-2.5-pro",
        # above 200k: $2.50 in, $0.25 cached, $15 out (ai.google.dev/gemini-api/docs/pricing):
        # 200,000×2.5 + 100,000×0.25 + 1,000×15
        "0.54",
    ),
]


@pytest.mark.parametrize(
    ("sdk_object", "expected"), [c[1:3] for c in SDK_CASES], ids=[c[0] for c in SDK_CASES]
)
def test_each_vendor_sdk_type_is_read_into_costguard_counts(
    sdk_object: Any, expected: TokenUsage
) -> None:
    assert token_usage(sdk_object) == expected


def test_anthropic_writes_without_the_split_are_five_minute_writes() -> None:
    message = anthropic_message()
    usage = message.usage.model_copy(update={"cache_creation": None})

    counts = token_usage(usage)

    assert (counts.cache_write_input_tokens, counts.cache_write_1h_input_tokens) == (8_188, 0)
    assert counts.input_tokens == 10_009


@pytest.mark.parametrize(
    ("sdk_object", "model", "expected"),
    [(c[1], c[3], c[4]) for c in SDK_CASES],
    ids=[c[0] for c in SDK_CASES],
)
def test_a_commit_with_the_vendor_object_records_what_the_provider_bills(
    guard: CostGuard, tenant: TenantKey, sdk_object: Any, model: str, expected: str
) -> None:
    # Given a hold for the call (a worst case well inside the $1.00 quota)
    with guard.reserve(
        tenant.tenant_id, model=model, input_tokens=10, max_output_tokens=10
    ) as hold:
        # When the provider's own object is committed
        record = hold.commit(sdk_object)

    # Then the server priced it as the provider bills, and says how
    assert record.cost_usd == Decimal(expected)
    assert record.price is not None and record.price["priced_as"].endswith(model)
    counts = token_usage(sdk_object)
    assert record.cache_write_1h_input_tokens == (counts.cache_write_1h_input_tokens or None)
    assert record.service_tier == (counts.service_tier or "standard")


def test_openai_cache_writes_split_short_and_twelve_hour_retention() -> None:
    # Given a Responses API usage whose 10,000 input tokens include 2,000 cache reads and
    # 3,000 cache writes, 1,000 of them with 12-hour retention
    usage = ResponseUsage.model_validate(
        {
            "input_tokens": 10_000,
            "input_tokens_details": {
                "cached_tokens": 2_000,
                "cache_write_tokens": 3_000,
                "cache_write_tokens_details": {"ttl_30m_tokens": 2_000, "ttl_12h_tokens": 1_000},
            },
            "output_tokens": 100,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 10_100,
        }
    )

    counts = token_usage(usage)

    # Then the short writes and the long-retention writes are apart, all inside input_tokens
    assert (counts.input_tokens, counts.cached_input_tokens) == (10_000, 2_000)
    assert (counts.cache_write_input_tokens, counts.cache_write_1h_input_tokens) == (2_000, 1_000)

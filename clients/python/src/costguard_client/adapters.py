"""Provider usage objects → costguard token counts, duck-typed (no provider SDK is imported).

Each adapter takes the SDK's object (attributes) or the raw JSON (a mapping, snake_case or
Gemini's camelCase) and returns `TokenUsage` in costguard's terms: `input_tokens` counts every
prompt token, cached ones included; `cached_input_tokens` is the part read from a cache
(priced at the model's cached rate); `output_tokens` counts everything billed as output.

| provider | input_tokens | cached_input_tokens | output_tokens |
|---|---|---|---|
| OpenAI chat completions | `prompt_tokens` | `prompt_tokens_details.cached_tokens` | `completion_tokens` (reasoning included) |
| OpenAI responses | `input_tokens` | `input_tokens_details.cached_tokens` | `output_tokens` (reasoning included) |
| Anthropic messages | `input_tokens + cache_creation_input_tokens + cache_read_input_tokens` | `cache_read_input_tokens` | `output_tokens` |
| Google Gemini | `prompt_token_count + tool_use_prompt_token_count` | `cached_content_token_count` | `candidates_token_count + thoughts_token_count` |

Anthropic reports cache reads and writes apart from `input_tokens`, so they are added back.
Cache writes are counted at the plain input price: the price book has no cache-write price
(Anthropic bills them at 1.25× or 2×), so a cache-heavy Anthropic call is slightly undercounted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Provider = Literal["openai", "anthropic", "google"]


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    provider: Provider | None = None
    model: str | None = None
    """The model the provider reported, when a whole response was given."""


_MISSING = object()


def _raw(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, _MISSING)
    return getattr(obj, name, _MISSING)


def _has(obj: Any, *names: str) -> bool:
    return any(_raw(obj, n) is not _MISSING for n in names)


def _get(obj: Any, *names: str) -> Any:
    """The first of `names` that is present and not None (SDK objects use None for unset)."""
    for name in names:
        value = _raw(obj, name)
        if value is not _MISSING and value is not None:
            return value
    return None


def _count(obj: Any, *names: str) -> int:
    value = _get(obj, *names) if obj is not None else None
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{names[0]} must be an integer token count, got {value!r}")
    if value < 0:
        raise ValueError(f"{names[0]} cannot be negative")
    return value


def _model(response: Any, *names: str) -> str | None:
    value = _get(response, *names) if response is not None else None
    return value if isinstance(value, str) else None


def from_openai_chat(usage: Any, model: str | None = None) -> TokenUsage:
    """`response.usage` of an OpenAI chat completion (also Azure OpenAI, and most
    OpenAI-compatible servers)."""
    details = _get(usage, "prompt_tokens_details")
    return TokenUsage(
        input_tokens=_count(usage, "prompt_tokens"),
        output_tokens=_count(usage, "completion_tokens"),
        cached_input_tokens=_count(details, "cached_tokens"),
        provider="openai",
        model=model,
    )


def from_openai_responses(usage: Any, model: str | None = None) -> TokenUsage:
    """`response.usage` of the OpenAI Responses API."""
    details = _get(usage, "input_tokens_details")
    return TokenUsage(
        input_tokens=_count(usage, "input_tokens"),
        output_tokens=_count(usage, "output_tokens"),
        cached_input_tokens=_count(details, "cached_tokens"),
        provider="openai",
        model=model,
    )


def from_anthropic(usage: Any, model: str | None = None) -> TokenUsage:
    """`message.usage` of the Anthropic Messages API."""
    fresh = _count(usage, "input_tokens")
    written = _count(usage, "cache_creation_input_tokens")
    read = _count(usage, "cache_read_input_tokens")
    return TokenUsage(
        input_tokens=fresh + written + read,
        output_tokens=_count(usage, "output_tokens"),
        cached_input_tokens=read,
        provider="anthropic",
        model=model,
    )


def from_gemini(usage_metadata: Any, model: str | None = None) -> TokenUsage:
    """`response.usage_metadata` of Google Gemini (google-genai SDK), or `usageMetadata` of
    the REST API; `prompt_token_count` already includes the cached content."""
    m = usage_metadata
    return TokenUsage(
        input_tokens=_count(m, "prompt_token_count", "promptTokenCount")
        + _count(m, "tool_use_prompt_token_count", "toolUsePromptTokenCount"),
        output_tokens=_count(m, "candidates_token_count", "candidatesTokenCount")
        + _count(m, "thoughts_token_count", "thoughtsTokenCount"),
        cached_input_tokens=_count(m, "cached_content_token_count", "cachedContentTokenCount"),
        provider="google",
        model=model,
    )


def _from_usage(usage: Any, model: str | None) -> TokenUsage:
    if _has(usage, "prompt_tokens", "completion_tokens"):
        return from_openai_chat(usage, model)
    if _has(usage, "prompt_token_count", "promptTokenCount", "candidates_token_count"):
        return from_gemini(usage, model)
    if _has(usage, "cache_read_input_tokens", "cache_creation_input_tokens"):
        return from_anthropic(usage, model)
    if _has(usage, "input_tokens", "output_tokens"):
        # The Responses API shape; an Anthropic usage without its cache fields means the
        # same counts, so the two read alike here.
        return from_openai_responses(usage, model)
    raise TypeError(
        f"not a usage object costguard knows: {type(usage).__name__} "
        "(expected OpenAI, Anthropic or Google usage, or pass the token counts)"
    )


def token_usage(obj: Any) -> TokenUsage:
    """Token counts from a provider's response or its usage object, whichever is given."""
    if isinstance(obj, TokenUsage):
        return obj
    metadata = _get(obj, "usage_metadata", "usageMetadata")
    if metadata is not None:
        return from_gemini(metadata, _model(obj, "model_version", "modelVersion"))
    usage = _get(obj, "usage")
    if usage is not None:
        model = _model(obj, "model")
        # A response names its own kind; trust that before the shape of its usage.
        kind = _get(obj, "object", "type")
        if kind == "message":
            return from_anthropic(usage, model)
        if kind == "chat.completion":
            return from_openai_chat(usage, model)
        if kind == "response":
            return from_openai_responses(usage, model)
        return _from_usage(usage, model)
    return _from_usage(obj, None)

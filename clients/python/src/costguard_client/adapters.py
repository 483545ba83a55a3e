"""Provider usage objects → costguard token counts, duck-typed (no provider SDK is imported).

Each adapter takes the SDK's object (attributes) or the raw JSON (a mapping, snake_case or
Gemini's camelCase) and returns `TokenUsage` in costguard's terms: `input_tokens` counts every
prompt token, cached and cache-write ones included; `cached_input_tokens` is the part read from
a cache, `cache_write_input_tokens` / `cache_write_1h_input_tokens` the parts written to a
5-minute / 1-hour cache (each priced at its own rate); `output_tokens` counts everything billed
as output, `reasoning_tokens` the part of it spent thinking.

| provider | input_tokens | cached_input_tokens | cache writes (5 m, 1 h) | output_tokens (reasoning_tokens) |
|---|---|---|---|---|
| OpenAI chat completions | `prompt_tokens` (includes cached) | `prompt_tokens_details.cached_tokens` | `prompt_tokens_details.cache_write_tokens` (its 12-hour part as the long-retention writes) | `completion_tokens` (`completion_tokens_details.reasoning_tokens`) |
| OpenAI responses | `input_tokens` | `input_tokens_details.cached_tokens` | `input_tokens_details.cache_write_tokens` (`…ttl_12h_tokens` as the long-retention writes) | `output_tokens` (`output_tokens_details.reasoning_tokens`) |
| Anthropic messages | `input_tokens + cache_creation_input_tokens + cache_read_input_tokens` | `cache_read_input_tokens` | `cache_creation.ephemeral_5m_input_tokens`, `…ephemeral_1h_input_tokens` (all of `cache_creation_input_tokens` at 5 m when the split is absent) | `output_tokens` (`output_tokens_details.thinking_tokens`) |
| Google Gemini | `prompt_token_count + tool_use_prompt_token_count` (includes cached) | `cached_content_token_count` | none | `candidates_token_count + thoughts_token_count` (`thoughts_token_count`) |

Anthropic reports cache reads and writes apart from `input_tokens`, so they are added back.
The service tier comes from the response where the provider reports it: OpenAI's
`service_tier` (`default` → standard, `flex`, `priority`) and Anthropic's `usage.service_tier`
(`standard`, `priority`, `batch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Provider = Literal["openai", "anthropic", "google"]


ServiceTier = Literal["standard", "batch", "flex", "priority"]


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    provider: Provider | None = None
    model: str | None = None
    """The model the provider reported, when a whole response was given."""
    cache_write_input_tokens: int = 0
    """Part of `input_tokens` written to a 5-minute cache (Anthropic bills 1.25× input)."""
    cache_write_1h_input_tokens: int = 0
    """Part of `input_tokens` written to a 1-hour cache (Anthropic bills 2× input)."""
    reasoning_tokens: int = 0
    """Part of `output_tokens` spent reasoning (billed as output)."""
    service_tier: ServiceTier | None = None
    """The tier the provider says it served the call at, when it says."""


_OPENAI_TIERS: dict[str, ServiceTier] = {
    "default": "standard",
    "auto": "standard",
    "scale": "standard",
    "standard": "standard",
    "flex": "flex",
    "priority": "priority",
    "batch": "batch",
}


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


def _tier(value: Any) -> ServiceTier | None:
    return _OPENAI_TIERS.get(value) if isinstance(value, str) else None


def _openai_writes(details: Any) -> tuple[int, int]:
    """OpenAI's cache writes (part of the prompt count, like cached reads): the 12-hour ones
    are the long-retention writes, the rest short ones."""
    written = _count(details, "cache_write_tokens")
    long = _count(_get(details, "cache_write_tokens_details"), "ttl_12h_tokens")
    return max(written - long, 0), long


def from_openai_chat(
    usage: Any, model: str | None = None, service_tier: str | None = None
) -> TokenUsage:
    """`response.usage` of an OpenAI chat completion (also Azure OpenAI, and most
    OpenAI-compatible servers); `service_tier` is the response's."""
    details = _get(usage, "prompt_tokens_details")
    output = _get(usage, "completion_tokens_details")
    short, long = _openai_writes(details)
    return TokenUsage(
        input_tokens=_count(usage, "prompt_tokens"),
        output_tokens=_count(usage, "completion_tokens"),
        cached_input_tokens=_count(details, "cached_tokens"),
        provider="openai",
        model=model,
        cache_write_input_tokens=short,
        cache_write_1h_input_tokens=long,
        reasoning_tokens=_count(output, "reasoning_tokens"),
        service_tier=_tier(service_tier),
    )


def from_openai_responses(
    usage: Any, model: str | None = None, service_tier: str | None = None
) -> TokenUsage:
    """`response.usage` of the OpenAI Responses API; `service_tier` is the response's."""
    details = _get(usage, "input_tokens_details")
    output = _get(usage, "output_tokens_details")
    short, long = _openai_writes(details)
    return TokenUsage(
        input_tokens=_count(usage, "input_tokens"),
        output_tokens=_count(usage, "output_tokens"),
        cached_input_tokens=_count(details, "cached_tokens"),
        provider="openai",
        model=model,
        cache_write_input_tokens=short,
        cache_write_1h_input_tokens=long,
        reasoning_tokens=_count(output, "reasoning_tokens"),
        service_tier=_tier(service_tier),
    )


def from_anthropic(usage: Any, model: str | None = None) -> TokenUsage:
    """`message.usage` of the Anthropic Messages API: `input_tokens` there excludes cache
    reads and writes, which are added back; the 5-minute / 1-hour split of the writes comes
    from `cache_creation` (all 5-minute, Anthropic's default, when it is absent)."""
    fresh = _count(usage, "input_tokens")
    written = _count(usage, "cache_creation_input_tokens")
    read = _count(usage, "cache_read_input_tokens")
    split = _get(usage, "cache_creation")
    one_hour = _count(split, "ephemeral_1h_input_tokens")
    five_minutes = _count(split, "ephemeral_5m_input_tokens") if split is not None else written
    # the split is the authority when present; a total larger than it is billed at 5 minutes
    five_minutes = max(five_minutes, written - one_hour)
    return TokenUsage(
        input_tokens=fresh + five_minutes + one_hour + read,
        output_tokens=_count(usage, "output_tokens"),
        cached_input_tokens=read,
        provider="anthropic",
        model=model,
        cache_write_input_tokens=five_minutes,
        cache_write_1h_input_tokens=one_hour,
        reasoning_tokens=_count(_get(usage, "output_tokens_details"), "thinking_tokens"),
        service_tier=_tier(_get(usage, "service_tier")),
    )


def from_gemini(usage_metadata: Any, model: str | None = None) -> TokenUsage:
    """`response.usage_metadata` of Google Gemini (google-genai SDK), or `usageMetadata` of
    the REST API; `prompt_token_count` already includes the cached content."""
    m = usage_metadata
    thoughts = _count(m, "thoughts_token_count", "thoughtsTokenCount")
    return TokenUsage(
        input_tokens=_count(m, "prompt_token_count", "promptTokenCount")
        + _count(m, "tool_use_prompt_token_count", "toolUsePromptTokenCount"),
        output_tokens=_count(m, "candidates_token_count", "candidatesTokenCount") + thoughts,
        cached_input_tokens=_count(m, "cached_content_token_count", "cachedContentTokenCount"),
        provider="google",
        model=model,
        reasoning_tokens=thoughts,
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
        tier = _get(obj, "service_tier")
        if kind == "message":
            return from_anthropic(usage, model)
        if kind in ("chat.completion", "chat.completion.chunk"):
            return from_openai_chat(usage, model, tier)
        if kind == "response":
            return from_openai_responses(usage, model, tier)
        found = _from_usage(usage, model)
        if found.provider == "openai" and tier is not None:
            return replace(found, service_tier=_tier(tier))
        return found
    return _from_usage(obj, None)

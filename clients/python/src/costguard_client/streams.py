"""What a provider's stream says about usage, read event by event (no provider SDK imported).

| provider | where the usage is | final when |
|---|---|---|
| OpenAI chat completions | the last chunk's `usage` (only with `stream_options={"include_usage": True}`) | that chunk |
| OpenAI Responses API | `response.usage` of `response.completed` (or `.incomplete`, `.failed`) | that event |
| Anthropic messages | `message_start`'s `message.usage` (input, cache), then `message_delta`'s `usage` (cumulative output) | a `message_delta` with a `stop_reason`, or `message_stop` |
| Google Gemini | every chunk's `usage_metadata` (cumulative) | a chunk with a `finish_reason` |

A stream that ends normally settles with the last usage it reported (the provider finished);
one that stops early (the consumer went away, the upstream failed) settles with its usage only
if the final usage was already seen, otherwise the usage is unknown and the whole hold is
charged: the provider may well have generated (and billed) the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costguard_client.adapters import (
    TokenUsage,
    _get,
    from_anthropic,
    from_gemini,
    from_openai_chat,
    from_openai_responses,
)

RESPONSE_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _fields(obj: Any) -> dict[str, Any]:
    """A usage object's fields as a mapping (SDK models, plain objects and dicts alike)."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        result = dump()
        if isinstance(result, dict):
            return result
    return dict(vars(obj)) if hasattr(obj, "__dict__") else {}


class StreamUsage:
    """The usage a stream has reported so far; `observe` each event in order."""

    def __init__(self) -> None:
        self.usage: TokenUsage | None = None
        """The latest usage reported (cumulative), or None."""
        self.final = False
        """True once the provider's last word on usage was seen."""
        self.events = 0
        self._anthropic: dict[str, Any] = {}
        self._model: str | None = None
        self._unreadable = False

    def unreadable(self) -> None:
        """An event's usage could not be read: the stream's usage is unknown from now on."""
        self._unreadable = True

    def observe(self, event: Any) -> None:
        self.events += 1
        if self._unreadable:
            return
        kind = _get(event, "type")
        if isinstance(kind, str):
            if kind.startswith("message_"):
                self._anthropic_event(kind, event)
                return
            if kind.startswith("response."):
                self._responses_event(kind, event)
                return
        metadata = _get(event, "usage_metadata", "usageMetadata")
        if metadata is not None or _get(event, "candidates") is not None:
            self._gemini_chunk(event, metadata)
            return
        usage = _get(event, "usage")
        if usage is not None:
            # An OpenAI chat completion chunk: usage comes once, on the last chunk.
            model = _get(event, "model")
            self.usage = from_openai_chat(usage, model if isinstance(model, str) else None)
            self.final = True

    def _responses_event(self, kind: str, event: Any) -> None:
        if kind not in RESPONSE_FINAL:
            return
        response = _get(event, "response")
        usage = _get(response, "usage") if response is not None else None
        if usage is not None:
            model = _get(response, "model")
            self.usage = from_openai_responses(usage, model if isinstance(model, str) else None)
            self.final = True

    def _anthropic_event(self, kind: str, event: Any) -> None:
        if kind == "message_start":
            message = _get(event, "message")
            model = _get(message, "model") if message is not None else None
            self._model = model if isinstance(model, str) else None
            self._anthropic = {
                k: v for k, v in _fields(_get(message, "usage")).items() if v is not None
            }
        elif kind == "message_delta":
            # The delta's counts are cumulative; fields it leaves unset keep message_start's.
            fresh = _fields(_get(event, "usage"))
            self._anthropic |= {k: v for k, v in fresh.items() if v is not None}
            delta = _get(event, "delta")
            if delta is not None and _get(delta, "stop_reason") is not None:
                self.final = True
        elif kind == "message_stop":
            self.final = self.usage is not None
            return
        else:
            return
        if self._anthropic:
            self.usage = from_anthropic(self._anthropic, self._model)

    def _gemini_chunk(self, event: Any, metadata: Any) -> None:
        if metadata is not None:
            model = _get(event, "model_version", "modelVersion")
            self.usage = from_gemini(metadata, model if isinstance(model, str) else None)
        for candidate in _get(event, "candidates") or ():
            if _get(candidate, "finish_reason", "finishReason") is not None:
                self.final = self.usage is not None

    def settlement(self, completed: bool) -> TokenUsage | None:
        """The usage to commit when the stream stops, or None: unknown (charge the hold).

        `completed`: the stream ended by itself (not closed early, no upstream error)."""
        if self._unreadable:
            return None
        if self.final or (completed and self.usage is not None):
            return self.usage
        return None

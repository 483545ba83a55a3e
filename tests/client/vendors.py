"""The three vendors' own SDK clients (openai, anthropic, google-genai), wired to a local
transport that streams a scripted server-sent-event body: every object the guards see is
the SDK's own type, parsed by the SDK, and nothing leaves the machine.

A body can fail part-way (the connection resets after N events: the SDK raises its own
connection error) and a consumer can stop early; that is all the streaming paths need.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import anthropic
import httpx
import httpx2
import openai
from google import genai
from google.genai import errors as gerrors
from google.genai import types as gtypes

Provider = Literal["openai_chat", "openai_responses", "anthropic", "gemini"]
PROVIDERS: tuple[Provider, ...] = ("openai_chat", "openai_responses", "anthropic", "gemini")

# ---------------------------------------------------------------------------- the events
GPT = "gpt-4o-2024-08-06"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1764590400,
        "model": GPT,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


OPENAI_CHAT_USAGE = {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 1024},
}
OPENAI_CHAT = [
    _chunk({"role": "assistant", "content": "Hel"}),
    _chunk({"content": "lo"}),
    _chunk({}, "stop"),
    # stream_options={"include_usage": True}: one last chunk, no choices, the usage.
    {**_chunk({}), "choices": [], "usage": OPENAI_CHAT_USAGE},
]


def _response(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1764590400,
        "model": "o4-mini-2025-04-16",
        "status": status,
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


OPENAI_RESPONSES_USAGE = {
    "input_tokens": 2006,
    "input_tokens_details": {"cached_tokens": 1920},
    "output_tokens": 1300,
    "output_tokens_details": {"reasoning_tokens": 1024},
    "total_tokens": 3306,
}
OPENAI_RESPONSES = [
    {"type": "response.created", "sequence_number": 0, "response": _response("in_progress", None)},
    {
        "type": "response.output_text.delta",
        "sequence_number": 1,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hello",
        "logprobs": [],
    },
    {
        "type": "response.completed",
        "sequence_number": 2,
        "response": _response("completed", OPENAI_RESPONSES_USAGE),
    },
]

ANTHROPIC_USAGE = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188,
    "cache_read_input_tokens": 1800,
    "output_tokens": 393,
}
ANTHROPIC: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**ANTHROPIC_USAGE, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_stop", "index": 0},
    # The output count is cumulative and final here; the input fields stay message_start's.
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 393},
    },
    {"type": "message_stop"},
]

GEMINI_USAGE = {
    "promptTokenCount": 2100,
    "candidatesTokenCount": 700,
    "thoughtsTokenCount": 130,
    "cachedContentTokenCount": 2048,
    "totalTokenCount": 2930,
}


def _gemini(text: str, usage: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash"}
    if usage is not None:
        chunk["usageMetadata"] = usage
    return chunk


GEMINI = [
    # Every chunk carries the usage so far (cumulative); the last one, with finishReason, is final.
    _gemini("Hel", {"promptTokenCount": 2100, "cachedContentTokenCount": 2048}),
    _gemini("lo", {"promptTokenCount": 2100, "candidatesTokenCount": 350}),
    _gemini("!", GEMINI_USAGE, "STOP"),
]

EVENTS: dict[Provider, list[dict[str, Any]]] = {
    "openai_chat": OPENAI_CHAT,
    "openai_responses": OPENAI_RESPONSES,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
}
"""A complete stream of each: the usage is final on the last event that carries it."""

FINAL_USAGE: dict[Provider, tuple[str, dict[str, Any]]] = {
    "openai_chat": ("openai_chat", OPENAI_CHAT_USAGE),
    "openai_responses": ("openai_responses", OPENAI_RESPONSES_USAGE),
    "anthropic": ("anthropic", ANTHROPIC_USAGE),
    "gemini": ("gemini", GEMINI_USAGE),
}
"""The usage each complete stream adds up to, as that provider reports a whole response's."""

MODEL: dict[Provider, str] = {
    "openai_chat": "gpt-4o",
    "openai_responses": "o4-mini",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
}
"""The catalog model each call is reserved (and so priced) as."""


def without_usage(provider: Provider) -> list[dict[str, Any]]:
    """The same stream reporting no usage: OpenAI chat without `include_usage`, a Responses
    stream cut before `response.completed`, a Gemini proxy that strips `usageMetadata`, an
    Anthropic stream whose `message_start` / `message_delta` carry none (a proxy)."""
    if provider == "openai_chat":
        return OPENAI_CHAT[:-1]
    if provider == "openai_responses":
        return OPENAI_RESPONSES[:-1]
    if provider == "gemini":
        return [{k: v for k, v in c.items() if k != "usageMetadata"} for c in GEMINI]
    return [e for e in ANTHROPIC if e["type"] not in ("message_start", "message_delta")]


def before_final_usage(provider: Provider) -> int:
    """How many events of `EVENTS[provider]` come before the one that makes the usage final."""
    return len(EVENTS[provider]) - (2 if provider == "anthropic" else 1)


# ---------------------------------------------------------------------------- the wire
def _sse(provider: Provider, events: list[dict[str, Any]]) -> list[bytes]:
    named = provider in ("anthropic", "openai_responses")
    frames = [
        (f"event: {e['type']}\n" if named else "") + f"data: {json.dumps(e)}\n\n" for e in events
    ]
    if provider == "openai_chat":
        frames.append("data: [DONE]\n\n")
    return [f.encode() for f in frames]


@dataclass
class Script:
    """What the vendor's server sends: these events, then a reset if `fail_after` is set
    (after that many events), and how many it sent before the client went away."""

    provider: Provider
    events: list[dict[str, Any]]
    fail_after: int | None = None
    sent: int = 0

    def frames(self) -> Iterator[bytes]:
        for i, frame in enumerate(_sse(self.provider, self.events)):
            if self.fail_after is not None and i >= self.fail_after:
                raise httpx.ReadError("connection reset by the provider")
            self.sent += 1
            yield frame
        if self.fail_after is not None:
            raise httpx.ReadError("connection reset by the provider")


class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, script: Script) -> None:
        self.script = script

    def __iter__(self) -> Iterator[bytes]:
        yield from self.script.frames()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self.script.frames():
            yield frame


class _Body2(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """The same body for the anthropic SDK, which speaks httpx2."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.script.frames()
        except httpx.ReadError as reset:
            raise httpx2.ReadError(str(reset)) from None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for frame in self.script.frames():
                yield frame
        except httpx.ReadError as reset:
            raise httpx2.ReadError(str(reset)) from None


SSE = {"content-type": "text/event-stream"}


def _transport(script: Script) -> httpx.MockTransport:
    return httpx.MockTransport(lambda _: httpx.Response(200, headers=SSE, stream=_Body(script)))


def _transport2(script: Script) -> httpx2.MockTransport:
    return httpx2.MockTransport(lambda _: httpx2.Response(200, headers=SSE, stream=_Body2(script)))


# ---------------------------------------------------------------------------- the calls
def open_stream(script: Script) -> Any:
    """Make the streaming call with the vendor's sync SDK: returns its stream object."""
    p = script.provider
    if p in ("openai_chat", "openai_responses"):
        client = openai.OpenAI(
            api_key="sk-test",
            base_url="http://openai.test/v1",
            # openai accepts a legacy httpx client at runtime (is_legacy_httpx_sync_client);
            # its annotation names only httpx2's.
            http_client=httpx.Client(transport=_transport(script)),  # type: ignore[arg-type]
            max_retries=0,
        )
        if p == "openai_chat":
            return client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=2000,
                stream=True,
                stream_options={"include_usage": True},
            )
        return client.responses.create(
            model="o4-mini", input="hi", max_output_tokens=2000, stream=True
        )
    if p == "anthropic":
        return anthropic.Anthropic(
            api_key="sk-test",
            base_url="http://anthropic.test",
            http_client=httpx2.Client(transport=_transport2(script)),
            max_retries=0,
        ).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=2000,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
    return genai.Client(
        api_key="test",
        http_options=gtypes.HttpOptions(
            base_url="http://gemini.test",
            httpx_client=httpx.Client(transport=_transport(script)),
        ),
    ).models.generate_content_stream(model="gemini-2.5-flash", contents="hi")


async def aopen_stream(script: Script) -> Any:
    """The same call with the vendor's async SDK: returns its async stream."""
    p = script.provider
    if p in ("openai_chat", "openai_responses"):
        client = openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="http://openai.test/v1",
            # openai accepts a legacy httpx client at runtime (is_legacy_httpx_async_client);
            # its annotation names only httpx2's.
            http_client=httpx.AsyncClient(transport=_transport(script)),  # type: ignore[arg-type]
            max_retries=0,
        )
        if p == "openai_chat":
            return await client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=2000,
                stream=True,
                stream_options={"include_usage": True},
            )
        return await client.responses.create(
            model="o4-mini", input="hi", max_output_tokens=2000, stream=True
        )
    if p == "anthropic":
        return await anthropic.AsyncAnthropic(
            api_key="sk-test",
            base_url="http://anthropic.test",
            http_client=httpx2.AsyncClient(transport=_transport2(script)),
            max_retries=0,
        ).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=2000,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
    return await genai.Client(
        api_key="test",
        http_options=gtypes.HttpOptions(
            base_url="http://gemini.test",
            httpx_async_client=httpx.AsyncClient(transport=_transport(script)),
        ),
    ).aio.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")


UPSTREAM_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIError,
    anthropic.APIError,
    httpx.TransportError,
    httpx2.TransportError,
    gerrors.APIError,
)
"""What each SDK raises when the connection resets mid-stream."""

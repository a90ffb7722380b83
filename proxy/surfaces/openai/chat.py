"""POST /v1/chat/completions: OpenAI's chat API on the same backends, fallback, auth and timing.

Single shot answers a `chat.completion`; `stream: true` answers `chat.completion.chunk`
events ending with `data: [DONE]`, with a usage chunk first when
`stream_options.include_usage` asks for it. A stream cut after its start ends with an
`{"error": ...}` event and no `[DONE]`: the official clients raise it as an APIError
instead of returning a silently shortened answer.

Tool calls come as `message.tool_calls` / `delta.tool_calls` (each call's index, id and
name first, then its arguments' text), with `finish_reason: "tool_calls"`; a reasoning
model's thinking as `message.reasoning_content` / `delta.reasoning_content`, never in
`content` (docs/capabilities.md).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web
from attrs import define

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import REQUEST_ID
from proxy.errors import GatewayError
from proxy.llm import ChatResult, LoggedText, ReasoningDelta, StreamEnd, ToolCallDelta
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.openai.errors import openai_error
from proxy.surfaces.openai.request_models import ChatCompletionBody, chat_messages_problems, openai_chat_request
from proxy.surfaces.request_bodies import structure
from proxy.surfaces.sse_relay import relay


async def chat_completions(request: web.Request) -> web.StreamResponse:
    raw = await read_json(request)
    max_messages = request.app[SETTINGS].max_messages
    body = structure(raw, ChatCompletionBody, also=chat_messages_problems(raw, max_messages=max_messages))
    chat = openai_chat_request(body)
    completion_id = f"chatcmpl-{request[REQUEST_ID]}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await relay(request, chat, lambda _provider: ChunkEvents(
            completion_id=completion_id, created=created, model=body.model, include_usage=include_usage))
    provider, result = await service_of(request).chat(caller_of(request), chat)
    answer: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [{
            "index": 0,
            "message": _message(result),
            "finish_reason": _finish_reason(result.finish_reason),
            "logprobs": result.logprobs,
        }],
        "system_fingerprint": None,
    }
    if result.usage is not None:
        answer["usage"] = result.usage.to_json()
    response = json_response(answer)
    response.headers["X-Gateway-Provider"] = provider
    return response


def _message(result: ChatResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.output}
    if result.tool_calls:
        message["content"] = result.output or None  # as OpenAI answers a turn that only calls tools
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls]
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    return message


# What OpenAI's clients know; Ollama's done_reason agrees on "stop" and "length".
_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter"})


def _finish_reason(reported: str | None) -> str:
    return reported if reported in _FINISH_REASONS else "stop"


@define
class ChunkEvents:
    """OpenAI's chat.completion.chunk stream."""

    completion_id: str
    created: int
    model: str
    include_usage: bool

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI does: only the last chunk carries usage
        return chunk

    def opening(self) -> list[str]:
        return [orjson.dumps(self._chunk({"role": "assistant", "content": ""})).decode()]

    def token(self, text: str) -> str:
        return orjson.dumps(self._chunk({"content": text})).decode()

    def logged(self, item: LoggedText) -> str:
        chunk = self._chunk({"content": item.text})
        chunk["choices"][0]["logprobs"] = {"content": list(item.logprobs), "refusal": None}
        return orjson.dumps(chunk).decode()

    def reasoning(self, delta: ReasoningDelta) -> list[str]:
        return [orjson.dumps(self._chunk({"reasoning_content": delta.text})).decode()]

    def tool_call(self, delta: ToolCallDelta) -> list[str]:
        """OpenAI's pieces: the call's id and name (with empty arguments) first, then its
        arguments' text; a call an upstream sent whole goes out as those two chunks."""
        events = []
        if delta.id is not None or delta.name is not None:
            head: dict[str, Any] = {"index": delta.index, "type": "function",
                                    "function": {"name": delta.name or "", "arguments": ""}}
            if delta.id is not None:
                head["id"] = delta.id
            events.append(orjson.dumps(self._chunk({"tool_calls": [head]})).decode())
        if delta.arguments:
            piece = {"index": delta.index, "function": {"arguments": delta.arguments}}
            events.append(orjson.dumps(self._chunk({"tool_calls": [piece]})).decode())
        return events

    def finished(self, end: StreamEnd) -> list[str]:
        last = self._chunk({}, _finish_reason(end.finish_reason))
        if end.cached:
            last["cached"] = True  # replayed from the answer cache (docs/cache.md)
        events = [orjson.dumps(last).decode()]
        if self.include_usage:
            usage_chunk = {**self._chunk({}), "choices": [], "usage": end.usage.to_json() if end.usage else None}
            events.append(orjson.dumps(usage_chunk).decode())
        events.append("[DONE]")
        return events

    def failed(self, error: GatewayError) -> list[str]:
        return [orjson.dumps(openai_error(error)).decode()]

"""POST /v1/completions: OpenAI's legacy text completions on the same backends, fallback,
auth and limits as a chat (Ollama's /api/generate, an OpenAI-compatible /completions).

Single shot answers a `text_completion`; `stream: true` answers `text_completion` chunks
ending with `data: [DONE]`, with a usage chunk first when `stream_options.include_usage`
asks for it. `echo` is done by the gateway itself, so every backend honours it: the
answer's text starts with the prompt. A stream cut after its start ends with an
`{"error": ...}` event and no `[DONE]`, as on /v1/chat/completions.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web
from attrs import define

from proxy.edge.request_keys import REQUEST_ID
from proxy.errors import GatewayError
from proxy.llm import StreamEnd
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.openai.completion_models import CompletionBody, completion_request
from proxy.surfaces.openai.errors import openai_error
from proxy.surfaces.request_bodies import structure
from proxy.surfaces.sse_relay import relay


async def completions(request: web.Request) -> web.StreamResponse:
    body = structure(await read_json(request), CompletionBody)
    completion = completion_request(body)
    echoed = completion.prompt if body.echo else ""
    completion_id = f"cmpl-{request[REQUEST_ID]}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return await relay(request, completion, lambda _provider: CompletionChunks(
            completion_id=completion_id, created=created, model=body.model, include_usage=include_usage,
            echoed=echoed))
    backend, result = await service_of(request).complete(caller_of(request), completion)
    answer: dict[str, Any] = {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": body.model,
        "choices": [{
            "index": 0,
            "text": echoed + result.output,
            "finish_reason": finish_reason(result.finish_reason),
            "logprobs": None,
        }],
        "system_fingerprint": None,
    }
    if result.usage is not None:
        answer["usage"] = result.usage.to_json()
    response = json_response(answer)
    response.headers["X-Gateway-Provider"] = backend.provider
    return response


def finish_reason(reported: str | None) -> str:
    # Ollama's done_reason and OpenAI's finish_reason agree on "stop" and "length".
    return "length" if reported == "length" else "stop"


@define
class CompletionChunks:
    """OpenAI's text_completion stream: one chunk per token, the same object type as the answer."""

    completion_id: str
    created: int
    model: str
    include_usage: bool
    echoed: str

    def _chunk(self, text: str, reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "text": text, "finish_reason": reason, "logprobs": None}],
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI does: only the last chunk carries usage
        return chunk

    def opening(self) -> list[str]:
        return [orjson.dumps(self._chunk(self.echoed)).decode()] if self.echoed else []

    def token(self, text: str) -> str:
        return orjson.dumps(self._chunk(text)).decode()

    def finished(self, end: StreamEnd) -> list[str]:
        events = [orjson.dumps(self._chunk("", finish_reason(end.finish_reason))).decode()]
        if self.include_usage:
            usage_chunk = {**self._chunk(""), "choices": [], "usage": end.usage.to_json() if end.usage else None}
            events.append(orjson.dumps(usage_chunk).decode())
        events.append("[DONE]")
        return events

    def failed(self, error: GatewayError) -> list[str]:
        return [orjson.dumps(openai_error(error)).decode()]

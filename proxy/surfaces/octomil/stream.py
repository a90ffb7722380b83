"""POST /api/v1/inference/stream: tokens as Server-Sent Events in the Octomil contract's
form, as they arrive (the relay itself is surfaces/sse_relay.py).

    data: {"token": "Cherry", "done": false, "provider": "ollama"}
    ...
    data: {"token": "", "done": true, "provider": "ollama", "latency_ms": 812, "model_id": ..., "usage": ...}

A stream cut after its start still ends with `done: true`, carrying an `error` object.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from attrs import define

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import elapsed_ms
from proxy.errors import GatewayError, UpstreamError
from proxy.llm import LoggedText, ReasoningDelta, StreamEnd, ToolCallDelta
from proxy.surfaces.json_io import read_json
from proxy.surfaces.octomil.request_models import InferenceBody, chat_request, structure_prompt
from proxy.surfaces.sse_relay import relay


async def stream(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    body = structure_prompt(await read_json(request), InferenceBody, max_messages=settings.max_messages)
    chat = chat_request(body.model_id, body)
    include_reasoning = bool(body.parameters and body.parameters.include_reasoning)
    return await relay(request, chat, lambda provider: ContractEvents(
        request, provider, body.model_id, include_reasoning))


@define
class ContractEvents:
    request: web.Request
    provider: str
    model_id: str
    include_reasoning: bool = False

    def opening(self) -> list[str]:
        return []

    def token(self, text: str) -> str:
        # orjson escapes newlines inside strings, so every event is exactly one data line.
        return orjson.dumps({"token": text, "done": False, "provider": self.provider}).decode()

    def logged(self, item: LoggedText) -> str:
        return self.token(item.text)  # this dialect has no place for log probabilities

    def reasoning(self, delta: ReasoningDelta) -> list[str]:
        # The contract's `token` is the answer only: thinking stays out of it, unless the
        # client asked for it, in events of its own whose `token` is empty.
        if not self.include_reasoning:
            return []
        return [orjson.dumps({"token": "", "reasoning": delta.text, "done": False,
                              "provider": self.provider}).decode()]

    def tool_call(self, delta: ToolCallDelta) -> list[str]:
        return []  # /api/v1 offers no tools, so no model is asked to call one

    def finished(self, end: StreamEnd) -> list[str]:
        final = self._final()
        if end.usage is not None:
            final["usage"] = end.usage.to_json()
        if end.finish_reason is not None:
            final["finish_reason"] = end.finish_reason
        if end.cached:
            final["cached"] = True  # replayed from the answer cache (docs/cache.md)
        return [orjson.dumps(final).decode()]

    def failed(self, error: GatewayError) -> list[str]:
        described = error.to_json()
        if isinstance(error, UpstreamError):
            described["backend"] = error.backend
        return [orjson.dumps({**self._final(), "error": described}).decode()]

    def _final(self) -> dict[str, Any]:
        return {"token": "", "done": True, "provider": self.provider, "latency_ms": elapsed_ms(self.request),
                "model_id": self.model_id}

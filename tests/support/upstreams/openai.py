"""OpenAI-compatible test server speaking the real wire format.

Chat completions as one JSON object or as SSE chunks (`data: {...}\\n\\n`, a final chunk
with `finish_reason`, a usage chunk with empty `choices` only when
`stream_options.include_usage` is asked for, then `data: [DONE]`), embeddings, models,
and errors as `{"error": {"message", "type", "param", "code"}}`, the shapes OpenAI's API
and llama.cpp's server send. The model name picks a behaviour, as for the Ollama replay
(which 404s every model starting with "missing"):

  missing-everywhere*  404 model_not_found       busy*      429 rate_limit_exceeded
  down*, status-500  500 server_error            context-overflow*  400 context_length_exceeded
  midstream-error*  two tokens, then an error event, then the connection ends
  cut*              two tokens, then the connection ends without [DONE]
  bad-json*         200 with a body that is not JSON
  slow*             tokens `token_delay` seconds apart
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from attrs import define, field

from tests.support.upstreams.recorder import Recorder

TOKENS = ["Hello", " from", " the", " fallback", "."]


def error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


ERRORS: dict[str, tuple[int, str, str, str | None]] = {
    "missing-everywhere": (404, "The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error", "model_not_found"),
    "busy": (429, "Rate limit reached for requests", "requests", "rate_limit_exceeded"),
    "down": (500, "The server had an error while processing your request.", "server_error", None),
    "status-500": (500, "The server had an error while processing your request.", "server_error", None),
    "context-overflow": (400, "This model's maximum context length is 8192 tokens.",
                         "invalid_request_error", "context_length_exceeded"),
}


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def _event(data: dict[str, Any] | bytes) -> bytes:
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    return b"data: " + payload + b"\n\n"


@define
class OpenAIUpstream:
    recorder: Recorder = field(factory=Recorder)
    api_key: str | None = None
    token_delay: float = 0.0
    tokens: list[str] = field(factory=lambda: list(TOKENS))
    embedding_usage: bool = True
    # When set, streams pause after their first token until the test sets it.
    release: asyncio.Event | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware()])
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        return app

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(
                error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), status=401)
        return None

    def _error_for(self, model: str) -> web.Response | None:
        for prefix, (status, message, type_, code) in ERRORS.items():
            if model.startswith(prefix):
                return web.json_response(error_body(message.format(model=model), type_, code), status=status)
        if model.startswith("bad-json"):
            return web.Response(text="<html>gateway error</html>", content_type="application/json")
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        refused = self._refused(request) or self._error_for(model)
        if refused is not None:
            return refused
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(self.tokens)},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": len(self.tokens),
                          "total_tokens": 7 + len(self.tokens)},
            })
        return await self._stream(request, body, model)

    async def _stream(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        await response.write(_event(_chunk(model, {"role": "assistant", "content": ""})))
        broken = model.startswith(("midstream-error", "cut"))
        for i, token in enumerate(self.tokens[:2] if broken else self.tokens):
            if i == 1 and self.release is not None:
                await self.release.wait()
            if i and (self.token_delay or model.startswith("slow")):
                await asyncio.sleep(self.token_delay or 0.05)
            await response.write(_event(_chunk(model, {"content": token})))
        if model.startswith("midstream-error"):
            await response.write(_event(error_body("The model crashed.", "server_error", None)))
            return response
        if model.startswith("cut"):
            return response
        await response.write(_event(_chunk(model, {}, "stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 7, "completion_tokens": len(self.tokens), "total_tokens": 7 + len(self.tokens)}
            await response.write(_event({**_chunk(model, {}), "choices": [], "usage": usage}))
        await response.write(_event(b"[DONE]"))
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        refused = self._refused(request) or self._error_for(body["model"])
        if refused is not None:
            return refused
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(len(t.split()) for t in texts)
        return web.json_response({
            "object": "list",
            # Listed in reverse: clients must order by `index`, not by position.
            "data": [{"object": "embedding", "index": i, "embedding": [float(len(t)), float(i), 0.5]}
                     for i, t in reversed(list(enumerate(texts)))],
            "model": body["model"],
            # Some OpenAI-compatible servers send no usage with embeddings.
            **({"usage": {"prompt_tokens": tokens, "total_tokens": tokens}} if self.embedding_usage else {}),
        })

    async def models(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        return web.json_response(
            {"object": "list", "data": [{"id": "gpt-test", "object": "model", "created": 0, "owned_by": "test"}]})

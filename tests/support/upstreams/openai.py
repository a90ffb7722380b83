"""OpenAI-compatible test server speaking the real wire format.

Chat completions and text completions (`/completions`, `text_completion` objects with
`choices[].text`) as one JSON object or as SSE chunks (`data: {...}\\n\\n`, a final chunk
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
  reasoner*         thinks first: `reasoning_content` (llama.cpp's, vLLM's and DeepSeek's field)
  repeats-ids*      repeats a streamed tool call's id and name on every piece, as some servers do

A chat with tools, a response format, image parts or a tool result is answered as
model_answers.py decides, in OpenAI's wire: `message.tool_calls` with arguments as a JSON
string, or in a stream the call's id and name first and then its arguments split into
several small pieces, each a chunk of its own, as OpenAI streams them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from attrs import define, field

from tests.support.upstreams import model_answers
from tests.support.upstreams.recorder import Recorder

TOKENS = ["Hello", " from", " the", " fallback", "."]
CALL_ID = "call_openai_1"


def _uses_features(body: dict[str, Any]) -> bool:
    return bool(body.get("tools") or body.get("response_format") or body.get("logprobs") or any(
        m.get("role") == "tool" or isinstance(m.get("content"), list) for m in body.get("messages") or []))


def _text_for(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    parts = [p for m in body["messages"] if isinstance(m.get("content"), list) for p in m["content"]]
    urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
    images = model_answers.decoded([u.split("base64,", 1)[1] for u in urls if u.startswith("data:")])
    images += [url.encode() for url in urls if not url.startswith("data:")]  # fetched, as OpenAI would
    text = model_answers.text_answer(body, schema, fmt.get("type") == "json_object", images)
    return text if text is not None else "".join(TOKENS)


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


def _text_chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """A /completions stream chunk: OpenAI's text_completion object with the piece in `text`."""
    return {
        "id": "cmpl-test", "object": "text_completion", "created": 1700000000, "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "text": delta.get("content", ""), "logprobs": None,
                     "finish_reason": finish_reason}],
    }


def _pieces(content: str | None) -> list[str]:
    """The answer's tokens, as this server streams them: each word with the space before it."""
    return re.findall(r"\s*\S+", content or "")


def _logprobs(body: dict[str, Any], tokens: list[str]) -> dict[str, Any]:
    """OpenAI's `logprobs` of a choice: an entry per token, with `top_logprobs` alternatives
    (the token itself first) when asked for."""
    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    top = body.get("top_logprobs") or 0
    return {"content": [{**entry(token, -0.25), "top_logprobs": [entry(token, -0.25), *(
        entry(f"alt{n}", -2.0 - n) for n in range(1, top))][:top]} for token in tokens], "refusal": None}


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
        app.router.add_post("/v1/completions", self.completions)
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
        if _uses_features(body) or model.startswith("reasoner"):
            return await self._featured(request, body, model)
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(self.tokens)},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": len(self.tokens),
                          "total_tokens": 7 + len(self.tokens)},
            })
        return await self._stream(request, body, model)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        """The legacy text completions: the answer is in `choices[].text`, as OpenAI and
        llama.cpp's server send it (OpenAI API reference, "Completions")."""
        body = await request.json()
        model = body["model"]
        refused = self._refused(request) or self._error_for(model)
        if refused is not None:
            return refused
        if not body.get("stream"):
            return web.json_response({
                "id": "cmpl-test", "object": "text_completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "text": "".join(self.tokens), "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": len(self.tokens),
                          "total_tokens": 7 + len(self.tokens)},
            })
        return await self._stream(request, body, model, chunk=_text_chunk)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], model: str, chunk: Callable[..., dict[str, Any]] = _chunk,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        if chunk is not _text_chunk:  # a text completion has no role to announce
            await response.write(_event(chunk(model, {"role": "assistant", "content": ""})))
        broken = model.startswith(("midstream-error", "cut"))
        for i, token in enumerate(self.tokens[:2] if broken else self.tokens):
            if i == 1 and self.release is not None:
                await self.release.wait()
            if i and (self.token_delay or model.startswith("slow")):
                await asyncio.sleep(self.token_delay or 0.05)
            await response.write(_event(chunk(model, {"content": token})))
        if model.startswith("midstream-error"):
            await response.write(_event(error_body("The model crashed.", "server_error", None)))
            return response
        if model.startswith("cut"):
            return response
        await response.write(_event(chunk(model, {}, "stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 7, "completion_tokens": len(self.tokens), "total_tokens": 7 + len(self.tokens)}
            await response.write(_event({**chunk(model, {}), "choices": [], "usage": usage}))
        await response.write(_event(b"[DONE]"))
        return response

    async def _featured(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        call = model_answers.tool_to_call(body)
        content = _text_for(body) if call is None else None
        reasoning = "".join(model_answers.THINKING) if model.startswith("reasoner") else None
        finish = "stop" if call is None else "tool_calls"
        usage = {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if call is not None:
                message["tool_calls"] = [{"id": CALL_ID, "type": "function", "function": {
                    "name": call[0], "arguments": orjson.dumps(call[1]).decode()}}]
            if reasoning:
                message["reasoning_content"] = reasoning
            logprobs = _logprobs(body, _pieces(content)) if body.get("logprobs") else None
            return web.json_response({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}],
                "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None if call else ""}]
        deltas += [{"reasoning_content": piece} for piece in (model_answers.THINKING if reasoning else [])]
        if call is not None:
            arguments = orjson.dumps(call[1]).decode()
            deltas.append({"tool_calls": [{"index": 0, "id": CALL_ID, "type": "function",
                                           "function": {"name": call[0], "arguments": ""}}]})
            head = {"id": CALL_ID, "type": "function"} if model.startswith("repeats-ids") else {}
            name = {"name": call[0]} if head else {}
            deltas += [{"tool_calls": [{"index": 0, **head, "function": {**name, "arguments": arguments[i:i + 4]}}]}
                       for i in range(0, len(arguments), 4)]
        else:
            deltas += [{"content": piece} for piece in _pieces(content)]
        for delta in deltas:
            chunk = _chunk(model, delta)
            if body.get("logprobs") and delta.get("content"):  # as OpenAI: each chunk its tokens' entries
                chunk["choices"][0]["logprobs"] = _logprobs(body, [delta["content"]])
            await response.write(_event(chunk))
        await response.write(_event(_chunk(model, {}, finish)))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(_event({**_chunk(model, {}), "choices": [], "usage": usage}))
        await response.write(_event(b"[DONE]"))
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        refused = self._refused(request) or self._error_for(body["model"])
        if refused is not None:
            return refused
        sent = body["input"]
        # Texts, or token arrays (one list of ints, or a list of them) as the API allows.
        texts = [sent] if isinstance(sent, str) or (sent and isinstance(sent[0], int)) else sent
        tokens = sum(len(t) if isinstance(t, list) else len(t.split()) for t in texts)
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

"""Ollama's wire for what the recorded traffic has none of: tools, `format`, images, `think`,
and `/api/show` capabilities. Plain chats still go to the replay of real traffic.

The shapes follow Ollama's own documentation: docs/api.md in ollama/ollama ("Chat request
(with tools)": `message.tool_calls[].function.arguments` is a JSON object and has no id;
"Chat request (Structured outputs)": `format` is "json" or a schema; "Chat request (with
images)": base64 strings in `images`), docs.ollama.com's tool-calling and thinking pages
(a tool result is `{"role": "tool", "content", "tool_name"}`; in a stream each tool call
arrives whole in one line with `done: false`; thinking comes in `message.thinking`), and
its show-model-details page (`capabilities`: "completion", "tools", "vision", "thinking",
"embedding"). A model without the capability gets Ollama's 400, whose text is
`registry.ollama.ai/library/<model> does not support tools` (server/routes.go).

`logprobs` (Ollama 0.12.11 and later, api.Logprob in api/types.go): each streamed line
with text carries `logprobs`, an entry per token (`token`, `logprob`, `bytes`, and
`top_logprobs` when asked for); a single answer carries the entries of all its tokens.
"old-ollama" is older and ignores the field.

/api/generate with a `suffix` (fill-in-the-middle) needs "insert": a model listed below
without it gets Ollama's 400 `... does not support insert`; the others go to the replay.

Models and their capabilities, by name prefix (as the replay picks transcripts):
  qwen2.5-coder    completion, tools, insert
  qwen3-vl         completion, vision, tools, thinking
  qwen3, gpt-oss   completion, tools, thinking      llava   completion, vision
  llama3.2         completion, tools                old-ollama  an Ollama too old to list any
  anything else    completion                       missing*    404 from /api/show
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from aiohttp import web

from tests.support.upstreams import model_answers, ollama_docs
from tests.support.upstreams import ollama_replay_server as replay

CAPABILITIES = {  # first matching prefix wins
    "qwen2.5-coder": ["completion", "tools", "insert"],
    "qwen3-vl": ["completion", "vision", "tools", "thinking"],
    "qwen3": ["completion", "tools", "thinking"],
    "gpt-oss": ["completion", "tools", "thinking"],
    "llama3.2": ["completion", "tools"],
    "llava": ["completion", "vision"],
}
_STATS = {"total_duration": 885095291, "load_duration": 3753500, "prompt_eval_count": 122,
          "prompt_eval_duration": 328493000, "eval_count": 33, "eval_duration": 552222000}
_CREATED = "2024-07-22T20:33:28.123648Z"


def capabilities(model: str) -> list[str] | None:
    if model.startswith("old-ollama"):
        return None
    return next((caps for prefix, caps in CAPABILITIES.items() if model.startswith(prefix)), ["completion"])


def _uses_features(body: dict[str, Any]) -> bool:
    return bool(body.get("tools") or body.get("format") or "think" in body or body.get("logprobs")
                or any(m.get("images") or m.get("role") == "tool" for m in body.get("messages") or []))


def _missing(body: dict[str, Any], model: str) -> str | None:
    caps = capabilities(model) or ["completion"]
    for needed, asked in (("tools", body.get("tools")), ("thinking", body.get("think")),
                          ("vision", any(m.get("images") for m in body.get("messages") or []))):
        if asked and needed not in caps:
            return f"registry.ollama.ai/library/{model} does not support {needed}"
    return None


async def show(request: web.Request) -> web.Response:
    model = str((await request.json()).get("model") or "")
    if model.startswith("missing"):
        return web.json_response({"error": f"model '{model}' not found"}, status=404)
    # The documentation's example answer (ollama_docs.SHOW), its family and capabilities this model's.
    answer: dict[str, Any] = {**ollama_docs.SHOW, "template": "{{ .Prompt }}",
                              "details": {**ollama_docs.SHOW["details"], "family": model.split(":")[0]}}
    answer.pop("capabilities")
    caps = capabilities(model)
    if caps is not None:
        answer["capabilities"] = caps
    return web.json_response(answer)


async def generate(request: web.Request) -> web.StreamResponse:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return await replay.replay(request)  # Ollama's own 400, as recorded
    if not isinstance(body, dict):
        return await replay.replay(request)
    model = str(body.get("model") or "")
    listed = next((caps for prefix, caps in CAPABILITIES.items() if model.startswith(prefix)), None)
    if body.get("suffix") and listed is not None and "insert" not in listed:
        return web.json_response({"error": f"registry.ollama.ai/library/{model} does not support insert"}, status=400)
    return await replay.replay(request)


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not isinstance(body, dict) or not _uses_features(body):
        return await replay.replay(request)
    model = str(body.get("model") or "")
    if model.startswith("missing"):  # as the recorded 404 (chat_404_model_not_found)
        return web.json_response({"error": f"model '{model}' not found"}, status=404)
    refused = _missing(body, model)
    if refused is not None:
        return web.json_response({"error": refused}, status=400)
    images = model_answers.decoded([i for m in body["messages"] for i in m.get("images") or []])
    fmt = body.get("format")
    text = model_answers.text_answer(body, fmt if isinstance(fmt, dict) else None, fmt == "json", images) or "Hello"
    call = model_answers.tool_to_call(body)
    message: dict[str, Any] = {"role": "assistant", "content": "" if call else text}
    if call is not None:
        message["tool_calls"] = [{"function": {"name": call[0], "arguments": call[1]}}]
    thinking = "".join(model_answers.THINKING) if body.get("think") else None
    # Ollama 0.12.11 and later; "old-ollama" is older and ignores the field.
    logprobs = bool(body.get("logprobs")) and not model.startswith("old-ollama")
    top = int(body.get("top_logprobs") or 0)
    if body.get("stream", True) is False:
        if thinking:
            message["thinking"] = thinking
        extra = {"logprobs": [_logprob(t, top) for t in _pieces(message["content"])]} if logprobs else {}
        return web.json_response({"model": model, "created_at": _CREATED, "message": message,
                                  "done_reason": "stop", "done": True, **_STATS, **extra})
    return await _stream(request, model, message, body.get("think"), top if logprobs else None)


def _pieces(content: str) -> list[str]:
    return re.findall(r"\s*\S+", content)


def _logprob(token: str, top: int) -> dict[str, Any]:
    """Ollama's entry for one token (api.Logprob: `bytes` and `top_logprobs` left out when
    empty), with `top` alternatives, the token itself first."""
    entry: dict[str, Any] = {"token": token, "logprob": -0.5, "bytes": list(token.encode())}
    alternatives = [{"token": token, "logprob": -0.5}, *({"token": f"alt{n}", "logprob": -1.0 - n}
                                                         for n in range(1, top))][:top]
    if alternatives:
        entry["top_logprobs"] = alternatives
    return entry


async def _stream(request: web.Request, model: str, message: dict[str, Any], think: Any,
                  top_logprobs: int | None) -> web.StreamResponse:
    """`top_logprobs` None: no logprobs asked (or an Ollama too old to send them)."""
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)

    async def line(part: dict[str, Any], done: bool = False) -> None:
        await asyncio.sleep(0)
        extra: dict[str, Any] = {"done_reason": "stop", **_STATS} if done else {}
        if top_logprobs is not None and part.get("content"):
            extra["logprobs"] = [_logprob(part["content"], top_logprobs)]
        await response.write(orjson.dumps({"model": model, "created_at": _CREATED, "message": {
            "role": "assistant", "content": "", **part}, "done": done, **extra}) + b"\n")

    if think:
        for piece in model_answers.THINKING:
            await line({"thinking": piece})
    if "tool_calls" in message:
        await line({"tool_calls": message["tool_calls"]})  # whole, in one line
    else:
        for piece in _pieces(message["content"]):
            await line({"content": piece})
    await line({}, done=True)
    await response.write_eof()
    return response

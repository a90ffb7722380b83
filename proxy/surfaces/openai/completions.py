"""POST /v1/completions: OpenAI's legacy text completions on the same backends, fallback,
auth and limits as a chat (Ollama's /api/generate, an OpenAI-compatible /completions).

Single shot answers a `text_completion` with one choice per prompt (each prompt is its
own upstream call, counted against the key's limits on its own; a failure of any fails
the request, as OpenAI answers all or nothing); `stream: true` answers `text_completion` chunks
ending with `data: [DONE]`, with a usage chunk first when `stream_options.include_usage`
asks for it. `echo` is done by the gateway itself, so every backend honours it: the
answer's text starts with the prompt. A stream cut after its start ends with an
`{"error": ...}` event and no `[DONE]`, as on /v1/chat/completions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web
from attrs import define

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import REQUEST_ID
from proxy.errors import GatewayError
from proxy.llm import ChatResult, CompletionRequest, LoggedText, ReasoningDelta, StreamEnd, ToolCallDelta, Usage
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.openai.completion_models import CompletionBody, completion_requests
from proxy.surfaces.openai.errors import openai_error
from proxy.surfaces.request_bodies import structure
from proxy.surfaces.sse_relay import relay


async def completions(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    body = structure(await read_json(request), CompletionBody)
    prompts = completion_requests(body, max_prompts=settings.batch_max_inputs)
    completion_id = f"cmpl-{request[REQUEST_ID]}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        echoed = prompts[0].prompt if body.echo else ""
        return await relay(request, prompts[0], lambda _provider: CompletionChunks(
            completion_id=completion_id, created=created, model=body.model, include_usage=include_usage,
            echoed=echoed))
    concurrency = min(settings.batch_default_concurrency, settings.batch_max_concurrency)
    answers = await _complete_all(request, prompts, concurrency)
    answer: dict[str, Any] = {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": body.model,
        "choices": [{
            "index": index,
            "text": (prompt.prompt if body.echo else "") + result.output,
            "finish_reason": finish_reason(result.finish_reason),
            "logprobs": None,
        } for index, (prompt, (_, result)) in enumerate(zip(prompts, answers, strict=True))],
        "system_fingerprint": None,
    }
    usages = [result.usage for _, result in answers]
    if all(usage is not None for usage in usages):
        answer["usage"] = Usage(prompt_tokens=sum(u.prompt_tokens for u in usages if u),
                                completion_tokens=sum(u.completion_tokens for u in usages if u)).to_json()
    response = json_response(answer)
    response.headers["X-Gateway-Provider"] = ",".join(dict.fromkeys(provider for provider, _ in answers))
    return response


async def _complete_all(
    request: web.Request, prompts: list[CompletionRequest], concurrency: int,
) -> list[tuple[str, ChatResult]]:
    """Every prompt's answer, in order, at most `concurrency` at a time; the first failure
    cancels the rest and is the request's error."""
    service, caller = service_of(request), caller_of(request)
    if caller.tenant.limits.concurrent_requests is not None:  # more at once would only be refused
        concurrency = min(concurrency, caller.tenant.limits.concurrent_requests)
    answers: list[tuple[str, ChatResult] | None] = [None] * len(prompts)
    pending = iter(enumerate(prompts))

    async def worker() -> None:
        for index, prompt in pending:  # one shared iterator: each prompt is taken exactly once
            answers[index] = await service.complete(caller, prompt)

    if len(prompts) == 1:
        await worker()
        return [answer for answer in answers if answer is not None]
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(prompts))):
                group.create_task(worker())
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [answer for answer in answers if answer is not None]


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

    def logged(self, item: LoggedText) -> str:
        return self.token(item.text)  # this dialect has no place for log probabilities

    def reasoning(self, delta: ReasoningDelta) -> list[str]:
        return []  # a text completion streams text only

    def tool_call(self, delta: ToolCallDelta) -> list[str]:
        return []

    def finished(self, end: StreamEnd) -> list[str]:
        events = [orjson.dumps(self._chunk("", finish_reason(end.finish_reason))).decode()]
        if self.include_usage:
            usage_chunk = {**self._chunk(""), "choices": [], "usage": end.usage.to_json() if end.usage else None}
            events.append(orjson.dumps(usage_chunk).decode())
        events.append("[DONE]")
        return events

    def failed(self, error: GatewayError) -> list[str]:
        return [orjson.dumps(openai_error(error)).decode()]

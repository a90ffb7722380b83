"""POST /api/v1/inference: one prompt, one answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import elapsed_ms
from proxy.llm import ChatResult
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.octomil.request_models import InferenceBody, chat_request, structure_prompt


def answer_json(
    model_id: str, provider: str, result: ChatResult, latency_ms: float, *, include_reasoning: bool = False,
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "output": result.output,
        "latency_ms": latency_ms,
        "provider": provider,
        "model_id": model_id,
    }
    if result.usage is not None:
        answer["usage"] = result.usage.to_json()
    if result.finish_reason is not None:
        answer["finish_reason"] = result.finish_reason
    if include_reasoning and result.reasoning:
        answer["reasoning"] = result.reasoning  # only when asked: `output` stays the answer alone
    return answer


async def inference(request: web.Request) -> web.Response:
    raw = await read_json(request)
    body = structure_prompt(raw, InferenceBody, max_messages=request.app[SETTINGS].max_messages)
    provider, result = await service_of(request).chat(caller_of(request), chat_request(body.model_id, body))
    include_reasoning = bool(body.parameters and body.parameters.include_reasoning)
    return json_response(answer_json(body.model_id, provider, result, elapsed_ms(request),
                                     include_reasoning=include_reasoning))

"""POST /api/v1/inference/batch: many prompts, bounded concurrency, answers in input order.

Each item is checked and run on its own: a bad item or a failed call becomes that item's
`error`, never the batch's. Only a body that is not a batch at all is a 400. At most
`max_concurrency` items are in flight (the client's value, capped by configuration);
they run in a task group, so a cancelled request cancels every upstream call it started.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from proxy.api_models import BatchBody, PromptBody, chat_request, structure
from proxy.errors import GatewayError, InvalidInput
from proxy.handlers.inference import answer_json
from proxy.handlers.json_io import json_response, read_body
from proxy.llm import Parameters
from proxy.middlewares import elapsed_ms
from proxy.state import ROUTER, SETTINGS


async def batch(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    router = request.app[ROUTER]
    body = await read_body(request, BatchBody)
    if not body.inputs:
        raise InvalidInput("inputs must not be empty", errors=["must not be empty @ $.inputs"])
    if len(body.inputs) > settings.batch_max_inputs:
        problem = f"at most {settings.batch_max_inputs} inputs are accepted"
        raise InvalidInput(problem, errors=[f"{problem} @ $.inputs"])
    concurrency = min(body.max_concurrency or settings.batch_default_concurrency, settings.batch_max_concurrency)
    defaults = body.parameters.normalized() if body.parameters else Parameters()

    async def run_item(index: int, raw: Any) -> dict[str, Any]:
        started = time.perf_counter()
        path = f"$.inputs[{index}]"
        try:
            prompt = structure(raw, PromptBody, path=path)
            chat = chat_request(
                body.model_id, prompt, max_messages=settings.max_messages, defaults=defaults, path=path
            )
            backend, result = await router.chat(chat)
        except GatewayError as exc:
            return {"index": index, "status": exc.status, "error": exc.to_json()}
        latency = round((time.perf_counter() - started) * 1000, 3)
        return {"index": index, "status": 200, **answer_json(body.model_id, backend.provider, result, latency)}

    results: list[dict[str, Any]] = [{} for _ in body.inputs]
    pending = iter(enumerate(body.inputs))

    async def worker() -> None:
        for index, raw in pending:  # one shared iterator: each item is taken exactly once
            results[index] = await run_item(index, raw)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(body.inputs))):
            group.create_task(worker())

    failed = sum(1 for r in results if "error" in r)
    return json_response({
        "model_id": body.model_id,
        "results": results,
        "succeeded": len(results) - failed,
        "failed": failed,
        "max_concurrency": concurrency,
        "latency_ms": elapsed_ms(request),
    })

"""POST /api/v1/inference/batch: many prompts, bounded concurrency, answers in input order.

Each item is checked and run on its own: a bad item or a failed call becomes that item's
`error`, never the batch's. Only a body that is not a batch at all is a 400. At most
`max_concurrency` items are in flight (the client's value, capped by configuration);
they run in a task group, so a cancelled request cancels every upstream call it started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from attrs import frozen

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import OUTCOME, elapsed_ms, tenant_of
from proxy.errors import GatewayError
from proxy.llm import Parameters, ResponseFormat
from proxy.serving.service import Caller, Service
from proxy.settings.config import Settings
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_body
from proxy.surfaces.octomil.inference import answer_json
from proxy.surfaces.octomil.request_models import BatchBody, PromptBody, chat_request, structure_prompt
from proxy.surfaces.request_bodies import invalid

log = logging.getLogger("proxy")


@frozen
class BatchRun:
    """One batch request: what every item shares."""

    model_id: str
    defaults: Parameters
    # The top-level parameters' json_schema and include_reasoning, for items without their own.
    default_format: ResponseFormat | None
    include_reasoning: bool
    service: Service
    caller: Caller
    settings: Settings

    async def item(self, index: int, raw: Any) -> dict[str, Any]:
        """One item's answer or its own error; nothing an item does fails the batch."""
        started = time.perf_counter()
        path = f"$.inputs[{index}]"
        try:
            prompt = structure_prompt(raw, PromptBody, max_messages=self.settings.max_messages, path=path)
            # Each item is one upstream call: it counts against the key's limits on its own.
            chat = chat_request(self.model_id, prompt, defaults=self.defaults, default_format=self.default_format)
            provider, result = await self.service.chat(self.caller, chat)
        except GatewayError as exc:
            return {"index": index, "status": exc.status, "error": exc.to_json()}
        except Exception:
            log.exception("batch item failed request_id=%s index=%d", self.caller.request_id, index)
            failure = GatewayError("internal error; the request id is in the server log")
            return {"index": index, "status": failure.status, "error": failure.to_json()}
        latency = round((time.perf_counter() - started) * 1000, 3)
        own = prompt.parameters.include_reasoning if prompt.parameters else None
        return {"index": index, "status": 200, **answer_json(
            self.model_id, provider, result, latency,
            include_reasoning=self.include_reasoning if own is None else own)}

    async def all(self, inputs: list[Any], concurrency: int) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = [{} for _ in inputs]
        pending = iter(enumerate(inputs))

        async def worker() -> None:
            for index, raw in pending:  # one shared iterator: each item is taken exactly once
                results[index] = await self.item(index, raw)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(inputs))):
                group.create_task(worker())
        return results


async def batch(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await read_body(request, BatchBody)
    if not body.inputs:
        raise invalid(["must not be empty @ $.inputs"])
    if len(body.inputs) > settings.batch_max_inputs:
        raise invalid([f"at most {settings.batch_max_inputs} inputs are accepted @ $.inputs"])
    concurrency = min(body.max_concurrency or settings.batch_default_concurrency, settings.batch_max_concurrency)
    tenant = tenant_of(request)
    if tenant.limits.concurrent_requests is not None:  # more items at once would only be refused
        concurrency = min(concurrency, tenant.limits.concurrent_requests)
    run = BatchRun(
        model_id=body.model_id, defaults=body.parameters.normalized() if body.parameters else Parameters(),
        default_format=body.parameters.response_format() if body.parameters else None,
        include_reasoning=bool(body.parameters and body.parameters.include_reasoning),
        service=service_of(request), caller=caller_of(request), settings=settings,
    )
    request[OUTCOME].model = body.model_id
    results = await run.all(body.inputs, concurrency)
    failed = sum(1 for r in results if "error" in r)
    return json_response({
        "model_id": body.model_id,
        "results": results,
        "succeeded": len(results) - failed,
        "failed": failed,
        "max_concurrency": concurrency,
        "latency_ms": elapsed_ms(request),
    })

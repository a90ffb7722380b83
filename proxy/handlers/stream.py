"""POST /api/v1/inference/stream: tokens as Server-Sent Events, as they arrive.

The response starts (status 200) only once a backend has produced its first token;
until then any failure moves to the next backend, or ends as a plain JSON error with
its real status. After that the stream always ends with one `done: true` event: with
usage when the upstream finished, with an `error` object when it did not. Then the
response ends, since clients read until it does.

The whole request is registered with the shutdown drain from its start, so a stream
that gets its first token while the gateway is draining is still ended honestly.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from proxy import metrics
from proxy.api_models import InferenceBody, chat_request, structure_prompt
from proxy.errors import BadUpstreamResponse, GatewayError, ShuttingDown, UpstreamError
from proxy.handlers.json_io import read_json
from proxy.llm import StreamEnd, StreamItem
from proxy.middlewares import OUTCOME, REQUEST_ID, elapsed_ms
from proxy.state import DRAIN, ROUTER, ROUTES, SETTINGS

log = logging.getLogger("proxy")


async def stream(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    body = structure_prompt(await read_json(request), InferenceBody, max_messages=settings.max_messages)
    request[OUTCOME].model = body.model_id
    chat, route = request.app[ROUTES].table.chat(chat_request(body.model_id, body))
    # SSE comments (": ping") keep an idle connection alive through proxies.
    response = EventSourceResponse(sep="\n", ping_interval=settings.sse_heartbeat, allow_all_methods=True)
    provider = "-"
    try:
        async with request.app[DRAIN].stream() as cutoff:
            opened = await request.app[ROUTER].open_stream(chat, route)
            provider = opened.backend.provider
            request[OUTCOME].served(provider)
            async with opened.closing() as items:  # the upstream is closed however this ends
                await response.prepare(request)
                async with response:
                    await _relay(request, response, items, opened.backend.name, provider, body.model_id)
    except TimeoutError:
        if not cutoff.expired():
            # aiohttp-sse's send timeout: the client stopped reading.
            log.info("client stopped reading request_id=%s", request[REQUEST_ID])
            return response
        if not response.prepared:
            raise ShuttingDown("the gateway is shutting down") from None
        cut = ShuttingDown("the gateway is shutting down; the answer was cut")
        await _send(response, {**_final_event(request, provider, body.model_id), "error": cut.to_json()})
    except ConnectionResetError:
        log.info("client went away mid-stream request_id=%s", request[REQUEST_ID])
    return response


async def _relay(
    request: web.Request, response: EventSourceResponse, items: AsyncGenerator[StreamItem, None],
    backend: str, provider: str, model_id: str,
) -> None:
    token_event = {"token": "", "done": False, "provider": provider}
    outcome = request[OUTCOME]
    try:
        async for item in items:
            if isinstance(item, StreamEnd):
                final = _final_event(request, provider, model_id)
                if item.usage is not None:
                    outcome.served(provider, item.usage)
                    final["usage"] = item.usage.to_json()
                if item.finish_reason is not None:
                    final["finish_reason"] = item.finish_reason
                await _send(response, final)
                return
            token_event["token"] = item
            await _send(response, token_event)
            outcome.first_token_sent()
        raise BadUpstreamResponse("the stream ended without a final message", backend=backend)
    except UpstreamError as exc:
        metrics.upstream_failed(exc.backend, exc.code, passed_on=False)
        failure: GatewayError = exc
        error = {**exc.to_json(), "backend": exc.backend}
    except (ConnectionResetError, TimeoutError):
        raise  # the client is gone or stalled: nothing more can be sent
    except Exception:
        log.exception("stream relay failed request_id=%s", request[REQUEST_ID])
        failure = GatewayError("internal error while streaming; the request id is in the server log")
        error = failure.to_json()
    # The code only: an upstream's message may quote the prompt or the output.
    log.warning("stream cut after its start request_id=%s backend=%s code=%s", request[REQUEST_ID], backend,
                failure.code)
    await _send(response, {**_final_event(request, provider, model_id), "error": error})


def _final_event(request: web.Request, provider: str, model_id: str) -> dict[str, Any]:
    return {"token": "", "done": True, "provider": provider, "latency_ms": elapsed_ms(request), "model_id": model_id}


async def _send(response: EventSourceResponse, event: dict[str, Any]) -> None:
    # orjson escapes newlines inside strings, so every event is exactly one data line.
    await response.send(orjson.dumps(event).decode())

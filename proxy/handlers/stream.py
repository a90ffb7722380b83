"""POST /api/v1/inference/stream: tokens as Server-Sent Events, as they arrive.

The response starts (status 200) only once a backend has produced its first token;
until then any failure moves to the next backend, or ends as a plain JSON error with
its real status. After that the stream always ends with one `done: true` event: with
usage when the upstream finished, with an `error` object when it did not. Then the
connection's response is closed, since clients read until it ends.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from proxy.api_models import InferenceBody, chat_request
from proxy.errors import BadUpstreamResponse, GatewayError, ShuttingDown, UpstreamError
from proxy.handlers.json_io import read_body
from proxy.llm import StreamEnd
from proxy.middlewares import PROVIDER, REQUEST_ID, elapsed_ms
from proxy.routing import OpenStream
from proxy.state import DRAIN, ROUTER, SETTINGS

log = logging.getLogger("proxy")


async def stream(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    body = await read_body(request, InferenceBody)
    chat = chat_request(body.model_id, body, max_messages=settings.max_messages)
    opened = await request.app[ROUTER].open_stream(chat)
    request[PROVIDER] = opened.backend.provider

    # SSE comments (": ping") keep an idle connection alive through proxies.
    response = EventSourceResponse(sep="\n", ping_interval=settings.sse_heartbeat, allow_all_methods=True)
    await response.prepare(request)
    async with response:
        try:
            await _relay(request, response, opened, body.model_id)
        except (ConnectionResetError, TimeoutError):
            # The client left or stopped reading; leaving the relay closed the upstream.
            log.info("client went away mid-stream request_id=%s", request[REQUEST_ID])
    return response


async def _relay(request: web.Request, response: EventSourceResponse, opened: OpenStream, model_id: str) -> None:
    provider = opened.backend.provider
    token_event = {"token": "", "done": False, "provider": provider}
    cutoff: asyncio.Timeout | None = None
    try:
        async with request.app[DRAIN].stream() as cutoff, aclosing(opened.items()) as items:
            async for item in items:
                if isinstance(item, StreamEnd):
                    final = _final_event(request, provider, model_id)
                    if item.usage is not None:
                        final["usage"] = item.usage.to_json()
                    if item.finish_reason is not None:
                        final["finish_reason"] = item.finish_reason
                    await _send(response, final)
                    return
                token_event["token"] = item
                await _send(response, token_event)
            raise BadUpstreamResponse("the stream ended without a final message", backend=opened.backend.name)
    except UpstreamError as exc:
        failure: GatewayError = exc
        error = {**exc.to_json(), "backend": exc.backend}
    except TimeoutError:
        if cutoff is None or not cutoff.expired():
            raise  # the client stopped reading: nothing more can be sent
        failure = ShuttingDown("the gateway is shutting down; the answer was cut")
        error = failure.to_json()
    except ConnectionResetError:
        raise  # the client is gone: nothing more can be sent
    except Exception:
        log.exception("stream relay failed request_id=%s", request[REQUEST_ID])
        failure = GatewayError("internal error while streaming; the request id is in the server log")
        error = failure.to_json()
    log.warning("stream cut after its start request_id=%s: %s", request[REQUEST_ID], failure.message)
    await _send(response, {**_final_event(request, provider, model_id), "error": error})


def _final_event(request: web.Request, provider: str, model_id: str) -> dict[str, Any]:
    return {"token": "", "done": True, "provider": provider, "latency_ms": elapsed_ms(request), "model_id": model_id}


async def _send(response: EventSourceResponse, event: dict[str, Any]) -> None:
    # orjson escapes newlines inside strings, so every event is exactly one data line.
    await response.send(orjson.dumps(event).decode())

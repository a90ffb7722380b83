"""Relaying one upstream stream to a client as Server-Sent Events, in any client dialect.

The response starts (status 200) only once a backend has produced its first token; until
then any failure moves to the next backend, or ends as a plain JSON error with its real
status. After that the stream always ends with the dialect's final events: a normal end
when the upstream finished, an error event when it did not. Then the response ends,
since clients read until it does.

The whole request is registered with the shutdown drain from its start, so a stream that
gets its first token while the gateway is draining is still ended honestly.

Dialects (`StreamEvents`) only spell events: the Octomil contract's `{"token", "done"}`
(handlers/stream.py) and OpenAI's chat.completion.chunk (handlers/openai_chat.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from proxy import metrics
from proxy.errors import BadUpstreamResponse, GatewayError, ShuttingDown, UpstreamError
from proxy.limits.estimate import chat_estimate
from proxy.limits.limiter import Reservation
from proxy.llm import ChatRequest, ReasoningDelta, StreamEnd, StreamItem, ToolCallDelta
from proxy.middlewares import OUTCOME, REQUEST_ID, tenant_of
from proxy.routes import Route
from proxy.state import DRAIN, LIMITER, ROUTER, SETTINGS

log = logging.getLogger("proxy")


class StreamEvents(Protocol):
    """The `data:` payloads of one dialect; each is sent as one SSE event."""

    def opening(self) -> list[str]:
        """Events before the first token."""

    def token(self, text: str) -> str: ...

    def reasoning(self, delta: ReasoningDelta) -> list[str]:
        """A piece of the model's thinking: its own events, or none where the dialect keeps it out."""

    def tool_call(self, delta: ToolCallDelta) -> list[str]:
        """A piece of a tool call."""

    def finished(self, end: StreamEnd) -> list[str]:
        """The events that end a complete answer."""

    def failed(self, error: GatewayError) -> list[str]:
        """The events that end an answer cut short."""


async def relay(
    request: web.Request, chat: ChatRequest, route: Route | None,
    dialect: Callable[[str], StreamEvents],
) -> web.StreamResponse:
    """Serve `chat` as a stream; `dialect(provider)` spells its events."""
    # SSE comments (": ping") keep an idle connection alive through proxies.
    response = EventSourceResponse(
        sep="\n", ping_interval=request.app[SETTINGS].sse_heartbeat, allow_all_methods=True)
    events = dialect("-")
    try:
        async with (
            request.app[DRAIN].stream() as cutoff,
            # Checked before any upstream is asked; settled with the real usage however the
            # stream ends (a cut, a client leaving).
            request.app[LIMITER].reserve(tenant_of(request), chat.model, chat_estimate(chat)) as reservation,
        ):
            opened = await request.app[ROUTER].open_stream(chat, route)
            provider = opened.backend.provider
            events = dialect(provider)
            request[OUTCOME].served(provider)
            async with opened.closing() as items:  # the upstream is closed however this ends
                await response.prepare(request)
                async with response:
                    await _relay(request, response, items, events, opened.backend.name, provider, reservation)
    except TimeoutError:
        if not cutoff.expired():
            # aiohttp-sse's send timeout: the client stopped reading.
            log.info("client stopped reading request_id=%s", request[REQUEST_ID])
            return response
        if not response.prepared:
            raise ShuttingDown("the gateway is shutting down") from None
        await _send_all(response, events.failed(ShuttingDown("the gateway is shutting down; the answer was cut")))
    except ConnectionResetError:
        log.info("client went away mid-stream request_id=%s", request[REQUEST_ID])
    return response


async def _relay(
    request: web.Request, response: EventSourceResponse, items: AsyncGenerator[StreamItem, None],
    events: StreamEvents, backend: str, provider: str, reservation: Reservation,
) -> None:
    outcome = request[OUTCOME]
    try:
        await _send_all(response, events.opening())
        async for item in items:
            if isinstance(item, StreamEnd):
                reservation.record(item.usage)
                if item.usage is not None:
                    outcome.served(provider, item.usage)
                await _send_all(response, events.finished(item))
                return
            reservation.produced()  # thinking and tool calls are output tokens too
            if isinstance(item, str):
                sent = [events.token(item)]
            else:
                sent = events.reasoning(item) if isinstance(item, ReasoningDelta) else events.tool_call(item)
            await _send_all(response, sent)
            if sent:  # a dialect that keeps thinking out has sent nothing yet
                outcome.first_token_sent()
        raise BadUpstreamResponse("the stream ended without a final message", backend=backend)
    except UpstreamError as exc:
        metrics.upstream_failed(exc.backend, exc.code, passed_on=False)
        failure: GatewayError = exc
    except (ConnectionResetError, TimeoutError):
        raise  # the client is gone or stalled: nothing more can be sent
    except Exception:
        log.exception("stream relay failed request_id=%s", request[REQUEST_ID])
        failure = GatewayError("internal error while streaming; the request id is in the server log")
    # The code only: an upstream's message may quote the prompt or the output.
    log.warning("stream cut after its start request_id=%s backend=%s code=%s", request[REQUEST_ID], backend,
                failure.code)
    await _send_all(response, events.failed(failure))


async def _send_all(response: EventSourceResponse, events: list[str]) -> None:
    for data in events:
        await response.send(data)

"""Relaying one upstream stream to a client as Server-Sent Events, in any client dialect.

The response starts (status 200) only once a backend has produced its first token; until
then any failure moves to the next backend, or ends as a plain JSON error with its real
status. After that the stream always ends with the dialect's final events: a normal end
when the upstream finished, an error event when it did not. Then the response ends,
since clients read until it does.

The serving layer (serving/service.py) opens the stream, registered with the shutdown drain
from its start, so a stream that gets its first token while the gateway is draining is still
ended honestly; this module only renders its items in a dialect and frames them as SSE.

Dialects (`StreamEvents`) only spell events: the Octomil contract's `{"token", "done"}`
(surfaces/octomil/stream.py), OpenAI's chat.completion.chunk (surfaces/openai/chat.py),
text_completion chunks (surfaces/openai/completions.py) and the Responses API's named
events (surfaces/openai/response_events.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Protocol

from aiohttp import web

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import OUTCOME, REQUEST_ID
from proxy.errors import GatewayError, ShuttingDown, UpstreamError
from proxy.llm import GenerationRequest, LoggedText, ReasoningDelta, StreamEnd, StreamItem, ToolCallDelta
from proxy.serving.service import ServedStream
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.event_stream import EventStream

log = logging.getLogger("proxy")

Send = Callable[[str], Awaitable[None]]


class StreamEvents(Protocol):
    """The `data:` payloads of one dialect; each is sent as one SSE event."""

    def opening(self) -> list[str]:
        """Events before the first token."""

    def token(self, text: str) -> str: ...

    def logged(self, item: LoggedText) -> str:
        """A token with its log probabilities (asked for): the token alone where the dialect has no place for them."""

    def reasoning(self, delta: ReasoningDelta) -> list[str]:
        """A piece of the model's thinking: its own events, or none where the dialect keeps it out."""

    def tool_call(self, delta: ToolCallDelta) -> list[str]:
        """A piece of a tool call."""

    def finished(self, end: StreamEnd) -> list[str]:
        """The events that end a complete answer."""

    def failed(self, error: GatewayError) -> list[str]:
        """The events that end an answer cut short."""


async def relay(
    request: web.Request, chat: GenerationRequest, dialect: Callable[[str], StreamEvents],
) -> web.StreamResponse:
    """Serve `chat` (or a text completion) as a stream; `dialect(provider)` spells its events."""
    # SSE comments (": ping") keep an idle connection alive through proxies.
    response = EventStream(
        sep="\n", ping_interval=request.app[SETTINGS].sse_heartbeat, allow_all_methods=True)
    events = dialect("-")
    served: ServedStream[StreamItem] | None = None
    try:
        async with service_of(request).stream(caller_of(request), chat) as served:
            events = dialect(served.provider)
            await response.prepare(request)
            async with response:
                await relay_events(request, response.send_data, served.items, events, served.backend_name)
    except TimeoutError:
        if served is None or not served.cut_by_shutdown():
            # aiohttp-sse's send timeout: the client stopped reading.
            log.info("client stopped reading request_id=%s", request[REQUEST_ID])
            return response
        if not response.prepared:
            raise ShuttingDown("the gateway is shutting down") from None
        cut = ShuttingDown("the gateway is shutting down; the answer was cut")
        await _send_all(response.send_data, events.failed(cut))
    except ConnectionResetError:
        log.info("client went away mid-stream request_id=%s", request[REQUEST_ID])
    return response


async def relay_events(
    request: web.Request, send: Send, items: AsyncGenerator[StreamItem, None], events: StreamEvents, backend: str,
) -> None:
    """The dialect's events for `items`, each handed to `send`: the framing (SSE here, NDJSON
    for another surface) is the caller's."""
    outcome = request[OUTCOME]
    token = events.token
    try:
        await _send_all(send, events.opening())
        async for item in items:
            if isinstance(item, str):
                # The usual item, once per token: one event, sent without a list around it.
                await send(token(item))
                if outcome.first_token_at is None:
                    outcome.first_token_sent()
                continue
            if isinstance(item, StreamEnd):
                await _send_all(send, events.finished(item))
                return
            if isinstance(item, LoggedText):
                await send(events.logged(item))
                if outcome.first_token_at is None:
                    outcome.first_token_sent()
                continue
            sent = events.reasoning(item) if isinstance(item, ReasoningDelta) else events.tool_call(item)
            await _send_all(send, sent)
            if sent:  # a dialect that keeps thinking out has sent nothing yet
                outcome.first_token_sent()
    except UpstreamError as exc:  # counted by the serving layer
        failure: GatewayError = exc
    except (ConnectionResetError, TimeoutError):
        raise  # the client is gone or stalled: nothing more can be sent
    except Exception:
        log.exception("stream relay failed request_id=%s", request[REQUEST_ID])
        failure = GatewayError("internal error while streaming; the request id is in the server log")
    # The code only: an upstream's message may quote the prompt or the output.
    log.warning("stream cut after its start request_id=%s backend=%s code=%s", request[REQUEST_ID], backend,
                failure.code)
    try:
        await _send_all(send, events.failed(failure))
    finally:
        del failure  # its traceback holds this frame: without this, a reference cycle


async def _send_all(send: Send, events: list[str]) -> None:
    for data in events:
        await send(data)

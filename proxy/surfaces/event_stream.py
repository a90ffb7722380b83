"""The SSE response of every stream: events of one line of JSON each, written as they come,
with a guard against a client that stops reading and a heartbeat while the stream is silent.

A write waits only when the client has not taken what was sent before; that wait is
bounded by SEND_TIMEOUT, then the connection is aborted (TimeoutError). A write to a client
that has taken everything cannot wait and runs without a timer (arming one per token was a
twentieth of a stream's CPU). The kernel aborts a connection whose data goes unacknowledged
for as long (TCP_USER_TIMEOUT, set once on the listening socket: edge/connection_gate.py),
which catches a vanished client even while the stream is silent. The heartbeat
(surfaces/heartbeat.py) pings a silent stream.

A `NamedEvent` goes out under its SSE event name (`event: response.created`), for the
dialects whose clients dispatch on it (the Responses API).
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web import BaseRequest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.edge.connection_gate import UNACKNOWLEDGED_LIMIT
from proxy.surfaces.heartbeat import Heartbeat

# How long a write may wait for a client that stopped reading.
SEND_TIMEOUT = UNACKNOWLEDGED_LIMIT
# An event this small is taken whole by a transport with nothing queued (its pause mark is
# 64 KiB), so writing it cannot wait on the client.
_UNTIMED_EVENT = 16 * 1024
# Built once: every stream starts with these (no-cache and X-Accel-Buffering keep proxies
# from holding events back).
_HEADERS = CIMultiDictProxy(CIMultiDict({
    "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive",
    "X-Accel-Buffering": "no"}))
_PING = b": ping\n\n"
# Where an SSE field's value must be cut into lines: each line is a `data:` field of its own.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class NamedEvent(str):
    """A `data:` payload sent under an SSE event name; a plain str goes out unnamed."""

    event: str

    def __new__(cls, data: str, event: str) -> NamedEvent:
        named = super().__new__(cls, data)
        named.event = event
        return named


class EventStream(web.StreamResponse):
    # Identity, as aiohttp's own __hash__ and __eq__ say, without a Python call: the
    # heartbeat's set hashes the stream as it starts and ends.
    __hash__ = object.__hash__

    def __init__(self, heartbeat: Heartbeat) -> None:
        super().__init__(headers=_HEADERS)
        self._heartbeat = heartbeat
        # The client's connection and the response's writer, kept at prepare(): asked
        # for the write buffer on every event, and for the bytes sent by the heartbeat.
        self._client_transport: asyncio.Transport | None = None
        self._writer: AbstractStreamWriter | None = None
        self._sent_when_asked = -1

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        writer = self._writer = await super().prepare(request)
        self._client_transport = request.transport
        self._heartbeat.add(self)
        return writer

    def stop_streaming(self) -> None:
        """No more heartbeats: the stream has sent its last event, or cannot send any more."""
        self._heartbeat.discard(self)

    async def send_data(self, data: str) -> None:
        """One `data:` event (named when it is a NamedEvent)."""
        event = data.event if isinstance(data, NamedEvent) else None
        if "\n" in data or "\r" in data:
            frame = _lines_framed(data, event)
        else:
            # Event names are the gateway's own constants: one line, nothing to escape.
            named = "" if event is None else f"event: {event}\n"
            frame = f"{named}data: {data}\n\n".encode()
        transport = self._client_transport
        if transport is not None and not transport.get_write_buffer_size() and len(frame) < _UNTIMED_EVENT:
            # The client has taken everything so far: this write cannot block, so it needs no timer.
            try:
                await self.write(frame)
            except ConnectionResetError:
                self.stop_streaming()
                raise
            return
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await self.write(frame)
        except ConnectionResetError:
            self.stop_streaming()
            raise
        except TimeoutError:
            self.stop_streaming()
            if transport is not None:
                transport.abort()  # a graceful close would wait for the stalled client too
            raise

    # --- as the heartbeat sees the stream (surfaces/heartbeat.py) --------------------------

    def silent_since_asked(self) -> bool:
        # The writer's count of bytes sent: no work per event to note that one went out.
        sent = self._writer.output_size if self._writer is not None else 0
        silent = sent == self._sent_when_asked
        self._sent_when_asked = sent
        return silent

    def may_write_at_once(self) -> bool:
        transport = self._client_transport
        return transport is not None and not transport.is_closing() and not transport.get_write_buffer_size()

    async def ping(self) -> None:
        await self.write(_PING)


def _lines_framed(data: str, event: str | None) -> bytes:
    """An event whose data holds line breaks: one `data:` field per line, which the client
    joins back with newlines."""
    named = "" if event is None else f"event: {event}\n"
    fields = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"{named}{fields}\n".encode()

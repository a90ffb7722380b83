"""The SSE response of every stream: aiohttp-sse's, with a shorter path for the events the
gateway sends, which are one line of JSON each.

aiohttp-sse's `send` formats any event (id, event name, retry, data split at every line
break) through a StringIO and a regular expression; per token that was a tenth of the
relay's CPU. An event whose data holds no line break is written as it is, with the same
guard against a stalled client: while anything waits to be sent to the client, the write
is bounded by the send timeout, then the connection is aborted. Anything else still goes
through `send`.

A `NamedEvent` goes out under its SSE event name (`event: response.created`), for the
dialects whose clients dispatch on it (the Responses API).
"""

from __future__ import annotations

import asyncio

from aiohttp.abc import AbstractStreamWriter
from aiohttp.web import BaseRequest
from aiohttp_sse import EventSourceResponse

# An event this small is taken whole by a transport with nothing queued (its pause mark is
# 64 KiB), so writing it cannot wait on the client.
_UNTIMED_EVENT = 16 * 1024


class NamedEvent(str):
    """A `data:` payload sent under an SSE event name; a plain str goes out unnamed."""

    event: str

    def __new__(cls, data: str, event: str) -> NamedEvent:
        named = super().__new__(cls, data)
        named.event = event
        return named


class EventStream(EventSourceResponse):
    # The client's connection, kept at prepare(): asked for its write buffer on every event.
    # Once the connection is lost, the write itself raises ConnectionResetError.
    _client_transport: asyncio.Transport | None = None

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        writer = await super().prepare(request)
        self._client_transport = request.transport
        return writer

    async def send_data(self, data: str) -> None:
        """One `data:` event (named when it is a NamedEvent), framed with this response's separator."""
        event = data.event if isinstance(data, NamedEvent) else None
        if "\n" in data or "\r" in data:
            await self.send(data, event=event)
            return
        # Event names are the gateway's own constants: one line, nothing to escape.
        named = "" if event is None else f"event: {event}{self._sep}"
        frame = f"{named}data: {data}{self._sep}{self._sep}".encode()
        transport = self._client_transport
        if transport is not None and not transport.get_write_buffer_size() and len(frame) < _UNTIMED_EVENT:
            # The client has taken everything so far: this write cannot block, so it needs
            # no timer (arming one per token was a twentieth of a stream's CPU).
            try:
                await self.write(frame)
            except ConnectionResetError:
                self.stop_streaming()
                raise
            return
        try:
            async with asyncio.timeout(self._send_timeout):
                await self.write(frame)
        except ConnectionResetError:
            self.stop_streaming()
            raise
        except TimeoutError:
            self.stop_streaming()
            self._abort_transport()
            raise

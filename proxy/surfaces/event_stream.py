"""The SSE response of every stream: aiohttp-sse's, with a shorter path for the events the
gateway sends, which are one line of JSON each.

aiohttp-sse's `send` formats any event (id, event name, retry, data split at every line
break) through a StringIO and a regular expression; per token that was a tenth of the
relay's CPU. An event whose data holds no line break is written as it is, with the same
guard against a stalled client: while anything waits to be sent to the client, the write
is bounded by the send timeout, then the connection is aborted. Anything else still goes
through `send`.
"""

from __future__ import annotations

import asyncio

from aiohttp_sse import EventSourceResponse

# An event this small is taken whole by a transport with nothing queued (its pause mark is
# 64 KiB), so writing it cannot wait on the client.
_UNTIMED_EVENT = 16 * 1024


class EventStream(EventSourceResponse):
    async def send_data(self, data: str) -> None:
        """One `data:` event, framed with this response's separator."""
        if "\n" in data or "\r" in data:
            await self.send(data)
            return
        frame = f"data: {data}{self._sep}{self._sep}".encode()
        writer = self._payload_writer
        transport = None if writer is None else writer.transport
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

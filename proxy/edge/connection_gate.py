"""Client connections bounded below the descriptor limit.

Past the limit, accepting fails outright (EMFILE) and every new client, legitimate or not,
is turned away until some connection closes by itself: 1,100 idle connections were enough
to lock clients out of a process limited to 1,024 descriptors. The gate sits where
connections are accepted. When `limit` connections are open, the oldest are asked to
close (an idle one closes at once; a busy one after its current answer, so nothing in
flight is cut) and the new one is served; only when even that leaves no room (every
connection busy, `limit` plus `headroom` open) is the new one answered 503 and closed.

`limit` comes from settings/descriptors.py: the descriptor limit less what upstream pools
and files may need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

_REFUSAL_BODY = b'{"code": "overloaded", "message": "too many connections; retry shortly", "retryable": true}'
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport, whichever loop made it: uvloop's does not derive from
        # asyncio.WriteTransport, so no isinstance check can say so.
        cast(asyncio.WriteTransport, transport).write(_REFUSAL)
        transport.close()


class ConnectionGate:
    """A protocol factory in front of aiohttp's server (web.Server)."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self.server = server
        self.limit = limit
        self.headroom = max(8, limit // 16)

    def __call__(self) -> asyncio.BaseProtocol:
        open_now = self.server.connections  # oldest first
        if len(open_now) >= self.limit:
            for handler in open_now[: len(open_now) - self.limit + self.headroom]:
                _close_soon(handler)
            if len(open_now) >= self.limit + self.headroom:
                return _Refused()
        return self.server()


def _close_soon(handler: RequestHandler) -> None:
    """Close an idle connection now, a busy one after its current answer."""
    # Idle is waiting for the next request: the test aiohttp's own keep-alive timer makes
    # (RequestHandler._process_keepalive); aiohttp offers no public one.
    waiting = handler._waiter
    if waiting is not None and not waiting.done():
        handler.force_close()
    else:
        handler.close()


def gated_loop(loop_class: type[asyncio.AbstractEventLoop], limit: int) -> asyncio.AbstractEventLoop:
    """An event loop of `loop_class` whose servers accept connections through a ConnectionGate
    (web.run_app gives no other way to stand between the socket and aiohttp's server)."""

    class GatedLoop(loop_class):  # type: ignore[valid-type,misc]  # a class chosen at run time
        async def create_server(self, protocol_factory: Callable[[], Any], *args: Any, **kwargs: Any) -> Any:
            if isinstance(protocol_factory, web.Server):
                protocol_factory = ConnectionGate(protocol_factory, limit)
            return await super().create_server(protocol_factory, *args, **kwargs)

    return GatedLoop()

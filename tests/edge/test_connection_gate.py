"""Where connections are accepted (edge/connection_gate.py): every client connection of the
gateway's own loop is aborted by the kernel once what was sent to it goes unacknowledged for
UNACKNOWLEDGED_LIMIT seconds, whatever it carries; a stream no longer sets it per request."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
import uvloop
from aiohttp import web

from proxy.edge.connection_gate import UNACKNOWLEDGED_LIMIT, gated_loop


async def _own_user_timeout(request: web.BaseRequest) -> web.Response:
    """The TCP_USER_TIMEOUT of the connection this request came on, as the server sees it."""
    assert request.transport is not None
    connection = request.transport.get_extra_info("socket")
    return web.Response(text=str(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)))


async def _served_user_timeouts() -> tuple[int, list[str]]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(web.Server(_own_user_timeout), "127.0.0.1", 0)
    try:
        listening = server.sockets[0]
        port = listening.getsockname()[1]
        answers = []
        async with aiohttp.ClientSession() as session:
            for _ in range(2):  # two connections: each accepted one inherits it
                async with session.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}) as response:
                    answers.append(await response.text())
        return listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT), answers
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT is Linux's")
@pytest.mark.parametrize("loop_class", [uvloop.Loop, asyncio.SelectorEventLoop], ids=["uvloop", "asyncio"])
def test_accepted_connections_abort_after_the_unacknowledged_limit(loop_class: type[asyncio.AbstractEventLoop],
                                                                    ) -> None:
    loop = gated_loop(loop_class, limit=100)
    try:
        listening, accepted = loop.run_until_complete(_served_user_timeouts())
    finally:
        loop.close()
    expected = int(UNACKNOWLEDGED_LIMIT * 1000)
    assert listening == expected
    assert accepted == [str(expected), str(expected)]

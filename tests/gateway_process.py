"""The real gateway process (`python -m proxy`) for tests that need what only it does: signals,
its own listening socket, a real nginx in front of it."""

from __future__ import annotations

import asyncio
import os
import pathlib
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from attrs import frozen

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@frozen
class GatewayProcess:
    process: asyncio.subprocess.Process
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def running_gateway(env: dict[str, str]) -> AsyncIterator[GatewayProcess]:
    """The gateway on a free loopback port with `env` as its whole environment (plus PATH),
    once /readyz answers; killed on leaving if it has not exited by then."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", cwd=ROOT, env={"PATH": os.environ["PATH"], "PROXY_PORT": str(port), **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(30):
            status = await probe_until(f"http://127.0.0.1:{port}/readyz",
                                       lambda status: status is not None or process.returncode is not None)
        assert process.returncode is None, f"the gateway exited at start-up with status {process.returncode}"
        assert status == 200, f"the gateway started but is not ready ({status})"
        yield GatewayProcess(process=process, port=port)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def probe(url: str) -> int | None:
    """The status of a GET on a fresh connection, or None when the connection is refused."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return None


async def probe_until(url: str, done: Callable[[int | None], bool]) -> int | None:
    """Probe `url` until `done(status)`; the caller bounds the wait."""
    while True:
        status = await probe(url)
        if done(status):
            return status
        await asyncio.sleep(0.05)

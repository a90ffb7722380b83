"""A real redis-server for tests: its own loopback port and directory, no persistence.

Started, stopped (as by a crash: SIGKILL), frozen (SIGSTOP: connections are accepted by
the kernel but nothing answers) and restarted on the same port, so tests can see what
the gateway does when its Redis goes away and comes back.
"""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import signal
import socket

from attrs import define

from tests.support.waiting import eventually

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
INSTALLED = pathlib.Path(REDIS_SERVER).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@define
class RedisServer:
    directory: pathlib.Path
    port: int = 0
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        if not INSTALLED:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server (.ci/run does)")
        self.port = self.port or free_port()
        self.process = await asyncio.create_subprocess_exec(
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--daemonize", "no", "--loglevel", "warning",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        await eventually(self.ping)

    async def ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return await reader.readline() == b"+PONG\r\n"
        except OSError:
            return False
        finally:
            writer.close()

    async def kill(self) -> None:
        """Gone at once, as in a crash; its port refuses connections."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

"""A real gateway process started with a soft descriptor limit of 1,024 (Docker's default
since version 25) under a higher hard limit: 1,100 idle connections must not lock
legitimate clients out."""

from __future__ import annotations

import asyncio
import os
import pathlib
import resource
import sys
from collections.abc import Callable

import aiohttp

from tests.conftest import AUTH, TOKEN, RunningUpstream
from tests.gateway_process import ROOT, free_port, probe_until

IDLE_CONNECTIONS = 1100


def start_with_soft_limit(soft: int) -> Callable[[], None]:
    def limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return limit


def soft_limit_of(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no descriptor limit in /proc")


async def test_idle_connections_past_a_1024_soft_limit_do_not_lock_clients_out(ollama: RunningUpstream) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard >= 4 * IDLE_CONNECTIONS, "the test needs a higher hard limit"
    if soft < 4 * IDLE_CONNECTIONS:  # this process holds the client ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (4 * IDLE_CONNECTIONS, hard))
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PROXY_PORT": str(port), "PROXY_API_TOKENS": TOKEN,
           "OLLAMA_BASE_URL": str(ollama.url), "PROXY_LOG_LEVEL": "ERROR"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", cwd=ROOT, env=env, preexec_fn=start_with_soft_limit(1024),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    idle: list[asyncio.StreamWriter] = []
    try:
        async with asyncio.timeout(30):
            assert await probe_until(f"http://127.0.0.1:{port}/readyz", lambda s: s is not None) == 200
        assert soft_limit_of(process.pid) > 1024  # raised at start-up to the hard limit
        for _ in range(IDLE_CONNECTIONS):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            idle.append(writer)
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{port}/api/v1/inference", headers=AUTH,
                json={"model_id": "gemma3:1b", "input_data": "What is 2+2?"}) as response:
            body = await response.json()
        assert response.status == 200, body
        assert body["output"]
        opened = len(os.listdir(f"/proc/{process.pid}/fd"))
        assert opened > IDLE_CONNECTIONS  # the idle connections really were accepted and held
    finally:
        for writer in idle:
            writer.close()
        process.kill()
        await process.wait()

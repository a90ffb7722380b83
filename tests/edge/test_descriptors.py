"""A real gateway process started with a descriptor limit of 1,024 (Docker's default soft
limit since version 25): 1,100 idle connections must not lock legitimate clients out,
whether the hard limit lets the gateway raise its own (first test) or not (second: the
connection gate of edge/connection_gate.py closes the oldest idle connections)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import resource
import sys
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.support.app import AUTH, TOKEN, RunningUpstream
from tests.support.gateway_process import probe_until
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.upstreams.gated import GatedOpenAI

IDLE_CONNECTIONS = 1100


def start_with_limit(soft: int, hard: int | None = None) -> Callable[[], None]:
    def limit() -> None:
        _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current_hard if hard is None else hard))

    return limit


def soft_limit_of(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no descriptor limit in /proc")


@pytest.mark.parametrize("hard", [None, 1024], ids=["hard limit higher", "hard limit 1024"])
async def test_idle_connections_past_a_1024_limit_do_not_lock_clients_out(
    ollama: RunningUpstream, hard: int | None,
) -> None:
    soft, own_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert own_hard == resource.RLIM_INFINITY or own_hard >= 4 * IDLE_CONNECTIONS, "the test needs a higher limit"
    if soft < 4 * IDLE_CONNECTIONS:  # this process holds the client ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (4 * IDLE_CONNECTIONS, own_hard))
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PROXY_PORT": str(port), "PROXY_API_TOKENS": TOKEN,
           "OLLAMA_BASE_URL": str(ollama.url), "PROXY_LOG_LEVEL": "ERROR"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", cwd=ROOT, env=env, preexec_fn=start_with_limit(1024, hard),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    idle: list[asyncio.StreamWriter] = []
    try:
        async with asyncio.timeout(30):
            assert await probe_until(f"http://127.0.0.1:{port}/readyz", lambda s: s is not None) == 200
        raised = soft_limit_of(process.pid)
        assert raised > 1024 if hard is None else raised == 1024
        for _ in range(IDLE_CONNECTIONS):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            idle.append(writer)
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{port}/api/v1/inference", headers=AUTH,
                json={"model_id": "gemma3:1b", "input_data": "What is 2+2?"}) as response:
            body = await response.json()
        assert response.status == 200, body
        assert body["output"]
        opened = len(os.listdir(f"/proc/{process.pid}/fd"))
        if hard is None:
            assert opened > IDLE_CONNECTIONS  # the idle connections really were accepted and held
        else:
            assert opened < 1024  # the oldest idle ones were closed to make room
        assert process.returncode is None
    finally:
        for writer in idle:
            writer.close()
        process.kill()
        await process.wait()


@pytest.mark.parametrize("body_bytes", [0, 512 * 1024], ids=["a small request", "a large body still being sent"])
async def test_past_the_gate_a_new_connection_gets_a_503_it_can_read(
    aiohttp_server: Callable[..., Awaitable[TestServer]], body_bytes: int,
) -> None:
    """Every connection busy (streams held open by the upstream) and the gate full: the next
    client is told so in a 503 it can read, on the event loop the gateway really runs. Also
    when it is still sending a large body, which the gate never reads: closing a socket with
    unread bytes makes the kernel reset the connection, and the answer must still be read."""
    upstream = GatedOpenAI()
    server = await aiohttp_server(upstream.app())
    port = free_port()
    # Upstream pools sized past the descriptor limit leave the gate its minimum: 64 client
    # connections and 8 of headroom (settings/descriptors.py, edge/connection_gate.py).
    env = {"PATH": os.environ["PATH"], "PROXY_PORT": str(port), "PROXY_API_TOKENS": TOKEN,
           "OLLAMA_BASE_URL": "off", "OPENAI_API_ENDPOINT": str(server.make_url("/v1")),
           "PROXY_UPSTREAM_MAX_IN_FLIGHT": "1024", "PROXY_LOG_LEVEL": "ERROR"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", cwd=ROOT, env=env, preexec_fn=start_with_limit(1024, 1024),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    try:
        async with asyncio.timeout(30):
            assert await probe_until(f"http://127.0.0.1:{port}/readyz", lambda s: s is not None) == 200
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=AUTH) as session:
            held = []
            for _ in range(64 + 8):
                response = await session.post(url, json=ask)
                assert response.status == 200
                await response.content.readline()  # its first token: the connection is busy
                held.append(response)
            for _ in range(5):  # each refused the same way, none reset
                refused_ask = {**ask, "user": "x" * body_bytes}
                async with session.post(url, json=refused_ask) as refused:
                    body = await refused.json()
                assert refused.status == 503 and refused.headers["Retry-After"] == "1"
                assert body == {"code": "overloaded", "message": "too many connections; retry shortly",
                                "retryable": True}
            for response in held:
                response.close()
        assert process.returncode is None
    finally:
        process.kill()
        await process.wait()

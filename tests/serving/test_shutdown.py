"""Graceful shutdown of the real process on SIGTERM: stop accepting, finish streams, cut the rest honestly."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.support.gateway_process import spawn
from tests.support.sse import events
from tests.support.upstreams.faults import FaultyOllama

TOKEN = "shutdown-test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[FaultyOllama, str]:
    faulty = FaultyOllama(trickle_tokens=10, trickle_delay=0.1)
    server = await aiohttp_server(faulty.app())
    return faulty, str(server.make_url(""))


async def start_gateway(ollama_url: str, grace: float) -> tuple[asyncio.subprocess.Process, str]:
    gateway = await spawn({"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": ollama_url,
                           "PROXY_SHUTDOWN_GRACE": str(grace), "LLM_BACKEND_TIMEOUT": "30"})
    await gateway.ready("/livez")
    return gateway.process, gateway.base


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=HEADERS) as client:
        yield client


async def test_sigterm_lets_a_running_stream_finish_and_refuses_new_connections(
    upstream: tuple[FaultyOllama, str], session: aiohttp.ClientSession,
) -> None:
    _, ollama_url = upstream
    process, base = await start_gateway(ollama_url, grace=10)
    response = await session.post(f"{base}/api/v1/inference/stream", json={"model_id": "trickle", "input_data": "hi"})
    first = await response.content.readuntil(b"\n\n")
    assert json.loads(first[len(b"data: "):])["token"] == " t0"

    process.send_signal(signal.SIGTERM)
    rest = events(await response.read())
    assert len(rest) == 10  # the other nine tokens and the final event
    assert rest[-1]["done"] is True
    assert "error" not in rest[-1]
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as fresh:
            await fresh.get(f"{base}/api/v1/health", headers=HEADERS)
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_a_second_sigterm_does_not_cut_the_drain_short(
    upstream: tuple[FaultyOllama, str], session: aiohttp.ClientSession,
) -> None:
    _, ollama_url = upstream
    process, base = await start_gateway(ollama_url, grace=10)
    response = await session.post(f"{base}/api/v1/inference/stream", json={"model_id": "trickle", "input_data": "hi"})
    await response.content.readuntil(b"\n\n")

    process.send_signal(signal.SIGTERM)
    while True:  # the first SIGTERM has been acted on once the port refuses connections
        try:
            async with aiohttp.ClientSession() as fresh:
                await fresh.get(f"{base}/livez")
        except aiohttp.ClientConnectionError:
            break
    process.send_signal(signal.SIGTERM)  # as a service manager signalling the process group would
    rest = events(await response.read())
    assert len(rest) == 10
    assert rest[-1]["done"] is True and "error" not in rest[-1]
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def test_a_stream_still_running_after_the_grace_period_ends_with_an_error_event(
    upstream: tuple[FaultyOllama, str], session: aiohttp.ClientSession,
) -> None:
    faulty, ollama_url = upstream
    process, base = await start_gateway(ollama_url, grace=0.3)
    response = await session.post(
        f"{base}/api/v1/inference/stream", json={"model_id": "hang-after-2", "input_data": "hi"})
    await response.content.readuntil(b"\n\n")

    process.send_signal(signal.SIGTERM)
    body = events(await response.read())
    assert body[-1]["done"] is True
    assert body[-1]["error"]["code"] == "shutting_down"
    assert await asyncio.wait_for(process.wait(), 30) == 0
    [chat] = [r for r in await faulty.recorder.settled() if r.path == "/api/chat"]
    assert chat.cancelled  # the upstream call was closed, not abandoned


async def test_a_stream_whose_first_token_comes_during_shutdown_is_still_ended_honestly(
    upstream: tuple[FaultyOllama, str], session: aiohttp.ClientSession,
) -> None:
    faulty, ollama_url = upstream
    faulty.trickle_delay = 0.5  # the first token comes only after the shutdown has begun
    process, base = await start_gateway(ollama_url, grace=1)
    request = asyncio.create_task(session.post(
        f"{base}/api/v1/inference/stream", json={"model_id": "late-hang-after-2", "input_data": "hi"}))
    await faulty.recorder.wait_until(lambda seen: any(r.path == "/api/chat" for r in seen))
    process.send_signal(signal.SIGTERM)
    response = await request
    body = events(await response.read())
    assert [e["token"] for e in body[:-1]] == ["one", " two"]
    assert body[-1]["done"] is True
    assert body[-1]["error"]["code"] == "shutting_down"
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def start_workers(ollama_url: str) -> tuple[asyncio.subprocess.Process, str]:
    gateway = await spawn({"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": ollama_url, "PROXY_WORKERS": "2"})
    await gateway.ready("/livez")
    return gateway.process, gateway.base


def children(pid: int) -> list[int]:
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    status = pathlib.Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


async def test_workers_share_the_port_and_stop_together_on_sigterm(
    upstream: tuple[FaultyOllama, str], session: aiohttp.ClientSession,
) -> None:
    _, ollama_url = upstream
    process, base = await start_workers(ollama_url)
    workers = children(process.pid)
    assert len(workers) == 2
    for _ in range(4):
        response = await session.post(f"{base}/api/v1/inference", json={"model_id": "ok", "input_data": "hi"})
        assert response.status == 200
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert not any(running(pid) for pid in workers)


async def test_a_worker_that_dies_takes_the_gateway_down_so_it_is_restarted(
    upstream: tuple[FaultyOllama, str],
) -> None:
    _, ollama_url = upstream
    process, _ = await start_workers(ollama_url)
    first, second = children(process.pid)
    os.kill(first, signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), 30) == 1
    await asyncio.sleep(0.1)
    assert not running(second)

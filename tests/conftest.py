"""Fixtures: the real app over HTTP, in front of upstream test servers over HTTP.

What they are built from lives in tests/support/; test modules import from there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from proxy.app import create_app
from proxy.settings.config import Settings
from tests.support.app import AUTH, TOKEN, GatewayFactory, RunningUpstream
from tests.support.ports import refused_url
from tests.support.redis_server import RedisServer
from tests.support.upstreams.ollama import ollama_app
from tests.support.upstreams.openai import OpenAIUpstream
from tests.support.upstreams.recorder import Recorder


@pytest.fixture
async def ollama(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> RunningUpstream:
    recorder = Recorder()
    server = await aiohttp_server(ollama_app(recorder))
    return RunningUpstream(url=server.make_url(""), recorder=recorder)


@pytest.fixture
def openai_fake() -> OpenAIUpstream:
    """The OpenAI test server's behaviour, adjustable by a test before it starts."""
    return OpenAIUpstream()


@pytest.fixture
async def openai(aiohttp_server: Callable[..., Awaitable[TestServer]], openai_fake: OpenAIUpstream) -> RunningUpstream:
    server = await aiohttp_server(openai_fake.app())
    return RunningUpstream(url=server.make_url("/v1"), recorder=openai_fake.recorder)


@pytest.fixture
def dead_url() -> URL:
    """A loopback URL where nothing listens: connections are refused at once."""
    return refused_url()


@pytest.fixture
def make_gateway(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> GatewayFactory:
    """A gateway client; settings default to auth on, no backends, overridden per test."""

    async def make(*, headers: dict[str, str] | None = None, **overrides: Any) -> TestClient:
        values: dict[str, Any] = {"api_tokens": (TOKEN,), "ollama_base_url": None, "openai_endpoint": None}
        values.update(overrides)
        settings = Settings(**values)
        return await aiohttp_client(create_app(settings), headers=AUTH if headers is None else headers)

    return make


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream) -> TestClient:
    """Ollama (replayed real traffic) first, the OpenAI test server as the fallback."""
    return await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url)


@pytest.fixture
async def redis_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisServer]:
    """A real redis-server on a free loopback port, no persistence; killed after the test."""
    server = RedisServer(directory=tmp_path_factory.mktemp("redis"))
    await server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.returncode is None:
            server.thaw()  # a frozen server must run again to die by SIGKILL cleanly
        await server.kill()

"""GET /livez and /readyz: unauthenticated, answered without calling upstreams, saying nothing secret."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.gateway_process import probe, probe_until, running_gateway
from tests.support.resilience import ask
from tests.support.sse import events, next_block
from tests.support.upstreams.faults import FaultyOllama
from tests.support.upstreams.gated import GatedOpenAI

INFER = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"


@pytest.fixture
async def faulty_ollama(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> RunningUpstream:
    faulty = FaultyOllama()
    server = await aiohttp_server(faulty.app())
    return RunningUpstream(url=server.make_url(""), recorder=faulty.recorder)


async def test_probes_answer_without_a_token_and_without_calling_any_upstream(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={}, ollama_base_url=ollama.url, openai_endpoint=openai.url,
                                 openai_api_key="sk-probe-secret")
    assert (await gateway.get("/api/v1/health")).status == 401  # auth is on

    live = await gateway.get("/livez")
    assert live.status == 200
    assert await live.json() == {"status": "ok"}
    ready = await gateway.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "ready", "backends": {"total": 2, "cooling_down": 0}}
    assert (await gateway.head("/readyz")).status == 200  # some load balancers probe with HEAD
    assert ollama.recorder.requests == [] and openai.recorder.requests == []


async def test_probe_bodies_name_no_backend_url_or_key(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={}, ollama_base_url=ollama.url, openai_endpoint=openai.url,
                                 openai_api_key="sk-probe-secret")
    for path in ("/livez", "/readyz"):
        body = await (await gateway.get(path)).text()
        for secret in ("sk-probe-secret", str(ollama.url.port), str(openai.url.port), "127.0.0.1", "ollama", "openai"):
            assert secret not in body, (path, secret)


async def test_readiness_fails_while_every_backends_breaker_is_open_and_returns_after_the_cooldown(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, breaker_failures=1, breaker_cooldown=0.2)
    # Both test servers answer "status-500" with a 500: one request opens both breakers.
    assert (await gateway.post(INFER, json=ask("status-500"))).status == 503
    ready = await gateway.get("/readyz", headers={})
    assert ready.status == 503
    assert await ready.json() == {"status": "unavailable", "backends": {"total": 2, "cooling_down": 2}}
    assert (await gateway.get("/livez", headers={})).status == 200  # alive: restarting would not help

    await asyncio.sleep(0.3)  # past the cooldown: each breaker lets a trial through, no traffic needed
    ready = await gateway.get("/readyz", headers={})
    assert ready.status == 200
    assert (await ready.json())["backends"] == {"total": 2, "cooling_down": 0}


async def test_one_backend_cooling_down_leaves_the_gateway_ready(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, breaker_failures=1, breaker_cooldown=60)
    assert (await gateway.post(INFER, json=ask("status-429"))).status == 200  # Ollama fails, the fallback serves
    ready = await gateway.get("/readyz", headers={})
    assert ready.status == 200
    assert (await ready.json())["backends"] == {"total": 2, "cooling_down": 1}


async def test_both_probes_say_503_while_the_app_drains_its_streams(
    make_gateway: GatewayFactory, aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    upstream = GatedOpenAI()
    server = await aiohttp_server(upstream.app())
    gateway: TestClient = await make_gateway(openai_endpoint=server.make_url("/v1"), shutdown_grace=30)
    response = await gateway.post(STREAM, json={"model_id": "gated", "input_data": "hi"})
    assert (await next_block(response)).startswith(b'data: {"token":" t0"')

    # What SIGTERM does to the app (on_shutdown drains the streams), while this stream is held.
    shutdown = asyncio.create_task(gateway.app.shutdown())
    await asyncio.sleep(0)  # let the drain begin
    live, ready = await gateway.get("/livez", headers={}), await gateway.get("/readyz", headers={})
    assert (live.status, await live.json()) == (503, {"status": "shutting_down"})
    assert ready.status == 503
    assert (await ready.json())["status"] == "shutting_down"

    for _ in upstream.tokens[1:]:
        upstream.next_token()
    assert events(await response.read())[-1]["done"] is True
    await shutdown


async def test_the_real_process_stops_answering_probes_on_sigterm_while_a_stream_finishes(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """kubelet and load balancers see the replica go unready at once (its port refuses
    connections), while the stream already running is served to its end."""
    upstream = GatedOpenAI()
    server = await aiohttp_server(upstream.app())
    env = {"PROXY_API_TOKENS": "probe-test-token", "OLLAMA_BASE_URL": "off",
           "OPENAI_API_ENDPOINT": str(server.make_url("/v1")), "PROXY_SHUTDOWN_GRACE": "30"}
    async with (running_gateway(env) as gateway, asyncio.timeout(30),
                aiohttp.ClientSession(headers={"Authorization": "Bearer probe-test-token"}) as client):
        response = await client.post(f"{gateway.base}{STREAM}", json={"model_id": "gated", "input_data": "hi"})
        assert (await next_block(response)).startswith(b'data: {"token":" t0"')

        gateway.process.send_signal(signal.SIGTERM)
        await probe_until(f"{gateway.base}/readyz", lambda status: status is None)
        assert await probe(f"{gateway.base}/livez") is None

        for _ in upstream.tokens[1:]:  # released only now: the process was still serving the stream
            upstream.next_token()
        rest = events(await response.read())
        assert [e["token"] for e in rest[:-1]] == upstream.tokens[1:]
        assert rest[-1]["done"] is True and "error" not in rest[-1]
        assert await gateway.process.wait() == 0

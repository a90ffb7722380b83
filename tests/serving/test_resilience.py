"""Health-aware routing, balancing across upstreams, overload, and stale pooled connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.resilience import ask, assert_nothing_in_flight
from tests.support.sse import events, next_block
from tests.support.upstreams.faults import FaultyOllama

INFER = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"


async def start_faulty(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> RunningUpstream:
    faulty = FaultyOllama()
    server = await aiohttp_server(faulty.app())
    return RunningUpstream(url=server.make_url(""), recorder=faulty.recorder)


@pytest.fixture
async def faulty_ollama(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> RunningUpstream:
    return await start_faulty(aiohttp_server)


async def backend_states(gateway: TestClient) -> dict[str, str]:
    body = await (await gateway.get("/api/v1/health")).json()
    return {b["name"]: b["state"] for b in body["backends"]}


# --- breaker -------------------------------------------------------------------------------


async def test_repeated_failures_open_the_breaker_and_the_backend_is_skipped(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, breaker_failures=2, breaker_cooldown=60)
    for _ in range(2):
        assert (await gateway.post(INFER, json=ask("status-429"))).status == 200  # served by the fallback
    assert (await backend_states(gateway))["ollama"] == "open"
    seen_before = len(faulty_ollama.recorder.requests)

    response = await gateway.post(INFER, json=ask("ok"))
    assert (await response.json())["provider"] == "openai"
    assert len(faulty_ollama.recorder.requests) == seen_before  # not even tried


async def test_after_the_cooldown_one_trial_request_closes_the_breaker(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, breaker_failures=1, breaker_cooldown=0.05)
    await gateway.post(INFER, json=ask("status-429"))
    await asyncio.sleep(0.1)  # past the cooldown
    assert (await backend_states(gateway))["ollama"] == "half_open"

    response = await gateway.post(INFER, json=ask("ok"))
    assert (await response.json())["provider"] == "ollama"
    assert (await backend_states(gateway))["ollama"] == "closed"


async def test_a_failed_trial_opens_the_breaker_again(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, breaker_failures=3, breaker_cooldown=0.05)
    for _ in range(3):
        await gateway.post(INFER, json=ask("status-429"))
    await asyncio.sleep(0.1)
    await gateway.post(INFER, json=ask("status-429"))  # the one trial, failing
    assert (await backend_states(gateway))["ollama"] == "open"


async def test_when_every_backend_is_cooling_down_requests_still_try_them(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, breaker_failures=1, breaker_cooldown=60)
    # Both test servers answer "status-500" with a 500: one request opens both breakers.
    assert (await gateway.post(INFER, json=ask("status-500"))).status == 503
    assert set((await backend_states(gateway)).values()) == {"open"}

    response = await gateway.post(INFER, json=ask("ok"))
    assert response.status == 200  # not refused at once: the resting backends were still tried


async def test_missing_model_and_bad_requests_do_not_count_against_a_backend(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, breaker_failures=1)
    assert (await gateway.post(INFER, json=ask("missing-model"))).status == 404
    assert (await gateway.post(INFER, json=ask("context-overflow"))).status == 413
    assert (await backend_states(gateway))["ollama"] == "closed"


# --- several upstreams of one kind -----------------------------------------------------------


async def test_streams_spread_over_several_ollama_servers_by_load(
    make_gateway: GatewayFactory, aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    first, second = await start_faulty(aiohttp_server), await start_faulty(aiohttp_server)
    gateway = await make_gateway(ollama_base_url=[first.url, second.url], backend_timeout=60)
    responses = [await gateway.post(STREAM, json=ask("hang-after-2")) for _ in range(4)]
    for response in responses:
        assert (await next_block(response)).startswith(b'data: {"token":"one"')
    # Each new stream went to the server with fewer streams open at that moment.
    assert len(first.recorder.requests) == len(second.recorder.requests) == 2
    body = await (await gateway.get("/api/v1/health")).json()
    assert {b["name"]: b["in_flight"] for b in body["backends"]} == {"ollama-1": 2, "ollama-2": 2}
    for response in responses:
        response.close()
    await assert_nothing_in_flight(gateway)


async def test_each_upstream_has_its_own_health(
    make_gateway: GatewayFactory, ollama: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=[dead_url, ollama.url], breaker_failures=1)
    for _ in range(3):
        response = await gateway.post(INFER, json=ask("gemma3:1b"))
        assert response.status == 200
    body = await (await gateway.get("/api/v1/health")).json()
    states = {b["name"]: (b["healthy"], b["state"]) for b in body["backends"]}
    assert states == {"ollama-1": (False, "open"), "ollama-2": (True, "closed")}


# --- overload --------------------------------------------------------------------------------


async def test_beyond_the_in_flight_limit_a_short_wait_then_503_with_retry_after(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, backend_timeout=60, max_in_flight=2, queue_timeout=0.05)
    held = [await gateway.post(STREAM, json=ask("hang-after-2")) for _ in range(2)]
    for response in held:
        await next_block(response)

    refused = await gateway.post(STREAM, json=ask("ok"))
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    body = await refused.json()
    assert body["code"] == "overloaded"
    assert body["retryable"] is True
    assert len(faulty_ollama.recorder.requests) == 2  # the refused request reached no upstream

    held[0].close()  # a slot frees up: the next request is served
    await faulty_ollama.recorder.wait_until(lambda seen: seen[0].finished)
    assert (await gateway.post(INFER, json=ask("ok"))).status == 200
    held[1].close()
    await assert_nothing_in_flight(gateway)


async def test_an_upstream_at_its_limit_passes_requests_to_the_next(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, backend_timeout=60, upstream_max_in_flight=1)
    held = await gateway.post(STREAM, json=ask("hang-after-2"))
    await next_block(held)
    response = await gateway.post(STREAM, json=ask("ok"))
    assert {e["provider"] for e in events(await response.read())} == {"openai"}
    held.close()
    await assert_nothing_in_flight(gateway)


async def test_every_upstream_at_its_limit_is_503_with_retry_after(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, backend_timeout=60, upstream_max_in_flight=1, queue_timeout=0.05)
    held = await gateway.post(STREAM, json=ask("hang-after-2"))
    await next_block(held)
    response = await gateway.post(INFER, json=ask("ok"))
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["code"] == "overloaded"
    held.close()


# --- stale pooled connections -----------------------------------------------------------------


class ClosesReusedConnections:
    """A raw HTTP/1.1 upstream that answers the first request on a connection with keep-alive
    and then closes that connection as the next request arrives, without answering it: what
    an upstream whose idle timeout just fired does to a client's pooled connection. Every
    request gets the same one-line chat answer (Ollama's /api/ps too, which then lists no
    model); `answered` counts the chat requests answered."""

    def __init__(self) -> None:
        self.connections = 0
        self.answered = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for _ in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                headers = head.lower().split(b"\r\n")
                lengths = [int(h.split(b":")[1]) for h in headers if h.startswith(b"content-length")]
                length = lengths[0] if lengths else 0
                await reader.readexactly(length)
                if self.answered_on_this_connection(writer):
                    break  # a reused connection: drop it unanswered
                body = b'{"model":"m","message":{"role":"assistant","content":"fresh"},"done":true}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
                if head.startswith(b"POST /api/chat "):
                    self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def answered_on_this_connection(self, writer: asyncio.StreamWriter) -> bool:
        seen = getattr(writer, "_answered", False)
        writer._answered = True  # type: ignore[attr-defined]
        return seen


async def test_a_request_on_a_stale_pooled_connection_is_retried_once_on_a_fresh_one(
    make_gateway: GatewayFactory,
) -> None:
    upstream = ClosesReusedConnections()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gateway = await make_gateway(ollama_base_url=URL(f"http://127.0.0.1:{port}"), upstream_keepalive=60)
        for _ in range(3):
            response = await gateway.post(INFER, json=ask("m"))
            assert response.status == 200
            assert (await response.json())["output"] == "fresh"
        assert upstream.answered == 3
        assert upstream.connections >= 3  # the retries went out on connections of their own
    finally:
        server.close()
        await server.wait_closed()


async def test_a_request_waits_briefly_for_an_upstream_slot_to_free(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(
        ollama_base_url=faulty_ollama.url, backend_timeout=60, upstream_max_in_flight=1, queue_timeout=30)
    held = await gateway.post(STREAM, json=ask("hang-after-2"))
    await next_block(held)
    waiting = asyncio.create_task(gateway.post(INFER, json=ask("ok")))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # queued behind the held stream, not refused
    held.close()
    response = await waiting
    assert response.status == 200
    assert (await response.json())["output"] == "all good"
    await assert_nothing_in_flight(gateway)

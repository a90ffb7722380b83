"""deploy/nginx.conf in a real nginx (Debian's /usr/sbin/nginx) in front of the real gateway process.

The shipped file is used as it is, with only its ports and log path substituted, inside a
minimal main configuration that keeps everything nginx writes in the test's directory.
Streams are checked with an upstream that sends each token only once the client has
received the previous one: a buffering nginx would leave the client waiting for a token
the upstream never sends, so the test would hang (and fail), never pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import pathlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from attrs import frozen

from proxy.settings.config import Settings
from tests.support.gateway_process import running_gateway
from tests.support.nginx_server import running_nginx, shipped_with
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.sse import events, next_block
from tests.support.upstreams.gated import GatedOpenAI

SHIPPED = ROOT / "deploy" / "nginx.conf"
TOKEN = "nginx-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STREAM = "/api/v1/inference/stream"
INFER = "/api/v1/inference"
# Makes nginx disregard the gateway's `X-Accel-Buffering: no`, so that only the shipped
# file can be what turns buffering off.
IGNORE_ACCEL_BUFFERING = "proxy_ignore_headers X-Accel-Buffering;"
# What a surrounding http{} may well say; compressing holds events back until a block fills.
COMPRESS_EVENT_STREAMS = "gzip on; gzip_types text/event-stream application/json; gzip_min_length 0;"
HOSTILE = f"{IGNORE_ACCEL_BUFFERING} {COMPRESS_EVENT_STREAMS}"

def render_site(gateway_port: int, listen_port: int, access_log: pathlib.Path) -> str:
    """The shipped file with its ports and log path replaced, each exactly once."""
    return shipped_with(SHIPPED, {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{gateway_port};",
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "/var/log/nginx/octomil-gateway.access.log": str(access_log),
    })


@frozen
class Nginx:
    url: str
    access_log: pathlib.Path


@asynccontextmanager
async def nginx_in_front(directory: pathlib.Path, gateway_port: int, http_extra: str = "") -> AsyncIterator[Nginx]:
    port = free_port()
    access_log = directory / "access.log"
    async with running_nginx(directory, render_site(gateway_port, port, access_log), port, http_extra):
        yield Nginx(url=f"http://127.0.0.1:{port}", access_log=access_log)


@frozen
class Stack:
    nginx: Nginx
    gateway_port: int
    upstream: GatedOpenAI


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(
    aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: pathlib.Path,
) -> AsyncIterator[StackFactory]:
    """nginx (the shipped file) -> the gateway process -> a gated OpenAI-wire upstream."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(http_extra: str = "") -> Stack:
            upstream = GatedOpenAI()
            server = await aiohttp_server(upstream.app())
            env = {"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": "off",
                   "OPENAI_API_ENDPOINT": str(server.make_url("/v1"))}
            gateway = await stack.enter_async_context(running_gateway(env))
            nginx = await stack.enter_async_context(nginx_in_front(tmp_path, gateway.port, http_extra))
            return Stack(nginx=nginx, gateway_port=gateway.port, upstream=upstream)

        yield make


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def token_of(block: bytes) -> str:
    assert block.startswith(b"data: "), block
    event = json.loads(block[len(b"data: "):])
    assert event["done"] is False, event
    return str(event["token"])


@pytest.mark.parametrize(
    "http_extra", ["", IGNORE_ACCEL_BUFFERING, HOSTILE],
    ids=["as-shipped", "without-x-accel-buffering", "gzip-on-and-no-x-accel-buffering"])
async def test_tokens_arrive_through_nginx_one_by_one(
    make_stack: StackFactory, client: aiohttp.ClientSession, http_extra: str,
) -> None:
    stack = await make_stack(http_extra)
    response = await client.post(f"{stack.nginx.url}{STREAM}", json={"model_id": "gated", "input_data": "hi"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    for i, expected in enumerate(stack.upstream.tokens):
        block = await next_block(response)
        while block.startswith(b":"):  # a heartbeat, if one falls in
            block = await next_block(response)
        assert token_of(block) == expected
        if i + 1 < len(stack.upstream.tokens):
            stack.upstream.next_token()  # the upstream sends the next token only now
    final = events(await response.read())
    assert final[-1]["done"] is True and "error" not in final[-1]


async def test_openai_chunks_arrive_through_nginx_one_by_one(
    make_stack: StackFactory, client: aiohttp.ClientSession,
) -> None:
    """/v1/chat/completions with `stream: true` shares the stream location's settings."""
    stack = await make_stack(HOSTILE)
    response = await client.post(f"{stack.nginx.url}/v1/chat/completions", json={
        "model": "gated", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status == 200
    remaining = list(stack.upstream.tokens)
    while remaining:
        block = await next_block(response)
        if block.startswith(b":"):
            continue
        assert block.startswith(b"data: {"), block
        content = json.loads(block[len(b"data: "):])["choices"][0]["delta"].get("content")
        if content:  # the first chunk may carry only the role
            assert content == remaining.pop(0)
            if remaining:
                stack.upstream.next_token()
    assert (await response.read()).endswith(b"data: [DONE]\n\n")


async def test_a_json_request_and_the_gateways_headers_pass_through(
    make_stack: StackFactory, client: aiohttp.ClientSession,
) -> None:
    stack = await make_stack()
    stack.upstream.ungate()
    response = await client.post(f"{stack.nginx.url}{INFER}", json={"model_id": "gated", "input_data": "hi"},
                                 headers={"X-Request-ID": "client-chosen-id-1"})
    assert response.status == 200
    body = await response.json()
    assert (body["output"], body["provider"]) == ("".join(stack.upstream.tokens), "openai")
    assert response.headers["X-Request-ID"] == "client-chosen-id-1"
    assert re.fullmatch(r"total;dur=[0-9.]+", response.headers["Server-Timing"])

    refused = await client.post(f"{stack.nginx.url}{INFER}", json={}, headers={"Authorization": "Bearer wrong"})
    assert refused.status == 401  # the gateway's own error, untouched
    assert (await refused.json())["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


async def test_without_a_client_request_id_nginx_and_the_gateway_share_nginxs(
    make_stack: StackFactory, client: aiohttp.ClientSession,
) -> None:
    stack = await make_stack()
    response = await client.get(f"{stack.nginx.url}/readyz")
    assert response.status == 200
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, adopted by the gateway
    await _wait_for_line(stack.nginx.access_log, f"request_id={request_id}")
    log = stack.nginx.access_log.read_text()
    assert '"GET /readyz" 200' in log
    assert TOKEN not in log


async def _wait_for_line(path: pathlib.Path, needle: str) -> None:
    """nginx writes its access log line as the request ends, just after the response."""
    async with asyncio.timeout(10):
        while True:
            if _contains(path, needle):
                return
            await asyncio.sleep(0.02)


def _contains(path: pathlib.Path, needle: str) -> bool:
    return path.exists() and needle in path.read_text()


def established_to(port: int) -> set[int]:
    """Local ports of the ESTABLISHED TCP connections to 127.0.0.1:`port` on this host."""
    ports = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        _, local, remote, state, *_ = line.split()
        if state == "01" and remote == f"0100007F:{port:04X}":
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


async def test_nginx_keeps_one_connection_to_the_gateway_alive_and_reuses_it(
    make_stack: StackFactory, client: aiohttp.ClientSession,
) -> None:
    stack = await make_stack()
    stack.upstream.ungate()
    seen = []
    for _ in range(3):
        response = await client.post(f"{stack.nginx.url}{INFER}", json={"model_id": "gated", "input_data": "hi"})
        assert response.status == 200
        await response.read()
        seen.append(established_to(stack.gateway_port))
    # Without keep-alive each request would open (and close) a connection of its own.
    assert len(seen[0]) == 1
    assert seen[0] == seen[1] == seen[2]


async def test_a_body_over_the_gateways_limit_is_refused_by_nginx_as_json(
    make_stack: StackFactory, client: aiohttp.ClientSession,
) -> None:
    stack = await make_stack()
    limit = Settings(api_tokens=(TOKEN,)).max_body_bytes
    head, tail = b'{"model_id": "gated", "unknown": "', b'"}'
    at_limit = head + b"x" * (limit - len(head) - len(tail)) + tail
    passed = await client.post(f"{stack.nginx.url}{INFER}", data=io.BytesIO(at_limit),
                               headers={"Content-Type": "application/json"})
    assert passed.status == 400  # reached the gateway, which read it and named the problem
    assert "Server-Timing" in passed.headers

    refused = await client.post(f"{stack.nginx.url}{INFER}", data=io.BytesIO(at_limit + b" "),
                                headers={"Content-Type": "application/json", "X-Request-ID": "too-big-1"})
    assert refused.status == 413
    assert "Server-Timing" not in refused.headers  # nginx answered; the gateway never saw it
    assert await refused.json() == {
        "code": "payload_too_large", "retryable": False, "request_id": "too-big-1",
        "message": "request body larger than nginx allows (client_max_body_size)"}


async def test_a_client_hanging_up_at_nginx_cancels_the_upstream_call(
    make_stack: StackFactory, client: aiohttp.ClientSession,
) -> None:
    stack = await make_stack()
    response = await client.post(f"{stack.nginx.url}{STREAM}", json={"model_id": "gated", "input_data": "hi"})
    assert token_of(await next_block(response)) == stack.upstream.tokens[0]
    response.close()  # hang up mid-stream; the upstream is holding its next token
    [chat] = await stack.upstream.recorder.settled()
    assert chat.cancelled


async def test_nginx_answers_json_when_the_gateway_is_down(
    tmp_path: pathlib.Path, client: aiohttp.ClientSession,
) -> None:
    async with nginx_in_front(tmp_path, gateway_port=free_port()) as nginx:
        response = await client.get(f"{nginx.url}/api/v1/health")
        assert response.status == 502
        body = await response.json()
        assert (body["code"], body["retryable"]) == ("upstream_unavailable", True)
        assert body["request_id"] == response.headers["X-Request-ID"]
        metrics = await client.get(f"{nginx.url}/metrics")
        assert metrics.status == 404  # not exposed on the public side
        assert (await metrics.json())["code"] == "not_found"

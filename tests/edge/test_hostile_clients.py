"""Hostile clients: what each gets, what reached the upstream (nothing, for every refusal),
and, for the attacks on resources, the gateway's memory (tracemalloc, in this process
where the gateway runs) and whether /livez still answers while the attack runs. How long
/livez took is recorded by bench/hostile.py; here it only has to answer.
"""

from __future__ import annotations

import asyncio
import gzip
import pathlib
import tracemalloc
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.tenant_keys import bearer, write_keys

INFER = "/api/v1/inference"
GOOD = {"model_id": "gemma3:1b", "input_data": "What is 2+2?"}
MIB = 1 << 20


def zip_bomb(mib: int) -> bytes:
    """A JSON-looking body of `mib` MiB, gzip-compressed (about 1 KB per MiB)."""
    return gzip.compress(b'{"model_id": "gemma3:1b", "input_data": "' + b" " * (mib * MIB) + b'"}', 9)


async def livez(gateway: TestClient) -> int:
    async with asyncio.timeout(10):  # a gateway stalled for good fails the test, not hangs it
        return (await gateway.get("/livez")).status


async def raw_request(gateway: TestClient, head: bytes, body_parts: list[bytes], pause: float) -> bytes:
    """Send `head`, then each body part `pause` seconds apart, on a connection of its own;
    the whole answer (status line, headers and body) as the gateway sent it."""
    assert gateway.server.host is not None and gateway.server.port is not None
    reader, writer = await asyncio.open_connection(gateway.server.host, gateway.server.port)
    try:
        writer.write(head)
        for part in body_parts:
            await asyncio.sleep(pause)
            if reader.at_eof():
                break
            writer.write(part)
        async with asyncio.timeout(20):
            return await reader.read(65536)
    finally:
        writer.close()


def head_of(path: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {length}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_and_json(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)


# --- compressed request bodies -----------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["no token", "valid token"])
async def test_a_compressed_body_is_refused_415_and_never_inflated(
    make_gateway: GatewayFactory, ollama: RunningUpstream, headers: dict[str, str],
) -> None:
    gateway = await make_gateway(headers=headers, ollama_base_url=ollama.url)
    bomb = zip_bomb(200)  # 200 KB that would be 200 MB
    tracemalloc.start()
    try:
        attack = [asyncio.ensure_future(gateway.post(INFER, data=bomb, headers={
            "Content-Encoding": "gzip", "Content-Type": "application/json"})) for _ in range(8)]
        alive = await livez(gateway)
        responses = await asyncio.gather(*attack)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert alive == 200
    for response in responses:
        body = await response.json()
        assert response.status == 415
        assert body["code"] == "unsupported_media_type"
        assert "Content-Encoding: gzip" in body["message"]
    assert ollama.recorder.requests == []
    assert peak < 32 * MIB, peak  # eight bodies of 200 KB each, never 200 MB


# --- trickled bodies ---------------------------------------------------------------------------


@pytest.fixture
def keys_file(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_keys(tmp_path / "keys.toml", {"slow": {"concurrent_requests": 1}, "victim": {}})


async def test_trickled_bodies_of_a_key_limited_to_one_request_hold_one_slot_not_all(
    make_gateway: GatewayFactory, ollama: RunningUpstream, keys_file: pathlib.Path,
) -> None:
    gateway = await make_gateway(headers={}, api_tokens=(), keys_file=str(keys_file), ollama_base_url=ollama.url,
                                 max_in_flight=4, queue_timeout=0.2, body_timeout=1.0)
    body = orjson.dumps(GOOD)
    head = head_of(INFER, len(body), bearer("slow"))
    parts = [body[i:i + 4] for i in range(0, len(body), 4)]
    attackers = [asyncio.ensure_future(raw_request(gateway, head, parts, pause=0.1)) for _ in range(8)]
    await asyncio.sleep(0.3)
    victim = await gateway.post(INFER, json=GOOD, headers=bearer("victim"))
    victim_body = await victim.json()
    alive = await livez(gateway)
    answers = [status_and_json(answer) for answer in await asyncio.gather(*attackers)]
    assert victim.status == 200, victim_body
    assert victim_body["output"]
    assert alive == 200
    statuses = sorted(status for status, _ in answers)
    # One trickle is admitted and runs out of time; the other seven are refused at once.
    assert statuses == [408] + [429] * 7
    for status, answer in answers:
        if status == 429:
            assert answer["limit"] == "concurrent_requests"
            assert "concurrent_requests limit (1)" in answer["message"]
        else:
            assert answer["code"] == "body_timeout"
            assert "PROXY_BODY_TIMEOUT" in answer["message"]
    # Only the victim's request reached the upstream.
    assert [r.json["messages"][-1]["content"] for r in ollama.recorder.requests] == [GOOD["input_data"]]


async def test_a_body_that_does_not_arrive_in_time_is_408_and_frees_the_slot(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, max_in_flight=1, queue_timeout=0.1, body_timeout=0.3)
    body = orjson.dumps(GOOD)
    answer = await raw_request(gateway, head_of(INFER, len(body), AUTH), [body[:5]], pause=0)
    status, error = status_and_json(answer)
    assert status == 408
    assert error["code"] == "body_timeout"
    assert "0.3 s" in error["message"]
    follow_up = await gateway.post(INFER, json=GOOD)  # the only slot is free again
    assert follow_up.status == 200
    assert len(ollama.recorder.requests) == 1


# --- headers -----------------------------------------------------------------------------------


async def test_two_authorization_headers_are_refused(make_gateway: GatewayFactory, ollama: RunningUpstream) -> None:
    gateway = await make_gateway(headers={}, ollama_base_url=ollama.url)
    body = orjson.dumps(GOOD)
    head = head_of(INFER, len(body), {}).replace(
        b"\r\n\r\n", b"\r\nAuthorization: Bearer wrong\r\n" + f"Authorization: {AUTH['Authorization']}".encode()
        + b"\r\n\r\n")
    status, error = status_and_json(await raw_request(gateway, head, [body], pause=0))
    assert status == 400
    assert error["code"] == "invalid_input"
    assert "more than one Authorization header" in error["message"]
    assert ollama.recorder.requests == []


async def test_with_auth_off_a_cross_origin_simple_request_is_refused(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={}, api_tokens=(), auth_disabled=True, ollama_base_url=ollama.url)
    # What a page elsewhere can make a browser send without a preflight: no JSON content type.
    response = await gateway.post(INFER, data=orjson.dumps(GOOD), headers={
        "Origin": "https://evil.example", "Content-Type": "text/plain"})
    body = await response.json()
    assert response.status == 403
    assert body["code"] == "forbidden"
    assert "https://evil.example" in body["message"]
    assert ollama.recorder.requests == []
    # The gateway's own pages (the playground) are same-origin and pass.
    own = f"http://{gateway.server.host}:{gateway.server.port}"
    same = await gateway.post(INFER, json=GOOD, headers={"Origin": own})
    assert same.status == 200
    assert (await same.json())["output"]


@pytest.mark.parametrize(("host", "allowed", "status"), [
    ("evil.example", (), 403),
    ("evil.example:8000", (), 403),
    ("localhost:8000", (), 200),
    ("[::1]:8000", (), 200),
    ("gateway.internal", ("gateway.internal",), 200),
])
async def test_with_auth_off_on_loopback_a_foreign_host_is_refused_against_dns_rebinding(
    make_gateway: GatewayFactory, ollama: RunningUpstream, host: str, allowed: tuple[str, ...], status: int,
) -> None:
    gateway = await make_gateway(headers={}, api_tokens=(), auth_disabled=True, ollama_base_url=ollama.url,
                                 allowed_hosts=allowed)
    response = await gateway.post(INFER, json=GOOD, headers={"Host": host})
    body = await response.json()
    assert response.status == status, body
    if status == 403:
        assert body["code"] == "forbidden"
        assert "PROXY_ALLOWED_HOSTS" in body["message"]
        assert ollama.recorder.requests == []
    else:
        assert body["output"]


async def test_with_auth_on_the_host_is_not_checked(make_gateway: GatewayFactory, ollama: RunningUpstream) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url)  # e.g. behind nginx, which passes its own Host
    response = await gateway.post(INFER, json=GOOD, headers={"Host": "api.example.com"})
    assert response.status == 200
    assert (await response.json())["output"]

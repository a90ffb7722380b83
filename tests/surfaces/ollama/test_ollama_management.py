"""Model management through the gateway: admin keys only, relayed to the Ollama server as it
is, a pull's progress streamed line by line; anyone else gets a 403 with nothing forwarded."""

from __future__ import annotations

import asyncio
import hashlib
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable

import ollama
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.app import GatewayFactory
from tests.support.tenant_keys import ADMIN, bearer, write_keys
from tests.support.upstreams.ollama import ollama_app
from tests.support.upstreams.ollama_docs import PULL_LINES
from tests.support.upstreams.recorder import Recorder

MANAGEMENT = [("POST", "/api/pull"), ("POST", "/api/push"), ("POST", "/api/create"), ("POST", "/api/copy"),
              ("DELETE", "/api/delete"), ("HEAD", "/api/blobs/sha256:ab12"), ("POST", "/api/blobs/sha256:ab12")]


class Managed:
    def __init__(self, gateway: TestClient, recorder: Recorder, gate: asyncio.Semaphore) -> None:
        self.gateway, self.recorder, self.gate = gateway, recorder, gate
        self.clients: list[ollama.AsyncClient] = []

    def client(self, key: str) -> ollama.AsyncClient:
        self.clients.append(ollama.AsyncClient(host=str(self.gateway.make_url("")), headers=bearer(key)))
        return self.clients[-1]


@pytest.fixture
async def managed(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_gateway: GatewayFactory, tmp_path: pathlib.Path,
) -> AsyncIterator[Managed]:
    recorder, gate = Recorder(), asyncio.Semaphore(0)
    server = await aiohttp_server(ollama_app(recorder, pull_gate=gate))
    keys = write_keys(tmp_path / "keys.toml", {"alice": {}})
    gateway = await make_gateway(headers={}, api_tokens=(), keys_file=str(keys),
                                 ollama_base_url=server.make_url(""), ollama_blob_max_bytes=1024)
    state = Managed(gateway, recorder, gate)
    yield state
    for client in state.clients:
        await client.close()


@pytest.mark.parametrize(("method", "path"), MANAGEMENT)
async def test_management_is_refused_to_a_key_that_is_not_admin(managed: Managed, method: str, path: str) -> None:
    response = await managed.gateway.request(method, path, headers=bearer("alice"), json={"model": "llama3.2"})
    assert response.status == 403
    if method != "HEAD":
        assert "may not manage models" in (await response.json())["error"]
    assert managed.recorder.requests == []


async def test_the_ollama_client_sees_the_refusal_as_a_403(managed: Managed) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        await managed.client("alice").delete("llama3.2")
    assert raised.value.status_code == 403 and managed.recorder.requests == []


async def test_pull_progress_streams_through_line_by_line(managed: Managed) -> None:
    seen = []
    async for progress in await managed.client(ADMIN).pull("llama3.2", stream=True):
        seen.append(progress.status)
        # The upstream sends its next line only now: had anything held this one back, the
        # pull would wait for ever instead of arriving here.
        managed.gate.release()
    assert seen == [line["status"] for line in PULL_LINES]
    assert managed.recorder.bodies("/api/pull") == [{"model": "llama3.2", "insecure": False, "stream": True}]


async def test_management_answers_come_back_as_ollama_sent_them(managed: Managed, tmp_path: pathlib.Path) -> None:
    admin = managed.client(ADMIN)
    assert (await admin.copy("llama3.2", "llama3.2-backup")).status == "success"
    with pytest.raises(ollama.ResponseError) as raised:
        await admin.delete("missing-model")
    assert raised.value.status_code == 404 and raised.value.error == "model 'missing-model' not found"
    model_file = tmp_path / "tiny.gguf"
    model_file.write_bytes(b"GGUF" + bytes(500))
    digest = await admin.create_blob(model_file)
    assert digest == "sha256:" + hashlib.sha256(model_file.read_bytes()).hexdigest()
    uploads = [seen for seen in managed.recorder.requests if seen.path.startswith("/api/blobs/")]
    assert [seen.method for seen in uploads] == ["POST"] and uploads[0].json == model_file.read_bytes()
    head = await managed.gateway.head("/api/blobs/sha256:0", headers=bearer(ADMIN))
    assert head.status == 404  # Ollama's "no such blob", relayed


async def test_a_blob_over_the_limit_is_refused_before_ollama_sees_it(managed: Managed) -> None:
    response = await managed.gateway.post("/api/blobs/sha256:ab12", headers=bearer(ADMIN), data=bytes(2048))
    assert response.status == 413 and "PROXY_OLLAMA_BLOB_MAX_BYTES" in (await response.json())["error"]
    assert managed.recorder.requests == []


async def test_a_blob_without_a_length_is_cut_off_at_the_limit(managed: Managed) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield bytes(512)  # 4 KiB in all, sent chunked: no Content-Length to refuse up front

    response = await managed.gateway.post("/api/blobs/sha256:ab12", headers=bearer(ADMIN), data=chunks())
    assert response.status == 413 and "PROXY_OLLAMA_BLOB_MAX_BYTES" in (await response.json())["error"]
    received = [seen.json for seen in managed.recorder.requests if seen.path.startswith("/api/blobs/")]
    assert all(len(body or b"") <= 1024 for body in received)  # Ollama never got the whole


async def test_a_header_names_the_ollama_server_to_manage(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_gateway: GatewayFactory, tmp_path: pathlib.Path,
) -> None:
    first, second = Recorder(), Recorder()
    servers = [await aiohttp_server(ollama_app(recorder)) for recorder in (first, second)]
    keys = write_keys(tmp_path / "keys.toml", {})
    gateway = await make_gateway(headers=bearer(ADMIN), api_tokens=(), keys_file=str(keys),
                                 ollama_base_url=tuple(server.make_url("") for server in servers))
    body = {"model": "llama3.2", "stream": False}
    assert (await gateway.post("/api/pull", json=body)).status == 200
    named = await gateway.post("/api/pull", json=body, headers={"X-Gateway-Backend": "ollama-2"})
    assert named.status == 200 and await named.json() == {"status": "success"}
    assert (first.paths(), second.paths()) == (["/api/pull"], ["/api/pull"])
    unknown = await gateway.post("/api/pull", json=body, headers={"X-Gateway-Backend": "ollama-9"})
    assert unknown.status == 404 and await unknown.json() == {"error": "no ollama backend named 'ollama-9'"}

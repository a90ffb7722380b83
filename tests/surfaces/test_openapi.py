"""/api/v1/openapi.json: a valid OpenAPI 3.1 document, and real traffic conforms to it.

Every request a test sends is first checked against the description, and every answer
(each event of a stream too) is checked against the description of its status, with
unknown fields refused. The gateway and the description must also agree on which bodies
are invalid: a body the schema refuses gets a 400, one it accepts does not.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.openapi import Described


@pytest.fixture
async def described(gateway: TestClient) -> Described:
    response = await gateway.get("/api/v1/openapi.json", headers={})  # public: no token needed
    assert response.status == 200
    return Described(await response.json())


async def exchange(gateway: TestClient, described: Described, method: str, path: str, body: Any = None,
                   template: str | None = None) -> int:
    """Send one conforming request; check the answer (every event of a stream) conforms."""
    template = template or path
    if body is not None:
        assert described.accepts(method, template, body), f"the test's own request does not conform: {body}"
    response = await gateway.request(method, path, json=body)
    content_type = response.headers["Content-Type"].split(";")[0]
    if content_type == "text/plain":
        described.check_answer(method, template, response.status, content_type, await response.text())
    elif content_type == "text/event-stream":
        for block in (await response.read()).split(b"\n\n"):
            if block.startswith(b"data: ") and block != b"data: [DONE]":
                described.check_answer(method, template, response.status, content_type, orjson.loads(block[6:]))
    else:
        described.check_answer(method, template, response.status, content_type, await response.json())
    return response.status


def test_the_description_is_valid_openapi_3_1(described: Described) -> None:
    validate(described.document)
    served = {(path, method) for path, item in described.document["paths"].items() for method in item}
    assert ("/api/v1/inference", "post") in served and ("/v1/chat/completions", "post") in served


async def test_real_traffic_on_every_endpoint_conforms(
    gateway: TestClient, described: Described, openai: RunningUpstream,
) -> None:
    prompt = {"messages": [{"role": "user", "content": "What is 2+2?"}]}
    statuses = [
        await exchange(gateway, described, "POST", "/api/v1/inference", {"model_id": "gemma3:1b", **prompt}),
        await exchange(gateway, described, "POST", "/api/v1/inference",
                       {"model_id": "gemma3:1b", "input_data": "hi", "parameters": {"temperature": 0.5}}),
        await exchange(gateway, described, "POST", "/api/v1/inference", {"model_id": "missing-everywhere", **prompt}),
        await exchange(gateway, described, "POST", "/api/v1/inference/stream", {"model_id": "gemma3:1b", **prompt}),
        await exchange(gateway, described, "POST", "/api/v1/inference/stream",
                       {"model_id": "midstream-error", "input_data": "x"}),
        await exchange(gateway, described, "POST", "/api/v1/inference/batch", {
            "model_id": "gemma3:1b", "inputs": [prompt, {"input_data": "x"}, {"messages": []}]}),
        await exchange(gateway, described, "POST", "/api/v1/embeddings",
                       {"model_id": "nomic-embed-text", "input": "a"}),
        await exchange(gateway, described, "GET", "/api/v1/health"),
        await exchange(gateway, described, "GET", "/api/v1/inference/health"),
        await exchange(gateway, described, "GET", "/api/v1/models"),
        await exchange(gateway, described, "POST", "/v1/chat/completions", {"model": "gemma3:1b", **prompt}),
        await exchange(gateway, described, "POST", "/v1/chat/completions",
                       {"model": "gemma3:1b", **prompt, "stream": True, "stream_options": {"include_usage": True}}),
        await exchange(gateway, described, "POST", "/v1/chat/completions",
                       {"model": "missing-everywhere", **prompt}),
        await exchange(gateway, described, "POST", "/v1/embeddings", {"model": "nomic-embed-text", "input": ["a"]}),
        await exchange(gateway, described, "POST", "/v1/embeddings",
                       {"model": "nomic-embed-text", "input": "a", "encoding_format": "base64"}),
        await exchange(gateway, described, "GET", "/v1/models"),
        await exchange(gateway, described, "GET", "/v1/models/gpt-test", template="/v1/models/{model}"),
        await exchange(gateway, described, "GET", "/v1/models/nope", template="/v1/models/{model}"),
        await exchange(gateway, described, "GET", "/livez"),
        await exchange(gateway, described, "GET", "/readyz"),
        await exchange(gateway, described, "GET", "/metrics"),
    ]
    assert statuses == [200, 200, 404, 200, 200, 200, 200, 200, 200, 200, 200, 200, 404, 200, 200, 200, 200, 404,
                        200, 200, 200]


async def test_every_route_the_app_serves_is_described(gateway: TestClient, described: Described) -> None:
    # aiohttp adds a HEAD beside every GET; a HEAD of its own (Ollama's /api/blobs) is served
    # without a GET beside it, and is counted.
    served = {
        (route.resource.canonical.replace("{model:.+}", "{model}"), route.method.lower())
        for route in gateway.app.router.routes()
        if route.resource is not None and route.method != "OPTIONS"
    }
    gets = {path for path, method in served if method == "get"}
    served -= {(path, "head") for path in gets}
    documented = {(path, method) for path, item in described.document["paths"].items() for method in item}
    assert served == documented


async def test_errors_conform_too(make_gateway: GatewayFactory, described: Described) -> None:
    gateway = await make_gateway(headers={"Authorization": "Bearer wrong"}, ollama_base_url="http://127.0.0.1:9")
    assert await exchange(gateway, described, "POST", "/api/v1/inference", {"model_id": "m", "input_data": "x"}) == 401
    assert await exchange(gateway, described, "POST", "/v1/embeddings", {"model": "m", "input": "x"}) == 401


BODIES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x"}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x", "messages": [{"role": "user", "content": "y"}]}),
    ("/api/v1/inference", {"model_id": "gemma3:1b"}),
    ("/api/v1/inference", {"model_id": "", "input_data": "x"}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x", "parameters": {"temperature": 2.5}}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x", "parameters": {"top_k": 0}}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x", "parameters": {"stop": ["a"] * 5}}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x", "parameters": {"seed": 2**63}}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x", "parameters": {"bogus": 1}}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "messages": [{"role": "robot", "content": "y"}]}),
    ("/api/v1/inference", {"model_id": "gemma3:1b", "input_data": "x", "parameters": {"max_tokens": 2**31 - 1}}),
    ("/api/v1/embeddings", {"model_id": "nomic-embed-text", "input": []}),
    ("/api/v1/embeddings", {"model_id": "nomic-embed-text", "input": ["a", "b"]}),
    ("/api/v1/inference/batch", {"model_id": "gemma3:1b", "inputs": []}),
    ("/api/v1/inference/batch", {"model_id": "gemma3:1b", "inputs": [{"input_data": "x"}], "max_concurrency": 0}),
    ("/v1/chat/completions", {"model": "gemma3:1b", "messages": [{"role": "user", "content": "x"}], "n": 2}),
    ("/v1/chat/completions", {"model": "gemma3:1b", "messages": [{"role": "developer", "content": "x"}]}),
    ("/v1/chat/completions", {"model": "gemma3:1b", "messages": [{"role": "user", "content": "x"}], "tools": []}),
    ("/v1/chat/completions", {"model": "gemma3:1b", "messages": [{"role": "user", "content": "x"}],
                              "response_format": {"type": "json_object"}}),
    ("/v1/chat/completions", {"model": "gemma3:1b",
                              "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
    ("/v1/embeddings", {"model": "nomic-embed-text", "input": "x", "encoding_format": "float"}),
    ("/v1/embeddings", {"model": "nomic-embed-text", "input": "x", "dimensions": 3}),
]


@pytest.mark.parametrize(("path", "body"), BODIES)
async def test_the_gateway_and_its_description_agree_on_what_is_invalid(
    gateway: TestClient, described: Described, path: str, body: dict[str, Any],
) -> None:
    response = await gateway.post(path, json=body)
    assert (response.status == 400) == (not described.accepts("POST", path, body)), await response.text()


async def test_base64_embeddings_are_little_endian_float32(gateway: TestClient) -> None:
    body = {"model": "nomic-embed-text", "input": "Hello world"}
    floats = (await (await gateway.post("/v1/embeddings", json=body)).json())["data"][0]["embedding"]
    packed = (await (await gateway.post("/v1/embeddings", json={**body, "encoding_format": "base64"})).json())
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(floats, rel=1e-6, abs=1e-7)

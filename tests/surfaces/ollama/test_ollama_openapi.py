"""The Ollama API's traffic against the served OpenAPI description: what the tests send is
described as accepted, and every answer (each NDJSON line of a stream) conforms, whether an
Ollama backend or the fallback served it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.openapi import Described

INVALID = {"model": "m", "messages": [{"role": "robot", "content": "x"}]}
PROMPT = {"messages": [{"role": "user", "content": "What is 2+2?"}]}
EXCHANGES: list[tuple[str, str, Any]] = [
    ("POST", "/api/chat", {"model": "gemma3:1b", **PROMPT, "stream": False}),
    ("POST", "/api/chat", {"model": "gemma3:1b", **PROMPT}),
    ("POST", "/api/chat", {"model": "midstream-error", **PROMPT}),
    ("POST", "/api/generate", {"model": "gemma3:1b", "prompt": "Hi", "stream": False}),
    ("POST", "/api/generate", {"model": "gemma3:1b", "prompt": "Hi", "options": {"num_predict": 8}}),
    ("POST", "/api/embed", {"model": "nomic-embed-text", "input": ["a", "b"]}),
    ("POST", "/api/embeddings", {"model": "nomic-embed-text", "prompt": "a"}),
    ("POST", "/api/show", {"model": "gpt-test"}),
    ("GET", "/api/tags", None),
    ("GET", "/api/ps", None),
    ("GET", "/api/version", None),
    ("POST", "/api/chat", INVALID),
]


async def _exchange(gateway: TestClient, described: Described, method: str, path: str, body: Any) -> int:
    if body is not None:  # the one invalid request is described as invalid too
        assert described.accepts(method, path, body) == (body != INVALID), body
    response = await gateway.request(method, path, json=body)
    content_type = response.headers["Content-Type"].split(";")[0]
    raw = await response.read()
    answers = [orjson.loads(line) for line in raw.splitlines()] if content_type == "application/x-ndjson" \
        else [orjson.loads(raw)]
    for answer in answers:
        described.check_answer(method, path, response.status, content_type, answer)
    return response.status


@pytest.mark.parametrize("by", ["ollama", "fallback"])
async def test_ollama_traffic_conforms_to_the_description(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream, dead_url: URL, by: str,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url if by == "ollama" else dead_url,
                                 openai_endpoint=openai.url)
    described = Described(await (await gateway.get("/api/v1/openapi.json")).json())
    statuses = [await _exchange(gateway, described, method, path, body) for method, path, body in EXCHANGES]
    assert statuses == [200] * 11 + [400]
    root = await gateway.get("/")
    described.check_answer("GET", "/", root.status, "text/plain", await root.text())

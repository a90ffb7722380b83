"""/v1/completions and /v1/responses against the served OpenAPI description: real answers
and every stream event conform (unknown fields refused), and the gateway and the
description agree on which bodies are invalid."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.openapi import Described


@pytest.fixture
async def described(gateway: TestClient) -> Described:
    return Described(await (await gateway.get("/api/v1/openapi.json")).json())


def stream_events(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, data) of each SSE block that carries JSON data."""
    events = []
    for block in raw.split(b"\n\n"):
        lines = [line for line in block.split(b"\n") if b": " in line and not line.startswith(b":")]
        fields = dict(line.split(b": ", 1) for line in lines)
        if b"data" in fields and fields[b"data"] != b"[DONE]":
            name = fields.get(b"event")
            events.append((name.decode() if name else None, orjson.loads(fields[b"data"])))
    return events


async def answer_conforms(gateway: TestClient, described: Described, path: str, body: dict[str, Any]) -> int:
    """Send one conforming request; check its JSON answer conforms."""
    assert described.accepts("POST", path, body), f"the test's own request does not conform: {body}"
    response = await gateway.post(path, json=body)
    described.check_answer("POST", path, response.status, response.content_type, await response.json())
    return response.status


async def stream_conforms(gateway: TestClient, described: Described, path: str, body: dict[str, Any]) -> list[Any]:
    assert described.accepts("POST", path, body)
    response = await gateway.post(path, json=body)
    assert response.status == 200 and response.content_type == "text/event-stream"
    events = stream_events(await response.read())
    for name, data in events:
        described.check_answer("POST", path, 200, "text/event-stream", data)
        assert name is None or name == data["type"]
    return [data for _, data in events]


async def test_completions_and_responses_conform(
    gateway: TestClient, described: Described, openai: RunningUpstream,
) -> None:
    statuses = [
        await answer_conforms(gateway, described, "/v1/completions",
                       {"model": "gemma3:1b", "prompt": "Hello", "suffix": "!", "echo": True}),
        await answer_conforms(gateway, described, "/v1/completions", {"model": "missing-everywhere", "prompt": "x"}),
        await answer_conforms(gateway, described, "/v1/responses",
                       {"model": "gemma3:1b", "input": "What is 2+2?", "instructions": "Be brief."}),
        await answer_conforms(gateway, described, "/v1/responses",
                       {"model": "gemma3:1b", "input": [{"role": "user", "content": "x"}], "max_output_tokens": 20}),
        await answer_conforms(gateway, described, "/v1/responses", {"model": "missing-everywhere", "input": "x"}),
    ]
    assert statuses == [200, 404, 200, 200, 404]
    chunks = await stream_conforms(gateway, described, "/v1/completions", {
        "model": "gemma3:1b", "prompt": ["Count"], "stream": True, "stream_options": {"include_usage": True}})
    assert chunks[-1]["usage"]["completion_tokens"] == 22
    events = await stream_conforms(gateway, described, "/v1/responses",
                                   {"model": "gemma3:1b", "input": "What is 2+2?", "stream": True})
    assert events[-1]["type"] == "response.completed"


async def test_function_calls_and_json_answers_conform(gateway: TestClient, described: Described) -> None:
    tools = [{"type": "function", "name": "get_weather",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    for model in ("llama3.2", "missing-here"):  # served by Ollama, then through fallback
        assert await answer_conforms(gateway, described, "/v1/responses",
                                     {"model": model, "input": "Weather?", "tools": tools}) == 200
        events = await stream_conforms(gateway, described, "/v1/responses",
                                       {"model": model, "input": "Weather?", "tools": tools, "stream": True})
        assert "response.function_call_arguments.done" in [e["type"] for e in events]
        text_format = {"format": {"type": "json_schema", "name": "w", "schema": tools[0]["parameters"]}}
        assert await answer_conforms(gateway, described, "/v1/responses",
                                     {"model": model, "input": "Weather?", "text": text_format}) == 200


async def test_a_cut_stream_conforms(make_gateway: GatewayFactory, described: Described,
                                     openai: RunningUpstream) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    chunks = await stream_conforms(gateway, described, "/v1/completions",
                                   {"model": "midstream-error", "prompt": "x", "stream": True})
    assert "error" in chunks[-1]
    events = await stream_conforms(gateway, described, "/v1/responses",
                                   {"model": "midstream-error", "input": "x", "stream": True})
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]


BODIES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/completions", {"model": "gemma3:1b", "prompt": "x"}),
    ("/v1/completions", {"model": "gemma3:1b", "prompt": ["x"], "suffix": "y", "echo": False, "n": 1}),
    ("/v1/completions", {"model": "gemma3:1b", "prompt": ["x", "y"]}),
    ("/v1/completions", {"model": "gemma3:1b", "prompt": ""}),
    ("/v1/completions", {"model": "gemma3:1b", "prompt": "x", "logprobs": 1}),
    ("/v1/completions", {"model": "gemma3:1b", "prompt": "x", "best_of": 2}),
    ("/v1/responses", {"model": "gemma3:1b", "input": "x", "store": False, "tool_choice": "auto", "tools": []}),
    ("/v1/responses", {"model": "gemma3:1b", "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "x"}]}]}),
    ("/v1/responses", {"model": "gemma3:1b", "input": []}),
    ("/v1/responses", {"model": "gemma3:1b", "input": "x", "store": True}),
    ("/v1/responses", {"model": "gemma3:1b", "input": "x", "previous_response_id": "resp_1"}),
    ("/v1/responses", {"model": "gemma3:1b", "input": "x", "text": {"format": {"type": "json_object"}}}),
    ("/v1/responses", {"model": "gemma3:1b", "input": "x", "text": {"format": {"type": "yaml"}}}),
    ("/v1/responses", {"model": "llama3.2", "input": "x", "tool_choice": "required",
                       "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}),
    ("/v1/responses", {"model": "gemma3:1b", "input": "x", "tools": [{"type": "web_search"}]}),
    ("/v1/responses", {"model": "gemma3:1b", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"}]}]}),
    ("/v1/responses", {"model": "gemma3:1b", "input": [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "1"}]}),
    ("/v1/responses", {"model": "gemma3:1b", "input": [{"type": "function_call", "call_id": "c", "name": "f"}]}),
]


@pytest.mark.parametrize(("path", "body"), BODIES)
async def test_the_gateway_and_its_description_agree_on_what_is_invalid(
    gateway: TestClient, described: Described, path: str, body: dict[str, Any],
) -> None:
    response = await gateway.post(path, json=body)
    assert (response.status == 400) == (not described.accepts("POST", path, body)), await response.text()

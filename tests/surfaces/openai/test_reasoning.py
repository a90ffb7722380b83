"""Reasoning models: `reasoning_effort` becomes Ollama's `think`, and the thinking comes back
apart from the answer (`reasoning_content` on /v1, left out of /api/v1's contract)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.upstreams.model_answers import THINKING
from tests.support.upstreams.openai import TOKENS
from tests.surfaces.openai.test_chat_features import ASK
from tests.surfaces.openai.test_openai_compat import client_for

THOUGHT = "".join(THINKING)


async def test_ollama_thinks_when_asked_and_the_thinking_stays_out_of_the_answer(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(model="qwen3:8b", messages=ASK, reasoning_effort="high")
        levelled = await client.chat.completions.create(model="gpt-oss:20b", messages=ASK, reasoning_effort="low")
        off = await client.chat.completions.create(model="qwen3:8b", messages=ASK, reasoning_effort="none")
    message: Any = completion.choices[0].message
    assert message.content == "Hello" and message.reasoning_content == THOUGHT
    assert levelled.choices[0].message.content == "Hello"
    assert [b["think"] for b in ollama.recorder.bodies("/api/chat")] == [True, "low", False]
    assert getattr(off.choices[0].message, "reasoning_content", None) is None


async def test_streamed_thinking_comes_as_reasoning_content_deltas(gateway: TestClient) -> None:
    async with client_for(gateway) as client:
        for model, answer in (("qwen3:8b", "Hello"), ("reasoner-r1", "".join(TOKENS))):
            stream = await client.chat.completions.create(
                model=model, messages=ASK, reasoning_effort="medium", stream=True)
            deltas: list[Any] = [c.choices[0].delta async for c in stream if c.choices]
            thinking = [d.reasoning_content for d in deltas if getattr(d, "reasoning_content", None)]
            assert thinking == THINKING, model
            assert "".join(d.content or "" for d in deltas) == answer, model


async def test_an_openai_compatible_servers_reasoning_content_passes_through(
    gateway: TestClient, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(model="reasoner-r1", messages=ASK, reasoning_effort="high")
    message: Any = completion.choices[0].message
    assert (message.content, message.reasoning_content) == ("".join(TOKENS), THOUGHT)
    assert openai.recorder.bodies("/v1/chat/completions")[-1]["reasoning_effort"] == "high"


async def test_a_model_that_cannot_think_is_skipped(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gemma3:1b", messages=ASK, reasoning_effort="high")
    assert raw.headers["X-Gateway-Provider"] == "openai"
    assert ollama.recorder.paths() == ["/api/show"]


async def test_the_native_api_leaves_thinking_out_of_output_and_tokens(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    single = await gateway.post("/api/v1/inference", json={"model_id": "reasoner-r1", "input_data": "2+2?"})
    body = await single.json()
    assert body["output"] == "".join(TOKENS) and THOUGHT not in str(body)
    streamed = await gateway.post("/api/v1/inference/stream", json={"model_id": "reasoner-r1", "input_data": "2+2?"})
    raw = (await streamed.read()).decode()
    assert "Two" not in raw and "fallback" in raw


async def test_the_native_api_gives_thinking_to_a_client_that_asks(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    asked = {"model_id": "reasoner-r1", "input_data": "2+2?", "parameters": {"include_reasoning": True}}
    single = await (await gateway.post("/api/v1/inference", json=asked)).json()
    assert (single["output"], single["reasoning"]) == ("".join(TOKENS), THOUGHT)
    raw = await (await gateway.post("/api/v1/inference/stream", json=asked)).read()
    events = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert [e["reasoning"] for e in events if "reasoning" in e] == THINKING
    assert all(e["token"] == "" and e["done"] is False for e in events if "reasoning" in e)
    assert "".join(e["token"] for e in events) == "".join(TOKENS)
    batch = await (await gateway.post("/api/v1/inference/batch", json={
        "model_id": "reasoner-r1", "inputs": [{"input_data": "a"}, {"input_data": "b", "parameters": {
            "include_reasoning": False}}], "parameters": {"include_reasoning": True}})).json()
    assert [r.get("reasoning") for r in batch["results"]] == [THOUGHT, None]


async def test_the_native_api_takes_a_json_schema_in_parameters(gateway: TestClient, ollama: RunningUpstream) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    response = await gateway.post("/api/v1/inference", json={
        "model_id": "llama3.2", "input_data": "2+2?", "parameters": {"json_schema": schema, "temperature": 0}})
    body = await response.json()
    assert json.loads(body["output"]) == {"answer": 22} and body["provider"] == "ollama"
    assert ollama.recorder.bodies("/api/chat")[-1]["format"] == schema
    refused = await gateway.post("/api/v1/inference", json={
        "model_id": "llama3.2", "input_data": "x", "parameters": {"json_schema": {"type": "array"}}})
    assert refused.status == 400
    assert "@ $.parameters.json_schema" in (await refused.json())["message"]

"""Tools, JSON output, images and reasoning on /v1, through the official `openai` client.

Each test runs twice: once served by Ollama (its documented tool-call, `format`, `images`
and `think` wire, tests/upstreams/ollama_features.py), once by the OpenAI test server after
Ollama could not serve it (a model Ollama does not have): the client must not see a
difference, except in which backend answered (X-Gateway-Provider).
"""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

import jsonschema
import orjson
import pytest
from aiohttp.test_utils import TestClient
from openai import AsyncOpenAI, BadRequestError

from proxy.surfaces.openai.content_parts import MAX_IMAGE_BYTES
from tests.cache.test_cache import routes_file
from tests.support.app import TOKEN, GatewayFactory, RunningUpstream
from tests.support.gateway_process import running_gateway
from tests.support.openapi import Described
from tests.support.upstreams import model_answers
from tests.surfaces.openai.test_openai_compat import client_for
from tests.surfaces.test_openapi import described as described  # a fixture, shared
from tests.surfaces.test_openapi import exchange

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "The city, e.g. Paris"},
        "format": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["location", "format"],
}
TOOLS: Any = [{"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather for a location",
    "parameters": WEATHER_PARAMETERS}}]
# The client's stream helper parses only strict tools' arguments.
STRICT_TOOLS: Any = [{"type": "function", "function": {
    **TOOLS[0]["function"], "strict": True,
    "parameters": {**WEATHER_PARAMETERS, "required": ["location", "format", "days"], "additionalProperties": False}}}]
EXPECTED_ARGUMENTS = {"location": "Paris", "format": "celsius", "days": 22}
ASK: Any = [{"role": "user", "content": "What is the weather today in Paris?"}]
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()

# model -> the backend that serves it: Ollama has "llama3.2" (tools) and "llava" (vision);
# the "missing-..." ones it has not, so the OpenAI test server answers them.
SERVED_BY = [("llama3.2", "ollama"), ("missing-here", "openai")]
VISION_SERVED_BY = [("llava", "ollama"), ("missing-vision", "openai")]


async def _create(client: AsyncOpenAI, **kwargs: Any) -> tuple[str, Any]:
    raw = await client.chat.completions.with_raw_response.create(**kwargs)
    return raw.headers["X-Gateway-Provider"], raw.parse()


@pytest.mark.parametrize(("model", "provider"), SERVED_BY)
async def test_a_tool_call_in_one_answer(
    gateway: TestClient, ollama: RunningUpstream, model: str, provider: str,
) -> None:
    async with client_for(gateway) as client:
        served_by, completion = await _create(client, model=model, messages=ASK, tools=TOOLS)
        _, again = await _create(client, model=model, messages=ASK, tools=TOOLS)
    assert served_by == provider
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_current_weather"
    assert json.loads(call.function.arguments) == EXPECTED_ARGUMENTS  # a JSON string, as OpenAI's
    assert call.id.startswith("call_")
    assert again.choices[0].message.tool_calls[0].id == call.id  # Ollama sends none: a stable one is made
    sent = ollama.recorder.bodies("/api/chat")
    if provider == "ollama":
        assert sent[-1]["tools"] == TOOLS and sent[-1]["stream"] is True  # single shots are read as streams


@pytest.mark.parametrize(("model", "provider"), [*SERVED_BY, ("repeats-ids", "openai")])
async def test_a_streamed_tool_call_is_reassembled_by_the_clients_stream_helper(
    gateway: TestClient, model: str, provider: str,
) -> None:
    async with (
        client_for(gateway) as client,
        client.chat.completions.stream(model=model, messages=ASK, tools=STRICT_TOOLS) as stream,
    ):
        chunks = [event.chunk async for event in stream if event.type == "chunk"]
        final = await stream.get_final_completion()
    pieces = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert pieces[0].index == 0 and pieces[0].id and pieces[0].function.name == "get_current_weather"
    assert all(p.index == 0 and p.id is None for p in pieces[1:]) and len(pieces) >= 2
    assert json.loads("".join(p.function.arguments or "" for p in pieces)) == EXPECTED_ARGUMENTS
    assert final.choices[0].finish_reason == "tool_calls"
    (call,) = final.choices[0].message.tool_calls
    assert (call.function.name, call.function.parsed_arguments) == ("get_current_weather", EXPECTED_ARGUMENTS)


@pytest.mark.parametrize(("model", "provider"), SERVED_BY)
async def test_a_whole_tool_round_trip(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, provider: str,
) -> None:
    async with client_for(gateway) as client:
        _, first = await _create(client, model=model, messages=ASK, tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]
        history = [*ASK, first.choices[0].message.model_dump(exclude_none=True),
                   {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}]
        served_by, answer = await _create(client, model=model, messages=history, tools=TOOLS)
    assert served_by == provider
    assert answer.choices[0].message.content == 'The tool said: {"temperature": 21}'
    assert answer.choices[0].finish_reason == "stop" and not answer.choices[0].message.tool_calls
    if provider == "ollama":
        turns = ollama.recorder.bodies("/api/chat")[-1]["messages"]
        # Ollama's wire: the arguments an object, the result a plain message naming its tool.
        called = {"name": "get_current_weather", "arguments": EXPECTED_ARGUMENTS}
        assert turns[1]["tool_calls"] == [{"function": called}]
        assert turns[2] == {"role": "tool", "content": '{"temperature": 21}', "tool_name": "get_current_weather"}
    else:
        turns = openai.recorder.bodies("/v1/chat/completions")[-1]["messages"]
        assert turns[1]["tool_calls"][0]["function"]["arguments"] == call.function.arguments
        assert turns[2] == {"role": "tool", "content": '{"temperature": 21}', "tool_call_id": call.id}


WEATHER_REPORT = {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "number"},
                                                     "sunny": {"type": "boolean"}},
                  "required": ["city", "temperature", "sunny"], "additionalProperties": False}


@pytest.mark.parametrize(("model", "provider"), SERVED_BY)
async def test_json_schema_output(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, provider: str,
) -> None:
    response_format: Any = {"type": "json_schema", "json_schema": {
        "name": "weather_report", "schema": WEATHER_REPORT, "strict": True}}
    async with client_for(gateway) as client:
        served_by, completion = await _create(client, model=model, messages=ASK, response_format=response_format)
    assert served_by == provider
    answer = json.loads(completion.choices[0].message.content)
    jsonschema.validate(answer, WEATHER_REPORT)
    if provider == "ollama":
        assert ollama.recorder.bodies("/api/chat")[-1]["format"] == WEATHER_REPORT  # the schema itself
    else:
        assert openai.recorder.bodies("/v1/chat/completions")[-1]["response_format"] == response_format  # unchanged


async def test_json_mode_is_ollamas_format_json(gateway: TestClient, ollama: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(
            model="llama3.2", messages=ASK, response_format={"type": "json_object"}, stream=False)
    assert json.loads(completion.choices[0].message.content or "") == {"answer": 4}
    assert ollama.recorder.bodies("/api/chat")[-1]["format"] == "json"


@pytest.mark.parametrize(("model", "provider"), VISION_SERVED_BY)
async def test_an_image_as_a_data_url(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, provider: str,
) -> None:
    messages: Any = [{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]}]
    async with client_for(gateway) as client:
        served_by, completion = await _create(client, model=model, messages=messages)
    assert served_by == provider
    assert completion.choices[0].message.content == f"I see 1 image(s) of {len(PNG)} bytes."
    if provider == "ollama":
        sent = ollama.recorder.bodies("/api/chat")[-1]["messages"]
        assert sent == [{"role": "user", "content": "What is in this image?",
                         "images": [base64.b64encode(PNG).decode()]}]
    else:
        sent = openai.recorder.bodies("/v1/chat/completions")[-1]["messages"]
        assert sent[0]["content"][1] == {"type": "image_url", "image_url": {"url": PNG_URL}}


async def test_json_schema_and_an_image_stream_too(gateway: TestClient) -> None:
    async with client_for(gateway) as client:
        for model in ("llava", "missing-vision"):
            stream = await client.chat.completions.create(model=model, stream=True, messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}])
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert text == f"I see 1 image(s) of {len(PNG)} bytes.", model
        for model in ("llama3.2", "missing-here"):
            stream = await client.chat.completions.create(model=model, stream=True, messages=ASK, response_format={
                "type": "json_schema", "json_schema": {"name": "report", "schema": WEATHER_REPORT}})
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert json.loads(text) == model_answers.sample(WEATHER_REPORT), model


async def test_the_access_log_names_what_was_used_never_its_content(
    tmp_path: pathlib.Path, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    variables = {"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": str(ollama.url),
                 "OPENAI_API_ENDPOINT": str(openai.url)}
    async with (
        running_gateway(variables, ready="/livez", log_dir=tmp_path, graceful=True) as running,
        AsyncOpenAI(base_url=f"{running.base}/v1", api_key=TOKEN, max_retries=0) as client,
    ):
        called = await client.chat.completions.create(model="llama3.2", messages=ASK, tools=TOOLS)
        stream = await client.chat.completions.create(
            model="missing-here", messages=ASK, tools=TOOLS, stream=True, stream_options={"include_usage": True})
        [chunk async for chunk in stream]
        await client.chat.completions.create(model="llama3.2", messages=ASK, response_format={
            "type": "json_schema", "json_schema": {"name": "weather_report", "schema": WEATHER_REPORT}})
    output = running.output()
    for secret in ("get_current_weather", "Paris", "weather_report", "temperature", "What is the weather"):
        assert secret not in output, secret
    records = [r for r in map(orjson.loads, running.stderr().splitlines()) if r.get("event") == "access"]
    assert [r["features"] for r in records] == ["tools", "tools", "json_schema"]
    # A call's arguments are output: Ollama's eval_count, the OpenAI server's completion_tokens.
    assert [(r["provider"], r["tokens_out"]) for r in records[:2]] == [("ollama", 33), ("openai", 12)]
    assert called.usage is not None and called.usage.completion_tokens == 33


async def test_an_image_over_the_size_limit_is_refused_by_name_and_nothing_is_sent(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, max_body_bytes=16 << 20)
    huge = "data:image/png;base64," + base64.b64encode(bytes(MAX_IMAGE_BYTES + 3)).decode()
    parts = [{"type": "text", "text": "?"}, {"type": "image_url", "image_url": {"url": PNG_URL}},
             {"type": "image_url", "image_url": {"url": huge}}]
    async with client_for(gateway) as client:
        with pytest.raises(BadRequestError) as refused:
            await client.chat.completions.create(model="llava", messages=[{"role": "user", "content": parts}])
    message = refused.value.message
    assert f"content part [2]: the image is larger than {MAX_IMAGE_BYTES} bytes @ $.messages[0].content" in message
    assert ollama.recorder.requests == [] and openai.recorder.requests == []


_TOOL_BODY: Any = {"model": "llama3.2", "messages": ASK, "tools": TOOLS}


@pytest.mark.parametrize("body", [
    _TOOL_BODY,
    {**_TOOL_BODY, "tools": [{"type": "function", "function": {"description": "nameless"}}]},
    {**_TOOL_BODY, "tool_choice": "sometimes"},
    {**_TOOL_BODY, "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {
        "type": "array"}}}},
    {**_TOOL_BODY, "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {
        "type": "object"}}}},
    {**_TOOL_BODY, "reasoning_effort": "extreme"},
    {**_TOOL_BODY, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}]},
    {**_TOOL_BODY, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
])
async def test_the_gateway_and_its_description_agree_on_these_bodies(
    gateway: TestClient, described: Described, body: dict[str, Any],
) -> None:
    response = await gateway.post("/v1/chat/completions", json=body)
    assert (response.status == 400) == (not described.accepts("POST", "/v1/chat/completions", body)), \
        await response.text()


async def test_tool_calls_and_reasoning_conform_to_the_description(
    gateway: TestClient, described: Described,
) -> None:
    path = "/v1/chat/completions"
    for body in (_TOOL_BODY, {**_TOOL_BODY, "stream": True}, {**_TOOL_BODY, "model": "missing-here", "stream": True},
                 {"model": "qwen3:8b", "messages": ASK, "reasoning_effort": "high"},
                 {"model": "reasoner-r1", "messages": ASK, "stream": True}):
        assert await exchange(gateway, described, "POST", path, body) == 200
    native = {"model_id": "qwen3:8b", "input_data": "2+2?", "parameters": {"include_reasoning": True,
                                                                           "json_schema": WEATHER_REPORT}}
    assert await exchange(gateway, described, "POST", "/api/v1/inference", native) == 200
    assert await exchange(gateway, described, "POST", "/api/v1/inference/stream", native) == 200


async def test_the_answer_cache_keeps_text_only_so_tool_calls_are_asked_afresh(
    tmp_path: pathlib.Path, make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"))
    async with client_for(gateway) as client:
        for stream in (False, True, False, True):
            raw = await client.chat.completions.with_raw_response.create(
                model="chat-test", messages=ASK, tools=TOOLS, temperature=0, stream=stream)
            assert raw.headers["X-Gateway-Cache"] == "miss"  # never an entry without its tool call
            if not stream:
                assert raw.parse().choices[0].message.tool_calls[0].function.name == "get_current_weather"
    assert len(openai.recorder.bodies("/v1/chat/completions")) == 4

"""/v1/responses with function tools, a JSON schema, images and reasoning, through the official
`openai` client: the same normalized chat as /v1/chat/completions carries them, so both
backends serve them. Each test runs twice: served by Ollama (its documented tool, `format`,
`images` and `think` wire) and by the OpenAI test server after Ollama could not (a model it
has not), as the chat completions tests of the same features do.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient

from tests.support.app import RunningUpstream
from tests.support.openai_client import client_for

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "format": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                   "days": {"type": "integer"}},
    "required": ["location", "format", "days"],
    "additionalProperties": False,
}
TOOLS: Any = [{"type": "function", "name": "get_current_weather", "description": "Get the current weather",
               "parameters": WEATHER_PARAMETERS, "strict": True}]
EXPECTED_ARGUMENTS = {"location": "Paris", "format": "celsius", "days": 22}
ASK = "What is the weather today in Paris?"
SERVED_BY = [("llama3.2", "ollama"), ("missing-here", "openai")]
PNG_URL = "data:image/png;base64," + base64.b64encode(base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")).decode()


@pytest.mark.parametrize(("model", "provider"), SERVED_BY)
async def test_a_function_call_round_trip(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, provider: str,
) -> None:
    async with client_for(gateway) as client:
        raw = await client.responses.with_raw_response.create(model=model, input=ASK, tools=TOOLS)
        first = raw.parse()
        (call,) = first.output  # only a call: no empty message beside it
        assert call.type == "function_call" and call.name == "get_current_weather" and call.status == "completed"
        assert json.loads(call.arguments) == EXPECTED_ARGUMENTS
        answer = await client.responses.create(model=model, tools=TOOLS, input=[
            {"role": "user", "content": ASK}, *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": 21}'}])
    assert raw.headers["X-Gateway-Provider"] == provider
    assert first.tools[0].name == "get_current_weather" and first.status == "completed"
    assert answer.output_text == 'The tool said: {"temperature": 21}'
    if provider == "ollama":
        sent = ollama.recorder.bodies("/api/chat")
        assert sent[0]["tools"] == [{"type": "function", "function": {k: v for k, v in TOOLS[0].items()
                                                                      if k not in ("type", "strict")}}]
        assert sent[-1]["messages"][1]["tool_calls"] == [
            {"function": {"name": "get_current_weather", "arguments": EXPECTED_ARGUMENTS}}]
        assert sent[-1]["messages"][2] == {"role": "tool", "content": '{"temperature": 21}',
                                           "tool_name": "get_current_weather"}
    else:
        turns = openai.recorder.bodies("/v1/chat/completions")[-1]["messages"]
        assert turns[1]["tool_calls"][0]["function"]["arguments"] == call.arguments
        assert turns[2] == {"role": "tool", "content": '{"temperature": 21}', "tool_call_id": call.call_id}


@pytest.mark.parametrize(("model", "provider"), SERVED_BY)
async def test_a_streamed_function_call(gateway: TestClient, model: str, provider: str) -> None:
    async with client_for(gateway) as client, client.responses.stream(model=model, input=ASK, tools=TOOLS) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.output_item.added" in kinds and "response.function_call_arguments.delta" in kinds
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads("".join(pieces)) == EXPECTED_ARGUMENTS == json.loads(done.arguments)
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_current_weather", EXPECTED_ARGUMENTS)]
    assert [e.sequence_number for e in events] == list(range(len(events)))


REPORT = {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
          "required": ["city", "temperature"], "additionalProperties": False}


@pytest.mark.parametrize(("model", "provider"), SERVED_BY)
async def test_a_json_schema_answer(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, provider: str,
) -> None:
    text_format: Any = {"format": {"type": "json_schema", "name": "report", "schema": REPORT, "strict": True}}
    async with client_for(gateway) as client:
        response = await client.responses.create(model=model, input="Weather in Paris as JSON", text=text_format)
    jsonschema.validate(json.loads(response.output_text), REPORT)
    assert response.text is not None and response.text.format.type == "json_schema"
    if provider == "ollama":
        assert ollama.recorder.bodies("/api/chat")[-1]["format"] == REPORT
    else:
        sent = openai.recorder.bodies("/v1/chat/completions")[-1]["response_format"]
        assert sent == {"type": "json_schema", "json_schema": {"name": "report", "schema": REPORT, "strict": True}}


@pytest.mark.parametrize(("model", "provider"), [("llava", "ollama"), ("missing-vision", "openai")])
async def test_an_input_image(gateway: TestClient, ollama: RunningUpstream, model: str, provider: str) -> None:
    async with client_for(gateway) as client:
        response = await client.responses.create(model=model, input=[{"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": PNG_URL}]}])
    assert response.output_text == "I see 1 image(s) of 70 bytes."
    if provider == "ollama":
        assert ollama.recorder.bodies("/api/chat")[-1]["messages"][0]["images"] == [PNG_URL.split(",", 1)[1]]


@pytest.mark.parametrize(("model", "provider"), [("qwen3:8b", "ollama"), ("missing-thinker", "openai")])
async def test_reasoning_effort_reaches_the_backend(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, provider: str,
) -> None:
    async with client_for(gateway) as client:
        response = await client.responses.create(model=model, input="What is 2+2?", reasoning={"effort": "high"})
    assert response.reasoning is not None and response.reasoning.effort == "high"
    if provider == "ollama":
        assert ollama.recorder.bodies("/api/chat")[-1]["think"] is True
    else:
        assert openai.recorder.bodies("/v1/chat/completions")[-1]["reasoning_effort"] == "high"

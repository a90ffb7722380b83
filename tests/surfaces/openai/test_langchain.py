"""LangChain's `ChatOpenAI` pointed at the gateway, unchanged: tool binding, structured
output both ways (a JSON schema, and a forced function call), and a streamed tool call
merged from its chunks. Served by Ollama (its own wire) and, for a model Ollama lacks,
by the OpenAI test server after fallback."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.support.app import TOKEN, RunningUpstream

MODELS = ["llama3.2", "missing-here"]  # served by Ollama; by OpenAI after Ollama has no such model


@tool
def get_current_weather(location: str, unit: str) -> str:
    """Get the current weather for a location, in celsius or fahrenheit."""
    return f"21 degrees {unit} in {location}"


class WeatherReport(BaseModel):
    """A weather report for one city."""

    city: str
    temperature: float
    sunny: bool


def chat_model(gateway: TestClient, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=str(gateway.make_url("/v1")), api_key=TOKEN,  # type: ignore[arg-type]
                      max_retries=0)


@pytest.mark.parametrize("model", MODELS)
async def test_bind_tools_invoke(gateway: TestClient, ollama: RunningUpstream, model: str) -> None:
    answer = await chat_model(gateway, model).bind_tools([get_current_weather]).ainvoke("Weather in Paris?")
    (call,) = answer.tool_calls
    assert call["name"] == "get_current_weather"
    assert call["args"] == {"location": "Paris", "unit": "Paris"}  # filled in from the tool's schema
    assert call["id"]
    # The round trip: LangChain sends the call back with the tool's result.
    result = get_current_weather.invoke(call)
    final = await chat_model(gateway, model).bind_tools([get_current_weather]).ainvoke(
        [("user", "Weather in Paris?"), answer, result])
    assert final.content == "The tool said: 21 degrees Paris in Paris"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_with_structured_output(
    gateway: TestClient, ollama: RunningUpstream, model: str, method: Any,
) -> None:
    structured = chat_model(gateway, model).with_structured_output(WeatherReport, method=method)
    report = await structured.ainvoke("Weather in Paris, as a report")
    assert report == WeatherReport(city="Paris", temperature=21.5, sunny=True)
    if model == "llama3.2":
        sent = ollama.recorder.bodies("/api/chat")[-1]
        if method == "json_schema":
            assert sent["format"]["properties"].keys() == {"city", "temperature", "sunny"}
        else:  # a forced call of one function: Ollama is offered that function only
            assert [t["function"]["name"] for t in sent["tools"]] == ["WeatherReport"]


@pytest.mark.parametrize("model", MODELS)
async def test_a_streamed_tool_call_merges_from_its_chunks(gateway: TestClient, model: str) -> None:
    merged: AIMessageChunk | None = None
    pieces = 0
    async for chunk in chat_model(gateway, model).bind_tools([get_current_weather]).astream("Weather in Paris?"):
        assert isinstance(chunk, AIMessageChunk)
        pieces += bool(chunk.tool_call_chunks)
        merged = chunk if merged is None else merged + chunk
    assert merged is not None and pieces >= 2  # the id and name, then the arguments
    (call,) = merged.tool_calls
    assert (call["name"], call["args"]) == ("get_current_weather", {"location": "Paris", "unit": "Paris"})

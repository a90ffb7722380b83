"""The AI SDK with its community Ollama provider (npm `ollama-ai-provider-v2`), unchanged,
against the gateway's Ollama API: generateText, streamText, a tool round trip, embedMany, a
wrong key and the provider's completion model (refused), in one Node process
(tests/support/node/ai_sdk_ollama.mjs), served by Ollama and through the fallback.

The provider sends fields Ollama does not document and ignores (top-level `temperature`,
`top_p`, `max_output_tokens`, a `tool_choice` with every tool list): the gateway accepts
them, passes them to Ollama untouched and gives them no effect on the fallback either, as
docs/ollama-api.md says. A tool result's `tool_call_id` ties it to its call on the fallback.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import TOKEN, GatewayFactory, RunningUpstream
from tests.support.node_clients import needs_package, run_node
from tests.support.upstreams.openai import TOKENS

pytestmark = needs_package("ollama-ai-provider-v2")

STREAM_PARTS = ["start", "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish"]
ASKED = {"name": "get_current_weather", "input": {"location": "Paris", "format": "celsius"}}
TOOL_SAID = '{"location":"Paris","temperature":21}'
# The cases' chat requests, in the order the script makes them.
GENERATED, WITH_SETTINGS, WITH_OPTIONS, STREAMED, TOOL_CALLED, TOOL_ANSWERED, STREAMED_TOOL_CALL = range(7)


async def ai_sdk_ollama(gateway: TestClient, chat_model: str, tool_model: str) -> dict[str, Any]:
    return await run_node("ai_sdk_ollama.mjs", str(gateway.make_url("")), TOKEN, "not-a-key", chat_model, tool_model)


def distinct(types: list[str]) -> list[str]:
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


def assert_the_round_trip(result: dict[str, Any]) -> str:
    """The model called the tool, the SDK ran it and sent the result back, the model answered;
    the stream carried the call whole. The call's id, as the SDK knows it."""
    called, answered = result["toolRoundTrip"]["steps"]
    assert [{"name": c["name"], "input": c["input"]} for c in called["calls"]] == [ASKED]
    assert called["finishReason"] == "tool-calls" and called["results"] == [{"location": "Paris", "temperature": 21}]
    assert answered["text"] == result["toolRoundTrip"]["text"] == f"The tool said: {TOOL_SAID}"
    streamed = result["streamedToolCall"]
    assert [p for p in streamed["parts"] if p["type"] == "tool-call"] == [{"type": "tool-call", **ASKED}]
    assert streamed["finishReason"] == "tool-calls"
    call_id: str = called["calls"][0]["id"]
    return call_id


def assert_refusals_are_api_call_errors(result: dict[str, Any]) -> None:
    """The provider reads errors in OpenAI's shape, not Ollama's `{"error": "..."}`: its message
    is the status text, and the gateway's message is in the body it keeps. Its completion
    model always sends a top-level `stop`, which /api/generate does not know."""
    assert result["wrongToken"] == {"error": {"name": "AI_APICallError", "message": "Unauthorized",
                                              "statusCode": 401, "responseBody": '{"error":"invalid token"}'}}
    assert result["completionModel"] == {"error": {
        "name": "AI_APICallError", "message": "Bad Request", "statusCode": 400,
        "responseBody": '{"error":"invalid request: unknown field(s): stop @ $"}'}}


async def test_served_by_ollama(make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url)
    result = await ai_sdk_ollama(gateway, "gemma3:1b", "llama3.2")
    generated = result["generated"]
    assert (generated["text"], generated["finishReason"]) == ("Hello", "stop")
    assert (generated["usage"]["inputTokens"], generated["usage"]["outputTokens"]) == (122, 33)
    assert result["withSettings"]["text"] == result["withOptions"]["text"] == "Hello"
    streamed = result["streamed"]
    assert distinct([p["type"] for p in streamed["parts"]]) == STREAM_PARTS and streamed["finishReason"] == "stop"
    sent = ollama.recorder.bodies("/api/chat")
    assert len(sent) == 7 and openai.recorder.bodies("/v1/chat/completions") == []
    assert sent[GENERATED] == {"model": "gemma3:1b", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
        "think": False, "stream": True}
    # What Ollama ignores reaches it as the client sent it, as if the gateway were not there.
    settings = {"temperature": 0, "top_p": 0.5, "max_output_tokens": 50}
    assert {name: sent[WITH_SETTINGS].get(name) for name in settings} == settings
    assert sent[WITH_OPTIONS]["options"] == {"temperature": 0, "top_p": 0.5, "num_predict": 50}
    call_id = assert_the_round_trip(result)
    assistant, tool_result = sent[TOOL_ANSWERED]["messages"][-2:]
    assert assistant["tool_calls"] == [{"id": call_id, "type": "function", "function": {
        "name": ASKED["name"], "arguments": ASKED["input"]}}]
    assert tool_result == {"role": "tool", "tool_call_id": call_id, "content": TOOL_SAID}
    assert sent[TOOL_CALLED]["tool_choice"] == sent[STREAMED_TOOL_CALL]["tool_choice"] == "auto"
    embedded = result["embedded"]
    assert embedded["sizes"] == [768, 768] and embedded["usage"] == {"tokens": 21}  # the recorded vectors
    assert_refusals_are_api_call_errors(result)
    assert ollama.recorder.bodies("/api/generate") == []


async def test_through_the_fallback(make_gateway: GatewayFactory, dead_url: URL, openai: RunningUpstream) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)
    result = await ai_sdk_ollama(gateway, "gpt-test", "gpt-test")
    generated = result["generated"]
    assert (generated["text"], generated["finishReason"]) == ("".join(TOKENS), "stop")
    assert (generated["usage"]["inputTokens"], generated["usage"]["outputTokens"]) == (7, len(TOKENS))
    streamed = result["streamed"]
    assert [p["text"] for p in streamed["parts"] if p["type"] == "text-delta"] == TOKENS
    assert distinct([p["type"] for p in streamed["parts"]]) == STREAM_PARTS and streamed["finishReason"] == "stop"
    sent = openai.recorder.bodies("/v1/chat/completions")
    assert len(sent) == 7 and sent[GENERATED]["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    # The top-level settings have no effect here either, as on Ollama; `options` are translated.
    assert not {"temperature", "top_p", "max_tokens", "max_completion_tokens"} & sent[WITH_SETTINGS].keys()
    assert (sent[WITH_OPTIONS]["temperature"], sent[WITH_OPTIONS]["top_p"], sent[WITH_OPTIONS]["max_tokens"]) == (
        0, 0.5, 50)
    call_id = assert_the_round_trip(result)
    assistant, tool_result = sent[TOOL_ANSWERED]["messages"][-2:]
    assert [call["id"] for call in assistant["tool_calls"]] == [call_id]  # the provider's own id, kept
    assert tool_result == {"role": "tool", "content": TOOL_SAID, "tool_call_id": call_id}
    assert "tool_choice" not in sent[TOOL_CALLED] and "tool_choice" not in sent[STREAMED_TOOL_CALL]
    embedded = result["embedded"]
    assert embedded["heads"] == [[3.0, 0.0, 0.5], [5.0, 1.0, 0.5]] and embedded["usage"] == {"tokens": 2}
    assert openai.recorder.bodies("/v1/embeddings") == [{"model": "nomic-embed-text", "input": ["one", "three"]}]
    assert_refusals_are_api_call_errors(result)
    assert openai.recorder.bodies("/v1/completions") == []

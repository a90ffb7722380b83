"""The Vercel AI SDK in Node: `@ai-sdk/openai`'s default provider `openai(model)` calls
/v1/responses; `generateText` and `streamText` run unchanged against a real gateway.

The packages are pinned in tests/support/node/package.json and its lockfile, installed by the
Makefile with `npm ci`; the client runs as a separate Node process (tests/support/node/ai_sdk_client.mjs)
talking HTTP to the gateway like any deployed application.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.app import TOKEN, GatewayFactory, RunningUpstream
from tests.support.node_clients import needs_package, run_node
from tests.support.upstreams.openai import TOKENS

pytestmark = needs_package("ai")


async def ai_sdk(gateway: TestClient, model: str, script: str = "ai_sdk_client.mjs") -> dict[str, Any]:
    return await run_node(script, str(gateway.make_url("/v1")), TOKEN, model)


STREAM_PARTS = ["start", "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish"]


def distinct(parts: list[str]) -> list[str]:
    return [part for i, part in enumerate(parts) if i == 0 or parts[i - 1] != part]


async def test_generate_and_stream_text_served_by_ollama(gateway: TestClient, ollama: RunningUpstream) -> None:
    result = await ai_sdk(gateway, "gemma3:1b")
    generated, streamed = result["generated"], result["streamed"]
    assert generated["text"] == "2 + 2 = 4\n" and generated["finishReason"] == "stop"
    assert (generated["usage"]["inputTokens"], generated["usage"]["outputTokens"]) == (128, 9)
    assert generated["responseId"].startswith("resp_")
    assert streamed["deltas"] == ["2", " +", " ", "2", " =", " ", "4", "\n"]  # Ollama's own tokens
    assert distinct(streamed["partTypes"]) == STREAM_PARTS and streamed["errors"] == []
    assert streamed["finishReason"] == "stop" and streamed["usage"]["outputTokens"] == 9
    first = ollama.recorder.bodies("/api/chat")[0]
    assert first["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]


async def test_generate_and_stream_text_through_fallback(gateway: TestClient, openai: RunningUpstream) -> None:
    result = await ai_sdk(gateway, "missing-locally")
    generated, streamed = result["generated"], result["streamed"]
    assert generated["text"] == "".join(TOKENS) and generated["finishReason"] == "stop"
    assert generated["usage"]["outputTokens"] == len(TOKENS)
    assert streamed["deltas"] == TOKENS and distinct(streamed["partTypes"]) == STREAM_PARTS
    assert streamed["finishReason"] == "stop"
    assert [b["stream"] for b in openai.recorder.bodies("/v1/chat/completions")] == [True, True]


async def test_a_cut_stream_is_an_error_part_not_a_short_answer(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    result = await ai_sdk(gateway, "midstream-error")
    # The single shot is read from the upstream as a stream too: cut, it is an error, not a short text.
    assert result["generated"] == {
        "error": "no backend could serve the request (openai: error from the model: The model crashed.)"}
    streamed = result["streamed"]
    assert streamed["deltas"] == TOKENS[:2]
    assert "error" in streamed["partTypes"] and streamed["finishReason"] == "error"
    assert streamed["errors"] == ["error from the model: The model crashed."]


@pytest.mark.parametrize(("model", "provider"), [("llama3.2", "ollama"), ("missing-here", "openai")])
async def test_a_tool_round_trip_and_a_streamed_call(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, model: str, provider: str,
) -> None:
    """generateText runs the tool the model called and sends its result back; streamText streams the call."""
    result = await ai_sdk(gateway, model, "ai_sdk_tools.mjs")
    called, answered = result["steps"]
    asked = {"name": "get_current_weather", "input": {"location": "Paris", "format": "celsius"}}
    assert called["calls"] == [asked] and called["finishReason"] == "tool-calls"
    assert called["results"] == [{"location": "Paris", "temperature": 21}]
    assert answered["text"] == result["text"] == 'The tool said: {"location":"Paris","temperature":21}'
    assert result["streamed"]["calls"] == [asked] and "tool-call" in result["streamed"]["partTypes"]
    served = ollama.recorder.bodies("/api/chat") if provider == "ollama" else openai.recorder.bodies(
        "/v1/chat/completions")
    assert served[1]["messages"][-1]["role"] == "tool"  # the result went back to the same backend

"""Capability-aware routing: a backend that cannot do what a request asks is skipped before
anything is sent (or, when only its 400 tells, right after), the next one serves, and when
none can, a 400 names the field and every backend that refused, with its reason."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openai import BadRequestError

from tests.support.app import GatewayFactory, RunningUpstream
from tests.surfaces.openai.test_chat_features import ASK, PNG_URL, TOOLS
from tests.surfaces.openai.test_openai_compat import client_for

IMAGE_BY_URL: Any = [{"role": "user", "content": [
    {"type": "text", "text": "What is this?"},
    {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data/"}}]}]


async def test_a_model_without_tools_is_skipped_on_what_api_show_says(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(model="gemma3:1b", messages=ASK, tools=TOOLS)
        # The capabilities are remembered: a second request does not ask /api/show again.
        await client.chat.completions.create(model="gemma3:1b", messages=ASK, tools=TOOLS)
    assert completion.choices[0].message.tool_calls[0].function.name == "get_current_weather"
    assert ollama.recorder.paths() == ["/api/show"]  # asked what gemma3:1b can do; never sent the chat
    assert len(openai.recorder.bodies("/v1/chat/completions")) == 2


async def test_when_no_backend_can_the_400_names_the_field_and_who_refused(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url)
    async with client_for(gateway) as client:
        with pytest.raises(BadRequestError) as refused:
            await client.chat.completions.create(model="gemma3:1b", messages=ASK, tools=TOOLS)
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "unsupported_capability"
    assert "model 'gemma3:1b' on Ollama does not support tools @ $.tools" in error["message"]
    assert error["attempts"] == [{"backend": "ollama", "status": 400, "code": "unsupported_capability",
                                  "message": "model 'gemma3:1b' on Ollama does not support tools @ $.tools"}]
    assert ollama.recorder.bodies("/api/chat") == []


async def test_an_ollama_that_lists_no_capabilities_is_tried_and_its_400_passes_the_request_on(
    gateway: TestClient, make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        stream = await client.chat.completions.create(model="old-ollama", messages=ASK, tools=TOOLS, stream=True)
        calls = [d for c in [c async for c in stream] if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert calls[0].function.name == "get_current_weather"
    assert [b["model"] for b in ollama.recorder.bodies("/api/chat")] == ["old-ollama"]  # tried first
    assert openai.recorder.bodies("/v1/chat/completions")[-1]["tools"] == TOOLS
    alone = await make_gateway(ollama_base_url=ollama.url)
    response = await alone.post("/v1/chat/completions", json={"model": "old-ollama", "messages": ASK, "tools": TOOLS})
    assert response.status == 400
    message = (await response.json())["error"]["message"]
    assert "registry.ollama.ai/library/old-ollama does not support tools @ $.tools" in message


async def test_an_image_url_is_never_fetched_and_only_a_backend_that_fetches_gets_it(
    gateway: TestClient, make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(model="llava", messages=IMAGE_BY_URL)
    url = IMAGE_BY_URL[0]["content"][1]["image_url"]["url"]
    assert completion.choices[0].message.content == f"I see 1 image(s) of {len(url)} bytes."  # the URL it got
    assert ollama.recorder.requests == []
    sent = openai.recorder.bodies("/v1/chat/completions")[-1]["messages"][0]["content"]
    assert sent[1] == IMAGE_BY_URL[0]["content"][1]  # passed on as is
    alone = await make_gateway(ollama_base_url=ollama.url)
    response = await alone.post("/v1/chat/completions", json={"model": "llava", "messages": IMAGE_BY_URL})
    assert response.status == 400
    error = (await response.json())["error"]
    assert "the gateway never fetches image URLs" in error["message"]
    assert "@ $.messages[0].content" in error["message"] and error["attempts"][0]["backend"] == "ollama"
    assert ollama.recorder.requests == []


async def test_images_skip_a_model_without_vision(gateway: TestClient, ollama: RunningUpstream) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}]
    async with client_for(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(model="llama3.2", messages=messages)
    assert raw.headers["X-Gateway-Provider"] == "openai"
    assert ollama.recorder.paths() == ["/api/show"]


async def test_logprobs_and_logit_bias_go_to_a_backend_that_has_them(
    gateway: TestClient, make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(
            model="gemma3:1b", messages=ASK, logprobs=True, top_logprobs=2, logit_bias={"50256": -100})
    assert completion.choices[0].logprobs is not None
    assert completion.choices[0].logprobs.content[0].token == "Hello"
    sent = openai.recorder.bodies("/v1/chat/completions")[-1]
    assert (sent["logprobs"], sent["top_logprobs"], sent["logit_bias"]) == (True, 2, {"50256": -100.0})
    assert ollama.recorder.requests == []
    alone = await make_gateway(ollama_base_url=ollama.url)
    response = await alone.post("/v1/chat/completions", json={"model": "gemma3:1b", "messages": ASK,
                                                              "logit_bias": {"50256": -100}})
    assert response.status == 400
    assert "Ollama has no logit_bias @ $.logit_bias" in (await response.json())["error"]["message"]


async def test_penalties_seed_and_stop_reach_both_kinds_in_their_own_names(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    asked: dict[str, Any] = {"frequency_penalty": 0.5, "presence_penalty": -0.25, "seed": 7, "stop": ["\n\n"],
                             "max_completion_tokens": 40, "user": "user-4471"}
    async with client_for(gateway) as client:
        for model in ("gemma3:1b", "missing-here"):
            await client.chat.completions.create(model=model, messages=ASK, **asked)
    options = ollama.recorder.bodies("/api/chat")[0]["options"]
    assert options == {"frequency_penalty": 0.5, "presence_penalty": -0.25, "seed": 7, "stop": ["\n\n"],
                       "num_predict": 40}
    sent = openai.recorder.bodies("/v1/chat/completions")[-1]
    assert {k: sent[k] for k in ("frequency_penalty", "presence_penalty", "seed", "stop", "max_tokens")} == {
        "frequency_penalty": 0.5, "presence_penalty": -0.25, "seed": 7, "stop": ["\n\n"], "max_tokens": 40}
    assert "user-4471" not in str(ollama.recorder.requests) + str(openai.recorder.requests)


async def test_token_arrays_are_embedded_by_an_openai_compatible_backend_only(
    gateway: TestClient, make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        many = await client.embeddings.create(model="nomic-embed-text", input=[[15339, 1917], [9906]])
        one = await client.embeddings.create(model="nomic-embed-text", input=[15339, 1917, 0])
    assert [len(d.embedding) for d in many.data] == [3, 3] and len(one.data) == 1
    assert [b["input"] for b in openai.recorder.bodies("/v1/embeddings")] == [[[15339, 1917], [9906]],
                                                                              [15339, 1917, 0]]
    assert ollama.recorder.requests == []
    alone = await make_gateway(ollama_base_url=ollama.url)
    response = await alone.post("/v1/embeddings", json={"model": "nomic-embed-text", "input": [[1, 2]]})
    assert response.status == 400
    assert "Ollama embeds text, not token arrays @ $.input" in (await response.json())["error"]["message"]

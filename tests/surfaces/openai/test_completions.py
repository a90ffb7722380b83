"""POST /v1/completions through the official `openai` client's `completions.create`.

Served by Ollama's /api/generate (the replayed recordings of a real Ollama), and through
fallback by the OpenAI test server's /completions. The client cannot tell which served,
except by the answer itself.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from openai import APIError, BadRequestError, NotFoundError

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.openai_client import client_for
from tests.support.upstreams.openai import TOKENS

# Recorded from a real Ollama (tests/support/data/ollama_transcripts.json: generate_stream). A single shot is
# read from the upstream as a stream too (backends/assemble.py), so it gets the same answer.
STREAMED = "Okay, here we go!\n\n1, 2, 3, 4, 5\n"


async def test_a_fill_in_the_middle_completion_served_by_ollama(gateway: TestClient, ollama: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        raw = await client.completions.with_raw_response.create(
            model="gemma3:1b", prompt="def add(a, b):\n", suffix="\n    return total\n", max_tokens=100,
            temperature=0, stop=["\n\n\n"], seed=7)
        completion = raw.parse()
        assert raw.headers["X-Gateway-Provider"] == "ollama"
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    assert completion.model == "gemma3:1b"
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [(0, STREAMED, "stop")]
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (16, 22)
    sent = ollama.recorder.bodies("/api/generate")[-1]
    assert sent == {"model": "gemma3:1b", "prompt": "def add(a, b):\n", "suffix": "\n    return total\n",
                    "stream": True,
                    "options": {"num_predict": 100, "temperature": 0.0, "stop": ["\n\n\n"], "seed": 7}}


async def test_a_streamed_completion_served_by_ollama_with_usage(gateway: TestClient) -> None:
    async with client_for(gateway) as client:
        stream = await client.completions.create(
            model="gemma3:1b", prompt=["Count from 1 to 5"], stream=True, stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    assert all(c.object == "text_completion" for c in chunks) and len({c.id for c in chunks}) == 1
    assert "".join(c.choices[0].text for c in chunks if c.choices) == STREAMED
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (16, 22)


async def test_completions_fall_back_to_the_openai_upstream(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        raw = await client.completions.with_raw_response.create(
            model="missing-locally", prompt="def add(a, b):\n", suffix="    return total\n", max_tokens=16)
        completion = raw.parse()
        stream = await client.completions.create(model="missing-locally", prompt="Say hi", stream=True)
        pieces = [c.choices[0].text async for c in stream if c.choices and c.choices[0].text]
    assert raw.headers["X-Gateway-Provider"] == "openai"
    assert completion.choices[0].text == "".join(TOKENS) and completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == len(TOKENS)
    assert pieces == TOKENS  # one chunk per upstream token, in order
    single, streamed = openai.recorder.bodies("/v1/completions")
    assert single["suffix"] == "    return total\n" and single["max_tokens"] == 16 and single["stream"] is True
    assert streamed["prompt"] == "Say hi" and streamed["stream"] is True
    assert [b["model"] for b in ollama.recorder.bodies("/api/generate")] == ["missing-locally"] * 2


async def test_several_prompts_are_several_choices_each_its_own_upstream_call(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    async with client_for(gateway) as client:
        completion = await client.completions.create(
            model="gemma3:1b", prompt=["Hello, how are you?", "And you?", "Bye."], echo=True)
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, "Hello, how are you?" + STREAMED), (1, "And you?" + STREAMED), (2, "Bye." + STREAMED)]
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3 * 16, 3 * 22)
    sent = sorted(body["prompt"] for body in ollama.recorder.bodies("/api/generate"))
    assert sent == ["And you?", "Bye.", "Hello, how are you?"]


async def test_failing_prompts_fail_the_request_with_their_error(gateway: TestClient) -> None:
    """All or nothing, as OpenAI answers: never a list of choices with one silently missing."""
    async with client_for(gateway) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.completions.create(model="missing-everywhere", prompt=["a", "b"])
    assert missing.value.code == "model_not_found"


async def test_echo_is_done_by_the_gateway_for_every_backend(gateway: TestClient, openai: RunningUpstream) -> None:
    async with client_for(gateway) as client:
        local = await client.completions.create(model="gemma3:1b", prompt="Hello, how are you?", echo=True)
        stream = await client.completions.create(model="missing-x", prompt="Say: ", echo=True, stream=True)
        streamed = "".join([c.choices[0].text async for c in stream if c.choices])
    assert local.choices[0].text == "Hello, how are you?" + STREAMED
    assert streamed == "Say: " + "".join(TOKENS)
    assert "echo" not in openai.recorder.bodies("/v1/completions")[-1]  # never doubled by an upstream that can


async def test_a_completion_cut_mid_stream_raises_in_the_client(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    received: list[str] = []
    async with client_for(gateway) as client:
        stream = await client.completions.create(model="midstream-error", prompt="hi", stream=True)

        async def read_all() -> None:
            async for chunk in stream:
                received.append(chunk.choices[0].text)

        with pytest.raises(APIError) as raised:
            await read_all()
    assert received == TOKENS[:2]
    assert raised.value.code == "upstream_unavailable"


@pytest.mark.parametrize(("extra", "param", "problem"), [
    ({"temperature": 3}, "temperature", "must be between 0 and 2"),
    ({"prompt": ["one", "two"], "stream": True}, "prompt", "a stream takes one prompt"),
    ({"prompt": ["one", ""]}, "prompt", "must not be empty"),
    ({"prompt": [[1, 2, 3]]}, "prompt", "token arrays are not supported"),
    ({"prompt": ""}, "prompt", "must not be empty"),
    ({"suffix": 5}, "suffix", "expected a string"),
    ({"logprobs": 2}, "logprobs", "is not supported by this gateway"),
    ({"best_of": 3}, "best_of", "only n=1 is supported"),
    ({"echo": "yes"}, "echo", "expected true or false"),
    ({"stream_options": {"include_usage": 1}}, "stream_options.include_usage", "expected true or false"),
    ({"max_tokens": 0}, "max_tokens", "must be at least 1"),
])
async def test_bad_completion_input_is_refused_by_name_before_any_upstream_call(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, extra: dict, param: str, problem: str,
) -> None:
    async with client_for(gateway) as client:
        with pytest.raises(BadRequestError) as refused:
            await client.completions.create(**{"model": "gemma3:1b", "prompt": "x", **extra})
    assert refused.value.param == param
    assert refused.value.code == "invalid_input" and problem in refused.value.message
    assert ollama.recorder.requests == [] and openai.recorder.requests == []

"""Log probabilities, single and streamed, on /v1 and on the Ollama API through the fallback:
what an OpenAI-compatible upstream sends per chunk (`choices[0].logprobs.content`) reaches
the client per chunk, the official clients unchanged. A single shot with logprobs is read as
a stream like any other (bounded by silence, not by a whole-answer wait). Ollama (0.12.11
and later) serves them on /v1 too; an older one, which sends none, passes the request on."""

from __future__ import annotations

from typing import Any

import ollama
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.surfaces.openai.test_chat_features import ASK
from tests.surfaces.openai.test_openai_compat import client_for

TOKENS = ["Hello", " from", " the", " fallback."]  # the OpenAI test server's answer, word by word


def sent(openai: RunningUpstream) -> dict[str, Any]:
    [*_, last] = openai.recorder.bodies("/v1/chat/completions")
    return last


@pytest.fixture
async def fallback(make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL) -> TestClient:
    """A gateway whose Ollama is unreachable: the OpenAI test server serves."""
    return await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)


def tokens_of(entries: Any) -> list[str]:
    return [entry["token"] if isinstance(entry, dict) else entry.token for entry in entries]


async def test_a_single_answer_carries_every_tokens_logprobs(fallback: TestClient, openai: RunningUpstream) -> None:
    async with client_for(fallback) as client:
        completion = await client.chat.completions.create(model="gpt-test", messages=ASK, logprobs=True,
                                                          top_logprobs=2)
    choice = completion.choices[0]
    assert choice.message.content == "".join(TOKENS)
    assert tokens_of(choice.logprobs.content) == TOKENS
    first = choice.logprobs.content[0]
    assert (first.logprob, first.bytes) == (-0.25, list(b"Hello"))
    assert [(t.token, t.logprob) for t in first.top_logprobs] == [("Hello", -0.25), ("alt1", -3.0)]
    assert (sent(openai)["stream"], sent(openai)["logprobs"], sent(openai)["top_logprobs"]) == (True, True, 2)


async def test_a_stream_carries_each_chunks_logprobs(fallback: TestClient) -> None:
    async with client_for(fallback) as client:
        stream = await client.chat.completions.create(model="gpt-test", messages=ASK, logprobs=True,
                                                      top_logprobs=1, stream=True)
        chunks = [chunk async for chunk in stream]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == TOKENS
    logged = [c.choices[0] for c in chunks if c.choices and c.choices[0].logprobs is not None]
    assert [tokens_of(choice.logprobs.content) for choice in logged] == [[token] for token in TOKENS]
    assert all(choice.delta.content == choice.logprobs.content[0].token for choice in logged)
    assert all(len(choice.logprobs.content[0].top_logprobs) == 1 for choice in logged)


async def test_without_logprobs_asked_no_chunk_carries_any(fallback: TestClient, openai: RunningUpstream) -> None:
    async with client_for(fallback) as client:
        stream = await client.chat.completions.create(model="gpt-test", messages=ASK, stream=True)
        chunks = [chunk async for chunk in stream]
    assert all(c.choices[0].logprobs is None for c in chunks if c.choices)
    assert "logprobs" not in sent(openai)


# --- the Ollama API, served by the fallback ------------------------------------------------


@pytest.fixture
async def ollama_client(fallback: TestClient) -> Any:
    client = ollama.AsyncClient(host=str(fallback.make_url("")), headers=AUTH)
    yield client
    await client.close()


async def test_ollama_chat_logprobs_through_the_fallback(ollama_client: ollama.AsyncClient,
                                                         openai: RunningUpstream) -> None:
    answer = await ollama_client.chat(model="gpt-test", messages=ASK, logprobs=True, top_logprobs=2)
    assert answer.message.content == "".join(TOKENS)
    assert tokens_of(answer.logprobs) == TOKENS
    assert [(t.token, t.logprob) for t in answer.logprobs[0].top_logprobs] == [("Hello", -0.25), ("alt1", -3.0)]
    assert (sent(openai)["logprobs"], sent(openai)["top_logprobs"]) == (True, 2)

    parts = [part async for part in await ollama_client.chat(model="gpt-test", messages=ASK, logprobs=True,
                                                             stream=True)]
    logged = [part for part in parts if part.logprobs]
    assert [part.message.content for part in logged] == TOKENS
    assert [tokens_of(part.logprobs) for part in logged] == [[token] for token in TOKENS]
    assert parts[-1].done and not parts[-1].logprobs


async def test_ollama_generate_logprobs_through_the_fallback(ollama_client: ollama.AsyncClient) -> None:
    answer = await ollama_client.generate(model="gpt-test", prompt="Say hello", logprobs=True)
    assert answer.response == "".join(TOKENS)
    assert tokens_of(answer.logprobs) == TOKENS


async def test_top_logprobs_chat_completions_cannot_take_are_not_sent_to_the_fallback(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post("/api/chat", headers=AUTH, json={
        "model": "gpt-test", "messages": ASK, "logprobs": True, "top_logprobs": 25})
    assert response.status == 400
    error = (await response.json())["error"]
    assert "chat completions take top_logprobs from 0 to 20 @ $.top_logprobs" in error
    assert openai.recorder.requests == []


async def test_ollama_api_logprobs_go_to_ollama_as_they_were_sent(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    """Ollama has logprobs of its own: a request on its API that asks for them is Ollama's to serve."""
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url)
    response = await gateway.post("/api/chat", headers=AUTH, json={
        "model": "gemma3:1b", "messages": ASK, "stream": False, "logprobs": True, "top_logprobs": 3})
    assert response.status == 200, await response.text()
    assert response.headers["X-Gateway-Provider"] == "ollama"
    [asked] = ollama.recorder.bodies("/api/chat")
    assert (asked["logprobs"], asked["top_logprobs"]) == (True, 3)
    assert openai.recorder.requests == []


# --- /v1 served by Ollama ------------------------------------------------------------------

OLLAMA_TOKENS = ["Hello"]  # the Ollama test server's plain answer


async def test_ollama_serves_v1_logprobs_single_and_streamed(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url)
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(model="llama3.2", messages=ASK, logprobs=True,
                                                          top_logprobs=2)
        stream = await client.chat.completions.create(model="llama3.2", messages=ASK, logprobs=True, stream=True)
        chunks = [chunk async for chunk in stream]
    [entry] = completion.choices[0].logprobs.content
    assert (entry.token, entry.logprob, entry.bytes) == ("Hello", -0.5, list(b"Hello"))
    assert [(t.token, t.logprob, t.bytes) for t in entry.top_logprobs] == [("Hello", -0.5, None), ("alt1", -2.0, None)]
    logged = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs is not None]
    assert [tokens_of(lp.content) for lp in logged] == [OLLAMA_TOKENS]
    assert logged[0].content[0].top_logprobs == []  # none asked for: Ollama leaves them out, OpenAI says []
    asked = ollama.recorder.bodies("/api/chat")
    assert [(b["logprobs"], b.get("top_logprobs"), b["stream"]) for b in asked] == [(True, 2, True), (True, None, True)]
    assert openai.recorder.requests == []


async def test_an_ollama_that_sends_no_logprobs_passes_the_request_on(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    """An Ollama before 0.12.11 ignores `logprobs`: its answer, without them, is not passed on
    as if they had been given; the next backend serves, or a 400 names the field."""
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url)
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(model="old-ollama", messages=ASK, logprobs=True)
    assert tokens_of(completion.choices[0].logprobs.content) == TOKENS  # the fallback's
    assert [b["model"] for b in ollama.recorder.bodies("/api/chat")] == ["old-ollama"]  # tried first

    alone = await make_gateway(ollama_base_url=ollama.url)
    response = await alone.post("/v1/chat/completions", headers=AUTH, json={
        "model": "old-ollama", "messages": ASK, "logprobs": True})
    assert response.status == 400
    assert "this Ollama sent no logprobs (they came in Ollama 0.12.11) @ $.logprobs" in (
        await response.json())["error"]["message"]


async def test_ollama_api_single_answer_keeps_the_logprobs_of_every_line(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    """A single answer on the Ollama API is rebuilt from Ollama's stream: the `logprobs` of
    every line go into it, as Ollama's own single answer gathers them (server/routes.go)."""
    gateway = await make_gateway(ollama_base_url=ollama.url)
    response = await gateway.post("/api/chat", headers=AUTH, json={
        "model": "llama3.2", "messages": ASK, "stream": False, "logprobs": True, "top_logprobs": 2})
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["message"]["content"] == "".join(OLLAMA_TOKENS)
    assert tokens_of(answer["logprobs"]) == OLLAMA_TOKENS
    assert answer["logprobs"][0]["top_logprobs"] == [{"token": "Hello", "logprob": -0.5},
                                                     {"token": "alt1", "logprob": -2.0}]
    assert answer["done"] is True

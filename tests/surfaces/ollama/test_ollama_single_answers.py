"""A single answer (`"stream": false`) on /api/chat and /api/generate served by an Ollama
backend: asked of Ollama as a stream and rebuilt as Ollama's own single answer, so that a
long answer from a slow model is bounded by its silences, not cut by the wait for a
whole answer. The rebuilt shape is checked against the recorded real single answers
(tests/support/data/ollama_transcripts.json, carried from the shared Ollama replay kit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import ollama
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.resilience import assert_nothing_in_flight
from tests.support.upstreams.faults import FaultyOllama
from tests.support.upstreams.ollama import transcript
from tests.support.upstreams.scripted import Answer, ScriptedUpstream

FAST_TIMERS = {"backend_timeout": 0.5, "headers_timeout": 0.2, "first_token_timeout": 0.4, "idle_timeout": 0.3}


def keys_in_order(answer: dict) -> list[str]:
    return list(answer) + [f"message.{key}" for key in answer.get("message") or {}]


async def test_a_chat_single_answer_is_ollamas_own_rebuilt_from_its_stream(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    response = await gateway.post("/api/chat", json={"model": "gemma3:1b", "stream": False, "messages": [
        {"role": "user", "content": "2+2?"}]})
    assert response.status == 200 and response.headers["X-Gateway-Provider"] == "ollama"
    answer = orjson.loads(await response.read())
    # The recorded stream (chat_stream), joined as Ollama's server joins it for stream false:
    # the recorded single answer to the same chat, field for field and in the same order.
    recorded = orjson.loads(transcript("chat_nonstream")["body"])
    assert answer == recorded and keys_in_order(answer) == keys_in_order(recorded)
    assert ollama.recorder.bodies("/api/chat")[-1]["stream"] is True


async def test_a_generate_single_answer_keeps_the_final_lines_fields_context_included(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    response = await gateway.post("/api/generate", json={"model": "gemma3:1b", "prompt": "Count", "stream": False})
    answer = orjson.loads(await response.read())
    lines = [orjson.loads(line) for line in transcript("generate_stream")["body_lines"]]
    assert answer == {**lines[-1], "response": "".join(line["response"] for line in lines)}
    assert answer["response"].startswith("Okay, here") and answer["context"] == lines[-1]["context"]
    # The same fields in the same order as a real Ollama's own single answer (generate_nonstream).
    assert keys_in_order(answer) == keys_in_order(orjson.loads(transcript("generate_nonstream")["body"]))
    assert ollama.recorder.bodies("/api/generate")[-1]["stream"] is True


async def test_thinking_and_tool_calls_are_collected_from_the_lines(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    client = ollama_client(gateway)
    try:
        thought = await client.chat(model="qwen3:8b", think=True, messages=[{"role": "user", "content": "2+2?"}])
        assert thought.message.thinking == "Two and two make four." and thought.message.content == "Hello"
        assert (thought.prompt_eval_count, thought.eval_count, thought.done_reason) == (122, 33, "stop")
        tools = [{"type": "function", "function": {"name": "weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}]
        called = await client.chat(model="llama3.2", tools=tools, messages=[{"role": "user", "content": "Paris?"}])
        assert called.message.tool_calls is not None
        assert [(c.function.name, c.function.arguments) for c in called.message.tool_calls] == [
            ("weather", {"city": "Paris"})]
    finally:
        await client.close()
    assert [body["stream"] for body in ollama.recorder.bodies("/api/chat")] == [True, True]


def ollama_client(gateway: TestClient) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=str(gateway.make_url("")), headers=AUTH)


@pytest.fixture
def faulty() -> FaultyOllama:
    return FaultyOllama(trickle_tokens=30, trickle_delay=0.05)


@pytest.fixture
async def slow_gateway(
    make_gateway: GatewayFactory, aiohttp_server: Callable[..., Awaitable[TestServer]], faulty: FaultyOllama,
) -> TestClient:
    server = await aiohttp_server(faulty.app())
    return await make_gateway(ollama_base_url=server.make_url(""), **FAST_TIMERS)


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
async def test_a_long_answer_written_slowly_comes_back_whole(
    slow_gateway: TestClient, faulty: FaultyOllama, path: str,
) -> None:
    # 30 lines 0.05 s apart: far longer in all than LLM_BACKEND_TIMEOUT (0.5 s) and the idle
    # timer (0.3 s), which no gap comes near. Asked whole, Ollama would have been silent throughout.
    client = ollama_client(slow_gateway)
    try:
        if path == "/api/chat":
            chat = await client.chat(model="trickle", messages=[{"role": "user", "content": "hi"}], stream=False)
            text, count = chat.message.content, chat.eval_count
        else:
            generated = await client.generate(model="trickle", prompt="hi", stream=False)
            text, count = generated.response, generated.eval_count
            assert generated.context == [105, 2364, 107]
    finally:
        await client.close()
    assert text == "".join(f" t{i}" for i in range(30)) and count == 30
    assert [seen.json["stream"] for seen in faulty.recorder.requests] == [True]


@pytest.mark.parametrize(("model", "settings", "message"), [
    ("hang-after-2", {}, "upstream silent for 0.3 s (PROXY_IDLE_TIMEOUT)"),
    ("trickle", {"max_request_seconds": 0.6}, "no complete answer within 0.6 s (PROXY_MAX_REQUEST_SECONDS)"),
])
async def test_a_single_answer_that_stalls_or_runs_too_long_names_the_timer_and_its_setting(
    make_gateway: GatewayFactory, aiohttp_server: Callable[..., Awaitable[TestServer]], faulty: FaultyOllama,
    model: str, settings: dict, message: str,
) -> None:
    faulty.trickle_tokens = 1000
    server = await aiohttp_server(faulty.app())
    gateway = await make_gateway(ollama_base_url=server.make_url(""), **FAST_TIMERS, **settings)
    client = ollama_client(gateway)
    try:
        with pytest.raises(ollama.ResponseError) as raised:
            await client.generate(model=model, prompt="hi", stream=False)
    finally:
        await client.close()
    assert raised.value.status_code == 504 and message in raised.value.error
    [seen] = await faulty.recorder.settled()
    assert seen.cancelled  # the gateway hung up on the stalled stream
    await assert_nothing_in_flight(gateway)


@pytest.mark.parametrize(("lines", "status", "message"), [
    ([{"message": {"content": 5}, "done": False}], 502, "(ollama: unexpected answer: content is not a string)"),
    ([{"message": {"content": "half"}, "done": False}], 502, "(ollama: the answer ended without its final message)"),
    # Ollama's own error line, in its words, as its own single answer would have failed.
    ([{"message": {"content": "a"}, "done": False}, {"error": "model runner crashed"}], 503,
     "(ollama: model runner crashed)"),
])
async def test_a_broken_stream_is_no_single_answer(
    make_gateway: GatewayFactory, aiohttp_server: Callable[..., Awaitable[TestServer]], lines: list, status: int,
    message: str,
) -> None:
    scripted = ScriptedUpstream()
    scripted.answers["/api/chat"] = Answer(content_type="application/x-ndjson",
                                           chunks=[orjson.dumps(line) + b"\n" for line in lines])
    server = await aiohttp_server(scripted.app())
    gateway = await make_gateway(ollama_base_url=server.make_url(""))
    response = await gateway.post("/api/chat", json={"model": "m", "stream": False, "messages": [
        {"role": "user", "content": "hi"}]})
    error = await response.json()
    assert response.status == status and error == {"error": f"no backend could serve the request {message}"}

"""POST /api/v1/inference/stream: SSE framing, incremental relay, fallback, and honest endings."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.sse import events, next_block
from tests.support.upstreams.openai import OpenAIUpstream

URL_ = "/api/v1/inference/stream"


async def test_tokens_are_framed_byte_for_byte_as_the_contract_shows(gateway: TestClient) -> None:
    response = await gateway.post(URL_, json={"model_id": "gemma3:1b", "input_data": "What is 2+2?"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    raw = await response.read()  # returns only because the gateway ends the response
    tokens = ["2", " +", " ", "2", " =", " ", "4", "\n"]
    expected_tokens = b"".join(
        b'data: {"token":' + json.dumps(t).encode() + b',"done":false,"provider":"ollama"}\n\n' for t in tokens
    )
    assert raw.startswith(expected_tokens)
    final = raw[len(expected_tokens):]
    assert final.startswith(b'data: {"token":"","done":true,"provider":"ollama","latency_ms":')
    assert final.count(b"\n\n") == 1 and final.endswith(b"\n\n")
    last = events(final)[0]
    assert isinstance(last["latency_ms"], float | int)
    assert last["usage"] == {"prompt_tokens": 128, "completion_tokens": 9, "total_tokens": 137}
    assert last["finish_reason"] == "stop"
    assert b"[DONE]" not in raw


async def test_ollama_is_asked_to_stream(gateway: TestClient, ollama: RunningUpstream) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 5"}]
    response = await gateway.post(URL_, json={"model_id": "legacy-gemma", "messages": messages})
    body = events(await response.read())
    assert "".join(e["token"] for e in body).startswith("Okay")
    assert body[-1]["done"] is True and "error" not in body[-1]
    assert ollama.recorder.requests[-1].json == {"model": "legacy-gemma", "messages": messages, "stream": True}


async def test_each_token_is_relayed_before_the_upstream_sends_the_next(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.release = asyncio.Event()
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "input_data": "hi"})
    # The upstream holds back everything after its first token until released, so this
    # event can only arrive if the gateway relayed it without waiting for more.
    first = json.loads((await next_block(response))[len(b"data: "):])
    assert first == {"token": "Hello", "done": False, "provider": "openai"}
    openai_fake.release.set()
    rest = events(await response.read())
    assert "".join(e["token"] for e in rest) == " from the fallback."
    assert rest[-1]["done"] is True
    assert rest[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert openai.recorder.requests[-1].json["stream_options"] == {"include_usage": True}


async def test_idle_stream_gets_sse_comments_as_heartbeat(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.release = asyncio.Event()
    gateway = await make_gateway(openai_endpoint=openai.url, sse_heartbeat=0.01)
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "input_data": "hi"})
    assert (await next_block(response)).startswith(b"data: ")
    assert await next_block(response) == b": ping\n"
    openai_fake.release.set()
    assert events(await response.read())[-1]["done"] is True


async def test_failure_before_first_token_moves_to_next_backend_unseen(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    # The replayed Ollama 404s every "missing*" model; the OpenAI test server has this one.
    response = await gateway.post(URL_, json={"model_id": "missing-locally", "input_data": "hi"})
    assert response.status == 200
    body = events(await response.read())
    assert {e["provider"] for e in body} == {"openai"}
    assert "".join(e["token"] for e in body) == "Hello from the fallback."
    assert ollama.recorder.paths() == ["/api/chat"]


async def test_unreachable_ollama_streams_from_fallback(
    make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)
    response = await gateway.post(URL_, json={"model_id": "gpt-test", "input_data": "hi"})
    body = events(await response.read())
    assert body[-1] == {**body[-1], "done": True, "provider": "openai"}
    assert "error" not in body[-1]


async def test_every_backend_failing_before_first_token_is_a_plain_json_error(gateway: TestClient) -> None:
    response = await gateway.post(URL_, json={"model_id": "busy-model", "input_data": "hi"})
    assert response.status == 503
    assert response.content_type == "application/json"
    body = await response.json()
    assert [a["backend"] for a in body["attempts"]] == ["ollama", "openai"]

    missing = await gateway.post(URL_, json={"model_id": "missing-everywhere", "input_data": "hi"})
    assert missing.status == 404
    assert (await missing.json())["code"] == "model_not_found"


async def test_ollama_error_mid_stream_ends_with_done_and_error(gateway: TestClient, openai: RunningUpstream) -> None:
    response = await gateway.post(URL_, json={"model_id": "midstream-error", "input_data": "hi"})
    assert response.status == 200
    body = events(await response.read())
    assert [e["token"] for e in body[:-1]] == ["2", " +", " ", "2"]
    last = body[-1]
    assert last["done"] is True and last["token"] == ""
    assert last["provider"] == "ollama"
    assert last["error"]["backend"] == "ollama"
    assert "unexpected EOF" in last["error"]["message"]
    # Tokens were already sent: switching backends now would splice two answers.
    assert openai.recorder.requests == []


async def test_openai_error_event_mid_stream_ends_with_done_and_error(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post(URL_, json={"model_id": "midstream-error", "input_data": "hi"})
    body = events(await response.read())
    assert [e["token"] for e in body[:-1]] == ["Hello", " from"]
    assert body[-1]["done"] is True
    assert "The model crashed." in body[-1]["error"]["message"]


async def test_stream_cut_without_final_message_never_looks_complete(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post(URL_, json={"model_id": "cut-short", "input_data": "hi"})
    body = events(await response.read())
    assert [e["token"] for e in body[:-1]] == ["Hello", " from"]
    assert body[-1]["done"] is True
    assert body[-1]["error"]["code"] == "bad_upstream_response"
    assert "[DONE]" in body[-1]["error"]["message"]
    assert "usage" not in body[-1]

"""Odd answers from upstreams: wrong shapes, split error bodies, error frames, leaked keys.

Whatever an upstream sends, the client gets a typed answer: a string token, a 502 that
falls through to the next backend, or a stream that ends with an `error` event; never a
500, never a value of the wrong type, never the upstream's secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.sse import events
from tests.support.upstreams.scripted import Answer, ScriptedUpstream

INFER = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"
ASK = {"model_id": "m", "input_data": "hi"}


@pytest.fixture
def scripted() -> ScriptedUpstream:
    return ScriptedUpstream()


@pytest.fixture
async def scripted_url(aiohttp_server: Callable[..., Awaitable[TestServer]], scripted: ScriptedUpstream) -> str:
    return str((await aiohttp_server(scripted.app())).make_url(""))


def ndjson(*objects: object) -> list[bytes]:
    return [orjson.dumps(o) + b"\n" for o in objects]


def sse(*frames: bytes) -> list[bytes]:
    return [frame + b"\n\n" for frame in frames]


@pytest.mark.parametrize("answer", [
    {"message": "just text", "done": True},
    {"message": {"content": 5}, "done": True},
    {"message": {"content": {"a": 1}}, "done": True},
    {"message": {"content": "ok"}, "done": True, "eval_count": "nine"},
    ["not", "an", "object"],
])
async def test_ollama_answer_of_the_wrong_shape_is_502_and_falls_back(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str, openai: RunningUpstream,
    answer: object,
) -> None:
    scripted.answers["/api/chat"] = Answer(chunks=[orjson.dumps(answer)])
    alone = await make_gateway(ollama_base_url=scripted_url)
    response = await alone.post(INFER, json=ASK)
    assert response.status == 502
    assert (await response.json())["code"] == "bad_upstream_response"

    with_fallback = await make_gateway(ollama_base_url=scripted_url, openai_endpoint=openai.url)
    response = await with_fallback.post(INFER, json=ASK)
    assert response.status == 200
    assert (await response.json())["provider"] == "openai"


async def test_a_batch_item_with_a_broken_answer_fails_alone(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    scripted.answers["/api/chat"] = Answer(chunks=[b'{"message": {"content": [1]}, "done": true}'])
    gateway = await make_gateway(ollama_base_url=scripted_url)
    response = await gateway.post("/api/v1/inference/batch", json={"model_id": "m", "inputs": [
        {"input_data": "a"}, {"messages": []}]})
    assert response.status == 200
    statuses = [r["status"] for r in (await response.json())["results"]]
    assert statuses == [502, 400]


async def test_a_token_that_is_not_a_string_ends_the_stream_with_an_error(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    scripted.answers["/api/chat"] = Answer(content_type="application/x-ndjson", chunks=ndjson(
        {"message": {"content": "fine"}, "done": False},
        {"message": {"content": 5}, "done": False},
    ))
    gateway = await make_gateway(ollama_base_url=scripted_url)
    body = events(await (await gateway.post(STREAM, json=ASK)).read())
    assert [e["token"] for e in body] == ["fine", ""]
    assert all(isinstance(e["token"], str) for e in body)
    assert body[-1]["error"]["code"] == "bad_upstream_response"


async def test_error_null_is_not_an_error(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=sse(
        b'data: {"choices":[{"delta":{"content":"hi"}}],"error":null}',
        b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}',
        b"data: [DONE]",
    ))
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    body = events(await (await gateway.post(STREAM, json=ASK)).read())
    assert [e["token"] for e in body] == ["hi", ""]
    assert "error" not in body[-1]


async def test_an_sse_error_frame_mid_stream_is_never_a_clean_end(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=sse(
        b'data: {"choices":[{"delta":{"content":"Hel"}}]}',
        b'event: error\ndata: {"message":"model crashed"}',
        b"data: [DONE]",
    ))
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    body = events(await (await gateway.post(STREAM, json=ASK)).read())
    assert body[0]["token"] == "Hel"
    assert body[-1]["done"] is True
    assert "model crashed" in body[-1]["error"]["message"]


async def test_an_error_body_split_over_chunks_keeps_its_meaning(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    error = (b'{"error":{"message":"The model `m` does not exist",'
             b'"type":"invalid_request_error","code":"model_not_found"}}')
    scripted.answers["/v1/chat/completions"] = Answer(status=404, chunks=[error[:20], error[20:60], error[60:]],
                                                      gap=0.02)
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    response = await gateway.post(INFER, json=ASK)
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "model_not_found"
    assert "does not exist" in body["message"]


async def test_an_upstream_refusing_the_key_never_gets_its_text_repeated(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    refusal = b'{"error":{"message":"Incorrect API key provided: sk-SECRET-123","code":"invalid_api_key"}}'
    scripted.answers["/v1/chat/completions"] = Answer(status=401, chunks=[refusal])
    scripted.answers["/v1/models"] = Answer(status=401, chunks=[refusal])
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1", openai_api_key="sk-SECRET-123")
    response = await gateway.post(INFER, json=ASK)
    assert response.status == 503
    assert "sk-SECRET" not in await response.text()
    health = await gateway.get("/api/v1/health")
    assert "sk-SECRET" not in await health.text()


async def test_a_bare_404_from_ollama_means_a_wrong_url_not_a_missing_model(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    scripted.answers["/api/api/chat"] = Answer(status=404, content_type="text/plain", chunks=[b"404 page not found"])
    gateway = await make_gateway(ollama_base_url=f"{scripted_url}/api")
    response = await gateway.post(INFER, json=ASK)
    assert response.status == 503
    assert "check OLLAMA_BASE_URL" in (await response.json())["message"]


async def test_an_sse_event_that_never_ends_is_refused_not_buffered(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    endless = [b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'] + [b"data: " + b"x" * 65536 + b"\n"] * 40
    scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=endless)
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    body = events(await (await gateway.post(STREAM, json=ASK)).read())
    assert body[0]["token"] == "Hel"
    assert body[-1]["error"]["code"] == "bad_upstream_response"
    assert "larger than" in body[-1]["error"]["message"]



async def test_a_line_dripped_a_byte_at_a_time_is_cut_at_the_idle_budget(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    # Bytes keep coming (so the socket's own read timer never fires) but the SSE line they
    # make never ends: the wait for it is a silence, cut at the idle budget. The first
    # event comes 0.3 s after the headers, so the wait for the next line begins well after
    # the stream's one timer was armed, and the timer has to move to that wait's end.
    drip = [b"x"] * 30  # 30 bytes 0.2 s apart: 6 s, far beyond the 1 s budget
    scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", gap=0.3, chunks=[
        b": opening comment\n\n", b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n', *drip])
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1", idle_timeout=1)
    body = events(await (await gateway.post(STREAM, json=ASK)).read())
    assert body[0]["token"] == "Hel"
    assert body[-1]["error"]["code"] == "request_timeout", body[-1]["error"]
    assert "silent for 1 s (PROXY_IDLE_TIMEOUT)" in body[-1]["error"]["message"]


async def test_an_ollama_line_dripped_a_byte_at_a_time_is_cut_at_the_idle_budget(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    # Ollama's lines are read as whatever has arrived, so every dripped byte ends a read:
    # the wait for the rest of a line is counted from its first byte, not from each read.
    first = {"model": "m", "message": {"role": "assistant", "content": "Hel"}, "done": False}
    drip = [b'{"model":"m","message":{"role":"assistant","content":"', *[b"x"] * 30]  # 0.2 s apart
    scripted.answers["/api/chat"] = Answer(content_type="application/x-ndjson", gap=0.2,
                                           chunks=[*ndjson(first), *drip])
    gateway = await make_gateway(ollama_base_url=scripted_url, idle_timeout=1)
    body = events(await (await gateway.post(STREAM, json=ASK)).read())
    assert body[0]["token"] == "Hel"
    assert body[-1]["error"]["code"] == "request_timeout", body[-1]["error"]
    assert "silent for 1 s (PROXY_IDLE_TIMEOUT)" in body[-1]["error"]["message"]


# 68 lines of 1,000,000 characters each, every one under the line cap (1 MiB), together
# over the whole answer's (64 MiB), then a proper end: the sum is what must be refused.
BIG_PIECE = "x" * 1_000_000
BIG_PIECES = 68


@pytest.mark.parametrize(("upstream", "path", "body"), [
    ("ollama", "/api/chat", {"model": "m", "stream": False, "messages": [{"role": "user", "content": "hi"}]}),
    ("ollama", INFER, ASK),
    ("openai", "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
], ids=["ollama-api-single", "contract-single", "openai-single"])
async def test_a_single_answer_over_the_cap_in_many_small_lines_is_refused(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str, upstream: str, path: str,
    body: dict[str, object],
) -> None:
    if upstream == "ollama":
        line = orjson.dumps({"model": "m", "message": {"role": "assistant", "content": BIG_PIECE}, "done": False})
        end = {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"}
        scripted.answers["/api/chat"] = Answer(content_type="application/x-ndjson",
                                               chunks=[line + b"\n"] * BIG_PIECES + ndjson(end))
        gateway = await make_gateway(ollama_base_url=scripted_url)
    else:
        event = orjson.dumps({"choices": [{"index": 0, "delta": {"content": BIG_PIECE}}]})
        scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=sse(
            *[b"data: " + event] * BIG_PIECES, b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
            b"data: [DONE]"))
        gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    response = await gateway.post(path, json=body)
    raw = await response.read()
    assert response.status == 502, raw[:200]
    error = orjson.loads(raw)
    # Each API's error shape: Ollama's {"error": "..."}, OpenAI's {"error": {"message"...}},
    # the contract's {"code", "message"...}.
    message = error["error"] if path == "/api/chat" else error.get("error", error)["message"]
    assert "answer larger than 67108864 characters" in message, error


async def test_a_streamed_tool_call_over_the_cap_ends_the_ollama_stream_with_an_error(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    # The Ollama API on the fallback holds a call's argument pieces until the call is whole.
    first = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    piece = orjson.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": BIG_PIECE}}]}}]})
    scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=sse(
        b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [first]}}]}),
        *[b"data: " + piece] * BIG_PIECES,
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}', b"data: [DONE]"))
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    response = await gateway.post("/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    lines = [orjson.loads(line) for line in (await response.read()).splitlines()]
    assert response.status == 200
    assert "answer larger than 67108864 characters" in lines[-1]["error"], lines[-1]


async def test_logprobs_an_upstream_sends_unasked_are_not_passed_on(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str,
) -> None:
    """Entries go to the client only when it asked for them: an upstream that sends them
    anyway (or a hostile one, with whatever objects it likes) has them dropped, and the
    answer stays plain text, as cacheable as any other."""
    entry = {"token": "Hel", "logprob": -0.1, "bytes": [72, 101, 108], "top_logprobs": [], "injected": {"x": 1}}
    chunk = orjson.dumps({"choices": [{"index": 0, "delta": {"content": "Hel"}, "logprobs": {"content": [entry]}}]})
    scripted.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=sse(
        b"data: " + chunk, b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', b"data: [DONE]"))
    gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    ask = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    single = await (await gateway.post("/v1/chat/completions", json=ask)).json()
    assert single["choices"][0]["message"]["content"] == "Hel"
    assert single["choices"][0]["logprobs"] is None

    streamed = await (await gateway.post("/v1/chat/completions", json={**ask, "stream": True})).read()
    chunks = [orjson.loads(data) for data in events_data(streamed)]
    assert [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]] == ["", "Hel", None]
    assert all(c["choices"][0]["logprobs"] is None for c in chunks if c["choices"])
    assert b"injected" not in streamed

    ollama_api = await (await gateway.post("/api/chat", json={**ask, "stream": False})).json()
    assert ollama_api["message"]["content"] == "Hel"
    assert "logprobs" not in ollama_api


def events_data(raw: bytes) -> list[bytes]:
    """The data of each SSE event but the closing [DONE]."""
    return [line[len(b"data: "):] for line in raw.splitlines()
            if line.startswith(b"data: ") and line != b"data: [DONE]"]

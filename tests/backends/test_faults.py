"""Fault injection through HTTP: what the client sees, what the upstream sees, and that nothing leaks.

The gateway runs with short timers so that silences are detected quickly; none of these
tests asserts how long anything took. "Nothing leaked" is read from the gateway itself:
its health answer reports requests in flight, overall and per backend.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.resilience import ask, assert_nothing_in_flight
from tests.support.sse import events, next_block
from tests.support.upstreams.faults import FaultyOllama

STREAM = "/api/v1/inference/stream"
INFER = "/api/v1/inference"
FAST_TIMERS = {"backend_timeout": 0.5, "headers_timeout": 0.2, "first_token_timeout": 0.4, "idle_timeout": 0.3}


@pytest.fixture
def faulty() -> FaultyOllama:
    return FaultyOllama()


@pytest.fixture
async def faulty_ollama(aiohttp_server: Callable[..., Awaitable[TestServer]], faulty: FaultyOllama) -> RunningUpstream:
    server = await aiohttp_server(faulty.app())
    return RunningUpstream(url=server.make_url(""), recorder=faulty.recorder)


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, openai: RunningUpstream) -> TestClient:
    """The faulty Ollama first, the well-behaved OpenAI test server as the fallback."""
    return await make_gateway(ollama_base_url=faulty_ollama.url, openai_endpoint=openai.url, **FAST_TIMERS)


# --- before the first token: the client never notices ------------------------------------


@pytest.mark.parametrize("model", ["hang-headers", "think-forever", "malformed-first", "status-503", "status-429"])
async def test_failure_before_first_token_is_invisible_to_the_client(
    gateway: TestClient, faulty_ollama: RunningUpstream, model: str,
) -> None:
    response = await gateway.post(STREAM, json=ask(model))
    assert response.status == 200
    body = events(await response.read())
    assert "".join(e["token"] for e in body) == "Hello from the fallback."
    assert {e["provider"] for e in body} == {"openai"}
    assert "error" not in body[-1]
    [seen] = await faulty_ollama.recorder.settled()
    # The abandoned upstream call was closed, not left running.
    assert seen.cancelled == (model in ("hang-headers", "think-forever"))
    await assert_nothing_in_flight(gateway)


async def test_single_shot_that_hangs_times_out_and_falls_back(
    gateway: TestClient, faulty_ollama: RunningUpstream,
) -> None:
    response = await gateway.post(INFER, json=ask("hang-headers"))
    assert response.status == 200
    assert (await response.json())["provider"] == "openai"
    [seen] = await faulty_ollama.recorder.settled()
    assert seen.cancelled


async def test_single_shot_that_keeps_writing_past_the_silence_timers_is_answered_whole(
    make_gateway: GatewayFactory, faulty: FaultyOllama, faulty_ollama: RunningUpstream,
) -> None:
    # 30 tokens 0.05 s apart: far longer in all than LLM_BACKEND_TIMEOUT (0.5 s) and every
    # silence timer, but no gap comes near the 0.3 s idle timer. The whole answer arrives.
    faulty.trickle_tokens = 30
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, **FAST_TIMERS)
    response = await gateway.post(INFER, json=ask("trickle"))
    assert response.status == 200
    body = await response.json()
    assert body["output"] == "".join(f" t{i}" for i in range(30))
    assert body["usage"]["completion_tokens"] == 30
    assert body["finish_reason"] == "stop"
    [seen] = faulty_ollama.recorder.requests
    assert seen.json["stream"] is True  # read as a stream, assembled by the gateway


async def test_single_shot_is_capped_as_a_whole_even_while_tokens_arrive(
    make_gateway: GatewayFactory, faulty: FaultyOllama, faulty_ollama: RunningUpstream,
) -> None:
    faulty.trickle_tokens = 1000
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, max_request_seconds=0.6, **FAST_TIMERS)
    response = await gateway.post(INFER, json=ask("trickle"))
    assert response.status == 504
    body = await response.json()
    assert body["code"] == "request_timeout"
    assert "no complete answer within 0.6 s (PROXY_MAX_REQUEST_SECONDS)" in body["message"]
    [seen] = await faulty_ollama.recorder.settled()
    assert seen.cancelled
    await assert_nothing_in_flight(gateway)


@pytest.mark.parametrize(("model", "message"), [
    ("hang-after-2", "upstream silent for 0.3 s (PROXY_IDLE_TIMEOUT)"),
    ("think-forever", "no first token within 0.4 s (PROXY_FIRST_TOKEN_TIMEOUT)"),
    ("hang-headers", "no response headers within 0.2 s (PROXY_HEADERS_TIMEOUT)"),
])
async def test_single_shot_times_out_on_silence_naming_the_timer_and_its_setting(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, model: str, message: str,
) -> None:
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, **FAST_TIMERS)
    response = await gateway.post(INFER, json=ask(model))
    assert response.status == 504
    body = await response.json()
    assert body["code"] == "request_timeout"
    assert message in body["message"]
    [seen] = await faulty_ollama.recorder.settled()
    assert seen.cancelled
    await assert_nothing_in_flight(gateway)


async def test_timeout_everywhere_is_504_naming_the_phase(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, **FAST_TIMERS)
    response = await gateway.post(STREAM, json=ask("hang-headers"))
    assert response.status == 504
    body = await response.json()
    assert body["code"] == "request_timeout"
    assert "no response headers within 0.2 s" in body["message"]


async def test_no_first_token_in_time_is_504_naming_the_phase(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, **FAST_TIMERS)
    response = await gateway.post(STREAM, json=ask("think-forever"))
    assert response.status == 504
    assert "no first token within 0.4 s" in (await response.json())["message"]


async def test_a_model_ollama_must_load_first_gets_the_cold_start_budget(
    make_gateway: GatewayFactory, faulty: FaultyOllama, faulty_ollama: RunningUpstream,
) -> None:
    # Not listed by /api/ps: Ollama loads it first and sends nothing meanwhile. The load
    # (0.6 s here) outlasts every ordinary timer (0.2 to 0.4 s) but not the cold budget.
    faulty.trickle_delay = 0.6
    faulty.loaded = set()
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, cold_start_timeout=30, **FAST_TIMERS)
    body = events(await (await gateway.post(STREAM, json=ask("slow-first"))).read())
    assert "".join(e["token"] for e in body) == "all good"
    assert "error" not in body[-1]


async def test_once_a_loaded_model_has_spoken_a_silence_gets_the_idle_budget_not_the_cold_one(
    make_gateway: GatewayFactory, faulty: FaultyOllama, faulty_ollama: RunningUpstream,
) -> None:
    faulty.loaded = set()  # loaded for this request: the wait for its first bytes gets the cold budget
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, cold_start_timeout=3, **FAST_TIMERS)
    body = events(await (await gateway.post(STREAM, json=ask("hang-after-2"))).read())
    assert "".join(e.get("token", "") for e in body) == "one two"
    # Its first tokens came: the model is loaded, and silence now means trouble (0.3 s, not 3 s).
    assert "upstream silent for 0.3 s (PROXY_IDLE_TIMEOUT)" in body[-1]["error"]["message"]


async def test_a_loaded_model_that_goes_silent_is_not_given_the_cold_budget(
    make_gateway: GatewayFactory, faulty: FaultyOllama, faulty_ollama: RunningUpstream,
) -> None:
    faulty.trickle_delay = 0.6
    faulty.loaded = {"slow-first"}  # /api/ps says it is in memory: silence now means trouble
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, cold_start_timeout=30, **FAST_TIMERS)
    response = await gateway.post(STREAM, json=ask("slow-first"))
    assert response.status == 504
    body = await response.json()  # nothing was sent yet, so the error is plain JSON with its real status
    assert body["code"] == "request_timeout"
    assert [(a["backend"], a["code"]) for a in body["attempts"]] == [("ollama", "request_timeout")]
    # Given up on within the warm timers, not the 30 s a model being loaded would get.
    assert "within 0.2 s" in body["attempts"][0]["message"]


# --- after the first token: never silent, never switched ------------------------------------


@pytest.mark.parametrize(
    ("model", "code", "why"),
    [
        ("hang-after-2", "request_timeout", "silent for 0.3 s"),
        ("die-after-2", "bad_upstream_response", "the answer was cut off"),
        ("malformed-after-2", "bad_upstream_response", "unreadable response"),
    ],
)
async def test_failure_after_first_token_ends_with_done_and_error(
    gateway: TestClient, faulty_ollama: RunningUpstream, openai: RunningUpstream, model: str, code: str, why: str,
) -> None:
    response = await gateway.post(STREAM, json=ask(model))
    assert response.status == 200
    body = events(await response.read())
    assert [e["token"] for e in body[:-1]] == ["one", " two"]
    last = body[-1]
    assert last["done"] is True
    assert last["error"]["code"] == code
    assert why in last["error"]["message"]
    assert openai.recorder.requests == []  # no silent switch to another backend mid-answer
    await faulty_ollama.recorder.settled()
    await assert_nothing_in_flight(gateway)


async def test_endless_line_is_a_bad_upstream_not_a_memory_leak(
    gateway: TestClient, faulty_ollama: RunningUpstream,
) -> None:
    response = await gateway.post(STREAM, json=ask("endless-line"))
    body = events(await response.read())
    assert body[0]["token"] == "one"
    assert body[-1]["error"]["code"] == "bad_upstream_response"
    assert "a line longer than 1048576 bytes" in body[-1]["error"]["message"]
    [seen] = await faulty_ollama.recorder.settled()
    assert seen.cancelled
    await assert_nothing_in_flight(gateway)


async def test_lines_cut_and_glued_in_transit_are_read_whole(gateway: TestClient) -> None:
    # The gateway splits what arrives into lines itself (backends/wire.py): a line in
    # pieces is joined, two lines in one read are two, a last line without its newline
    # still ends the answer.
    streamed = events(await (await gateway.post(STREAM, json=ask("split-lines"))).read())
    assert [e["token"] for e in streamed[:-1]] == ["one", " two", " three"]
    assert streamed[-1]["done"] is True and "error" not in streamed[-1]
    assert streamed[-1]["usage"]["completion_tokens"] == 3
    response = await gateway.post(INFER, json=ask("split-lines"))
    assert response.status == 200
    answer = await response.json()
    assert answer["output"] == "one two three"
    assert answer["provider"] == "ollama"


async def test_long_generation_that_keeps_producing_is_never_cut(
    make_gateway: GatewayFactory, faulty: FaultyOllama, faulty_ollama: RunningUpstream,
) -> None:
    # 30 tokens 0.05 s apart take well over the 0.5 s LLM_BACKEND_TIMEOUT in all, but
    # no gap comes near the 0.3 s idle timer.
    faulty.trickle_tokens = 30
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, **FAST_TIMERS)
    response = await gateway.post(STREAM, json=ask("trickle"))
    body = events(await response.read())
    assert len(body) == 31
    assert body[-1]["done"] is True and "error" not in body[-1]
    assert body[-1]["usage"]["completion_tokens"] == 30


# --- the client hangs up: the upstream call is cancelled --------------------------------------


@pytest.mark.parametrize(
    ("path", "model"),
    [(STREAM, "hang-headers"), (INFER, "hang-after-2")],
    ids=["stream waiting for its first token", "single shot"],
)
async def test_disconnect_before_any_answer_cancels_upstream(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream, path: str, model: str,
) -> None:
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, backend_timeout=60)
    request = asyncio.create_task(gateway.post(path, json=ask(model)))
    await faulty_ollama.recorder.arrived(1)
    request.cancel()  # the client gives up and closes its connection
    with pytest.raises(asyncio.CancelledError):
        await request
    [seen] = await faulty_ollama.recorder.settled()
    assert seen.cancelled
    await assert_nothing_in_flight(gateway)


async def test_disconnect_mid_stream_cancels_upstream(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, backend_timeout=60)
    response = await gateway.post(STREAM, json=ask("hang-after-2"))
    first = json.loads((await next_block(response))[len(b"data: "):])
    assert first["token"] == "one"
    response.close()  # hang up mid-answer
    [seen] = await faulty_ollama.recorder.settled()
    assert seen.cancelled
    await assert_nothing_in_flight(gateway)


async def test_disconnect_during_batch_cancels_every_item(
    make_gateway: GatewayFactory, faulty_ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=faulty_ollama.url, backend_timeout=60)
    inputs = [{"input_data": str(i)} for i in range(6)]
    request = asyncio.create_task(gateway.post(
        "/api/v1/inference/batch", json={"model_id": "hang-after-2", "inputs": inputs, "max_concurrency": 3}))
    await faulty_ollama.recorder.arrived(3)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    seen = await faulty_ollama.recorder.settled()
    assert len(seen) == 3  # the items not yet started never start
    assert all(s.cancelled for s in seen)
    await assert_nothing_in_flight(gateway)

"""A hostile upstream (bench/hostile_upstream.py): what the client sees, what reached the
upstream (or where it redirected), and what it costs the gateway in memory and latency.

Memory is read with tracemalloc in this process, where the gateway runs, with the cyclic
collector switched off while the attack runs, as it practically is in production (a
frozen heap and a gen-0 threshold of 20,000: see proxy/__main__.py): memory must come
back by reference counting alone. `/livez` is timed while each attack runs; the figure is
recorded by bench/hostile.py, and here only "answered at all" is asserted.
"""

from __future__ import annotations

import asyncio
import gc
import re
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bench.hostile_upstream import SECRET, HostileUpstream
from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.sse import events
from tests.support.upstreams.recorder import Recorder
from tests.support.upstreams.redirect_target import RedirectTarget

STREAM = "/api/v1/inference/stream"
INFER = "/api/v1/inference"
MIB = 1 << 20


@pytest.fixture
def hostile() -> HostileUpstream:
    return HostileUpstream()


@pytest.fixture
async def target(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> RunningUpstream:
    redirect_target = RedirectTarget()
    server = await aiohttp_server(redirect_target.app())
    return RunningUpstream(url=server.make_url(""), recorder=redirect_target.recorder)


@pytest.fixture
async def hostile_up(
    aiohttp_server: Callable[..., Awaitable[TestServer]], hostile: HostileUpstream, target: RunningUpstream,
) -> RunningUpstream:
    hostile.redirect_to = str(target.url / "api" / "chat")
    recorder = Recorder()
    server = await aiohttp_server(hostile.app(middlewares=[recorder.middleware()]))
    return RunningUpstream(url=server.make_url(""), recorder=recorder)


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, hostile_up: RunningUpstream) -> TestClient:
    """Only the hostile upstream: what it does reaches the client as an error."""
    return await make_gateway(ollama_base_url=hostile_up.url, idle_timeout=5)


@contextmanager
def heap_watch() -> Iterator[list[int]]:
    """[peak bytes, bytes still held at the end] of Python allocations in the block, with the
    cyclic collector off: what is still held is only what references keep alive."""
    figures: list[int] = []
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        yield figures
        current, peak = tracemalloc.get_traced_memory()
        figures.extend([peak - before, current - before])
    finally:
        tracemalloc.stop()
        gc.enable()


def errors_in_cycles() -> list[BaseException]:
    """The exceptions that only the cyclic collector could free: each one keeps its
    traceback's frames (and what they hold) alive until a collection that, tuned as in
    production, may not come for a long time."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = [obj for obj in gc.garbage if isinstance(obj, BaseException)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    return found


async def livez_status(gateway: TestClient) -> int:
    """/livez answers (bounded, so a stalled gateway fails the test instead of hanging it)."""
    async with asyncio.timeout(10):
        return (await gateway.get("/livez")).status


def ask(model: str) -> dict[str, str]:
    return {"model_id": model, "input_data": "hi"}


# --- compressed answers: every cap applies to the inflated bytes ---------------------------


async def test_a_gzip_bomb_answer_is_refused_as_over_the_cap_without_inflating_it(
    gateway: TestClient, hostile_up: RunningUpstream, hostile: HostileUpstream,
) -> None:
    hostile.bomb_mib = 256  # 256 KB on the wire
    with heap_watch() as heap:
        answers = []
        for _ in range(3):
            response = await gateway.post(INFER, json=ask("gzip-bomb"))
            answers.append((response.status, await response.json()))
    for status, body in answers:
        assert status == 502
        assert body["code"] == "bad_upstream_response"
        # Refused at a cap on what it inflates to: the whole answer's, or (read as a stream,
        # as single shots are) the line cap, which a bomb of zeros without a newline meets first.
        assert re.search(r"(larger|longer|more) than \d+ bytes", body["message"]), body["message"]
    assert len(hostile_up.recorder.requests) == 3
    peak, kept = heap
    # Reading stops at the cap (64 MiB), not at 256 MiB; afterwards nothing is kept.
    assert peak < 100 * MIB, peak
    assert kept < 8 * MIB, kept


async def test_a_gzip_bomb_error_body_is_read_only_to_the_error_cap(
    gateway: TestClient, hostile_up: RunningUpstream,
) -> None:
    with heap_watch() as heap:
        response = await gateway.post(INFER, json=ask("gzip-error"))
        body = await response.json()
    assert response.status == 503
    assert body["code"] == "upstream_unavailable"
    assert "HTTP 500" in body["message"]
    peak, kept = heap
    assert peak < 8 * MIB, peak  # 64 KiB read of 60 MiB
    assert kept < 4 * MIB, kept


async def test_a_gzip_bomb_stream_is_cut_at_the_line_cap(
    gateway: TestClient, hostile_up: RunningUpstream, hostile: HostileUpstream,
) -> None:
    hostile.bomb_mib = 256
    with heap_watch() as heap:
        response = await gateway.post(STREAM, json=ask("gzip-bomb-stream"))
        body = await response.json()
    assert response.status == 502
    assert body["code"] == "bad_upstream_response"
    peak, kept = heap
    assert peak < 32 * MIB, peak  # one line of at most 1 MiB, not 256 MiB
    assert kept < 4 * MIB, kept


# --- over the cap: memory returns -----------------------------------------------------------


async def test_answers_over_the_cap_leave_nothing_behind(gateway: TestClient, hostile_up: RunningUpstream) -> None:
    with heap_watch() as heap:
        statuses = []
        for _ in range(4):
            response = await gateway.post(INFER, json=ask("over-cap"))
            statuses.append((response.status, (await response.json())["code"]))
    assert statuses == [(502, "bad_upstream_response")] * 4
    peak, kept = heap
    # One answer at a time is held up to the cap while it is read; none is kept after.
    assert peak < 150 * MIB, peak
    assert kept < 8 * MIB, kept
    assert await livez_status(gateway) == 200


@pytest.mark.parametrize(("path", "model"), [
    (INFER, "over-cap"), (INFER, "secret-error"), (INFER, "redirect"), (STREAM, "broken-chunk"),
    (STREAM, "gzip-bomb-stream")])
async def test_no_failure_leaves_an_error_in_a_reference_cycle(
    gateway: TestClient, hostile_up: RunningUpstream, hostile: HostileUpstream, path: str, model: str,
) -> None:
    hostile.bomb_mib = 8
    gc.collect()
    gc.disable()
    try:
        response = await gateway.post(path, json=ask(model))
        await response.read()
        assert response.status in (200, 502, 503)
        await hostile_up.recorder.settled()
        assert errors_in_cycles() == []
    finally:
        gc.enable()


# --- broken framing: the stream ends at once --------------------------------------------------


async def test_broken_chunked_framing_ends_the_stream_with_done_and_bad_upstream_response(
    gateway: TestClient, hostile_up: RunningUpstream,
) -> None:
    async with asyncio.timeout(4):  # idle_timeout is 5 s: this ends before any timer could
        response = await gateway.post(STREAM, json=ask("broken-chunk"))
        assert response.status == 200
        body = events(await response.read())
    assert body[0] == {"token": "one", "done": False, "provider": "ollama"}
    assert body[-1]["done"] is True
    assert body[-1]["error"]["code"] == "bad_upstream_response"
    assert "ended before Ollama's final message" in body[-1]["error"]["message"]
    [seen] = await hostile_up.recorder.settled()
    assert seen.json["model"] == "broken-chunk"
    health = await (await gateway.get("/api/v1/health")).json()
    assert health["in_flight"] == 0


# --- redirects and error bodies ----------------------------------------------------------------


async def test_an_upstream_redirect_is_a_failed_attempt_and_is_never_followed(
    gateway: TestClient, hostile_up: RunningUpstream, target: RunningUpstream,
) -> None:
    response = await gateway.post(INFER, json=ask("redirect"))
    body = await response.json()
    assert response.status == 502
    assert body["code"] == "bad_upstream_response"
    assert "HTTP 307" in body["message"]
    assert SECRET not in body["message"]
    assert hostile_up.recorder.models() == ["redirect"]
    assert target.recorder.requests == []  # the prompt never reached the other origin


@pytest.mark.parametrize(("model", "relayed"), [
    ("secret-error", "HTTP 500"), ("secret-error-json", "the model crashed")])
async def test_only_the_known_message_of_an_error_body_reaches_the_client(
    gateway: TestClient, hostile_up: RunningUpstream, model: str, relayed: str, caplog: pytest.LogCaptureFixture,
) -> None:
    response = await gateway.post(INFER, json=ask(model))
    raw = await response.text()
    assert response.status == 503
    assert relayed in raw
    assert "hunter2" not in raw and "10.0.0.5" not in raw
    # The operator still finds the whole story in the server log.
    assert any("hunter2" in record.getMessage() for record in caplog.records)


async def test_an_openai_error_body_relays_only_its_message(
    make_gateway: GatewayFactory, hostile_up: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=hostile_up.url / "v1")
    response = await gateway.post("/v1/chat/completions", json={"model": "ok", "messages": [
        {"role": "user", "content": "hi"}]})
    raw = await response.text()
    assert response.status == 503
    assert "the model crashed" in raw
    assert "hunter2" not in raw
    assert "10.0.0.5" not in raw

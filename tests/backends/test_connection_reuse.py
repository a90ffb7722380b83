"""Upstream connections go back to the pool after an answer, whichever surface asked.

An upstream ends a chunked body with a last empty chunk, which often arrives a moment
after the answer's last line. A connection released before that end has been read cannot
be reused: aiohttp closes it, and the next request pays for a new TCP connection (and,
to a remote upstream, a TLS handshake). Here the scripted upstream holds its body's end
back for a moment after the last line, so every request below would come on a connection
of its own if the gateway let go of the answer as soon as it had read its last line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp.test_utils import TestServer

from tests.support.app import GatewayFactory
from tests.support.upstreams.scripted import Answer, ScriptedUpstream

# Long beside loopback's delivery, short beside any test's patience.
END_AFTER = 0.05
ROUNDS = 4
OLLAMA_LINES = [orjson.dumps(line) + b"\n" for line in (
    {"model": "m", "message": {"role": "assistant", "content": "Hel"}, "done": False},
    {"model": "m", "message": {"role": "assistant", "content": "lo"}, "done": False},
    {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
     "prompt_eval_count": 3, "eval_count": 2},
)]
OPENAI_EVENTS = [b"data: " + orjson.dumps(event) + b"\n\n" for event in (
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]},
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
     "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
)] + [b"data: [DONE]\n\n"]


@pytest.fixture
def scripted() -> ScriptedUpstream:
    upstream = ScriptedUpstream()
    upstream.answers["/api/chat"] = Answer(content_type="application/x-ndjson", chunks=OLLAMA_LINES,
                                           end_after=END_AFTER)
    upstream.answers["/v1/chat/completions"] = Answer(content_type="text/event-stream", chunks=OPENAI_EVENTS,
                                                      end_after=END_AFTER)
    return upstream


@pytest.fixture
async def scripted_url(aiohttp_server: Callable[..., Awaitable[TestServer]], scripted: ScriptedUpstream) -> str:
    return str((await aiohttp_server(scripted.app())).make_url(""))


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/inference/stream", {"model_id": "m", "input_data": "hi"}),
    ("/api/v1/inference", {"model_id": "m", "input_data": "hi"}),
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}),
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    ("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}),
], ids=["contract-stream", "contract-single", "openai-stream", "openai-single", "ollama-stream", "ollama-single"])
@pytest.mark.parametrize("upstream", ["ollama", "openai"])
async def test_one_connection_serves_answer_after_answer(
    make_gateway: GatewayFactory, scripted: ScriptedUpstream, scripted_url: str, path: str, body: dict[str, object],
    upstream: str,
) -> None:
    if upstream == "ollama":
        gateway = await make_gateway(ollama_base_url=scripted_url)
    else:
        gateway = await make_gateway(openai_endpoint=f"{scripted_url}/v1")
    for _ in range(ROUNDS):
        response = await gateway.post(path, json=body)
        text = await response.text()
        assert response.status == 200, text
        assert "Hel" in text and "lo" in text
    seen = await scripted.recorder.wait_until(lambda requests: len(requests) >= ROUNDS)
    assert [r.path for r in seen] == [seen[0].path] * ROUNDS
    connections = scripted.recorder.connections()
    assert connections == 1, f"{ROUNDS} answers came on {connections} connections"

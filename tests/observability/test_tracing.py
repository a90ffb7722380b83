"""Traces: the spans an OTLP/HTTP receiver gets, and the trace context the upstream gets."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from proxy.settings.tracing import TracingConfig
from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.sse import events

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
PROMPT = "the secret recipe for the sauce"


@pytest.fixture
async def traced(
    make_gateway: GatewayFactory, receiver: tuple[OtlpReceiver, TestServer], ollama: RunningUpstream,
    openai: RunningUpstream,
) -> TestClient:
    """Ollama first, the OpenAI test server as the fallback, exporting every 50 ms."""
    _, server = receiver
    config = TracingConfig(endpoint=server.make_url("/v1/traces"), service_name="gateway-under-test",
                           export_every=0.05)
    return await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, tracing=config)


def no_prompt_anywhere(spans: list[ReceivedSpan]) -> None:
    for span in spans:
        text = json.dumps([span.name, span.attributes, span.events, span.status_message], default=str)
        assert PROMPT not in text
        assert "gen_ai.input.messages" not in span.attributes


async def test_single_shot_is_a_server_span_under_the_caller_with_one_client_span(
    traced: TestClient, receiver: tuple[OtlpReceiver, TestServer], ollama: RunningUpstream,
) -> None:
    spans, _ = receiver
    response = await traced.post("/v1/chat/completions", headers={
        "traceparent": TRACEPARENT, "tracestate": "vendor=abc", "X-Request-ID": "req-single-1"},
        json={"model": "gemma3:1b", "messages": [{"role": "user", "content": PROMPT}]})
    assert response.status == 200
    assert (await response.json())["choices"][0]["message"]["content"]

    server, client = await spans.trace_of("req-single-1", 2)
    assert server.name == "POST /v1/chat/completions" and server.kind == "SERVER"
    assert server.trace_id == CALLER_TRACE and server.parent_span_id == CALLER_SPAN
    assert server.resource["service.name"] == "gateway-under-test"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["gen_ai.operation.name"] == "chat"
    assert server.attributes["gen_ai.request.model"] == "gemma3:1b"
    assert server.attributes["gen_ai.provider.name"] == "ollama"
    assert server.attributes["gateway.key.name"] == "default"
    assert server.attributes["gen_ai.usage.input_tokens"] == 128
    assert server.attributes["gen_ai.usage.output_tokens"] == 9
    assert server.attributes["gen_ai.response.finish_reasons"] == ("stop",)

    assert client.name == "chat gemma3:1b" and client.kind == "CLIENT"
    assert client.parent_span_id == server.span_id and client.trace_id == CALLER_TRACE
    assert client.attributes["gen_ai.provider.name"] == "ollama"
    assert client.attributes["gen_ai.request.model"] == "gemma3:1b"
    assert client.attributes["gen_ai.response.model"] == "gemma3:1b"
    assert client.attributes["gen_ai.usage.input_tokens"] == 128
    assert client.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert client.status == "UNSET"

    # The upstream's parent is the attempt's span, in the caller's trace, with its state.
    seen = ollama.recorder.requests[-1].headers
    assert seen["traceparent"] == f"00-{CALLER_TRACE}-{client.span_id}-01"
    assert seen["tracestate"] == "vendor=abc"
    assert seen["X-Request-ID"] == "req-single-1"
    no_prompt_anywhere([server, client])


async def test_a_stream_has_its_time_to_first_token_as_an_event(
    traced: TestClient, receiver: tuple[OtlpReceiver, TestServer],
) -> None:
    spans, _ = receiver
    response = await traced.post("/api/v1/inference/stream", headers={"X-Request-ID": "req-stream-1"},
                                 json={"model_id": "gemma3:1b", "input_data": PROMPT})
    assert response.status == 200
    assert [e for e in events(await response.read()) if e.get("done")]

    server, client = await spans.trace_of("req-stream-1", 2)
    assert server.name == "POST /api/v1/inference/stream" and server.parent_span_id == ""
    (_, attributes), = [e for e in server.events if e[0] == "gen_ai.first_token"]
    assert attributes["gen_ai.server.time_to_first_token"] > 0
    assert client.parent_span_id == server.span_id
    assert [e[0] for e in client.events] == ["gen_ai.first_token"]
    assert client.attributes["gen_ai.usage.output_tokens"] > 0
    assert client.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    no_prompt_anywhere([server, client])


async def test_a_fallback_is_two_attempts_the_first_with_its_failure(
    traced: TestClient, receiver: tuple[OtlpReceiver, TestServer], openai: RunningUpstream,
) -> None:
    spans, _ = receiver
    response = await traced.post("/api/v1/inference", headers={"X-Request-ID": "req-fallback-1"},
                                 json={"model_id": "missing-locally", "input_data": PROMPT})
    assert response.status == 200
    assert (await response.json())["provider"] == "openai"

    server, *attempts = await spans.trace_of("req-fallback-1", 3)
    attempts.sort(key=lambda s: s.start_ns)
    first, second = attempts
    assert [a.parent_span_id for a in attempts] == [server.span_id, server.span_id]
    assert first.attributes["gen_ai.provider.name"] == "ollama"
    assert first.status == "ERROR" and first.attributes["error.type"] == "model_not_found"
    assert second.attributes["gen_ai.provider.name"] == "openai" and second.status == "UNSET"
    assert second.attributes["gen_ai.usage.output_tokens"] > 0
    assert server.attributes["gen_ai.provider.name"] == "openai"
    # Each upstream saw its own attempt as the parent.
    assert openai.recorder.requests[-1].headers["traceparent"].split("-")[2] == second.span_id
    no_prompt_anywhere([server, *attempts])


async def test_a_batch_is_one_server_span_with_a_client_span_per_item(
    traced: TestClient, receiver: tuple[OtlpReceiver, TestServer], ollama: RunningUpstream,
) -> None:
    spans, _ = receiver
    inputs = [{"input_data": f"{PROMPT} {i}"} for i in range(3)]
    response = await traced.post("/api/v1/inference/batch", headers={"X-Request-ID": "req-batch-1"},
                                 json={"model_id": "gemma3:1b", "inputs": inputs})
    assert (await response.json())["succeeded"] == 3

    server, *items = await spans.trace_of("req-batch-1", 4)
    assert server.name == "POST /api/v1/inference/batch"
    assert len(items) == 3 and {i.parent_span_id for i in items} == {server.span_id}
    assert all(i.attributes["gen_ai.operation.name"] == "chat" for i in items)
    assert server.attributes["gen_ai.usage.input_tokens"] == 3 * 128
    sent = {r.headers["traceparent"].split("-")[2] for r in ollama.recorder.requests}
    assert sent == {i.span_id for i in items}
    assert {r.headers["X-Request-ID"] for r in ollama.recorder.requests} == {"req-batch-1"}
    no_prompt_anywhere([server, *items])


async def test_embeddings_are_an_embeddings_span(
    traced: TestClient, receiver: tuple[OtlpReceiver, TestServer],
) -> None:
    spans, _ = receiver
    response = await traced.post("/v1/embeddings", headers={"X-Request-ID": "req-embed-1"},
                                 json={"model": "nomic-embed-text", "input": "Hello world"})
    assert response.status == 200
    server, client = await spans.trace_of("req-embed-1", 2)
    assert server.attributes["gen_ai.operation.name"] == "embeddings"
    assert server.attributes["gen_ai.provider.name"] == "ollama"
    assert client.name == "embeddings nomic-embed-text" and client.parent_span_id == server.span_id
    assert client.attributes["gen_ai.usage.input_tokens"] > 0
    for span in (server, client):
        assert "Hello world" not in json.dumps([span.attributes, span.events], default=str)


async def test_content_is_captured_only_when_opted_in(
    make_gateway: GatewayFactory, receiver: tuple[OtlpReceiver, TestServer], ollama: RunningUpstream,
) -> None:
    spans, server_ = receiver
    config = TracingConfig(endpoint=server_.make_url("/v1/traces"), export_every=0.05, capture_content=True)
    gateway = await make_gateway(ollama_base_url=ollama.url, tracing=config)
    response = await gateway.post("/api/v1/inference", headers={"X-Request-ID": "req-content-1"},
                                  json={"model_id": "gemma3:1b", "input_data": PROMPT})
    answer = (await response.json())["output"]
    _, client = await spans.trace_of("req-content-1", 2)
    assert json.loads(client.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    assert json.loads(client.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == answer


async def test_without_tracing_the_callers_context_and_request_id_still_reach_the_upstream(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    response = await gateway.post("/api/v1/inference", headers={
        "traceparent": TRACEPARENT, "tracestate": "vendor=abc", "X-Request-ID": "req-plain-1"},
        json={"model_id": "gemma3:1b", "input_data": "hi"})
    assert response.status == 200
    seen = ollama.recorder.requests[-1].headers
    assert seen["traceparent"] == TRACEPARENT and seen["tracestate"] == "vendor=abc"
    assert seen["X-Request-ID"] == "req-plain-1"


async def test_a_malformed_traceparent_is_not_passed_on(gateway: TestClient, ollama: RunningUpstream) -> None:
    response = await gateway.post("/api/v1/inference", headers={"traceparent": "00-not-a-trace-01"},
                                  json={"model_id": "gemma3:1b", "input_data": "hi"})
    assert response.status == 200
    seen = ollama.recorder.requests[-1].headers
    assert "traceparent" not in seen
    assert seen["X-Request-ID"] == response.headers["X-Request-ID"]


@pytest.fixture
async def sampled_out(
    make_gateway: GatewayFactory, receiver: tuple[OtlpReceiver, TestServer], ollama: RunningUpstream,
    openai: RunningUpstream,
) -> TestClient:
    """A parent-based ratio sampler at 0: only a caller's sampled trace is recorded."""
    _, server = receiver
    config = TracingConfig(endpoint=server.make_url("/v1/traces"), export_every=0.05,
                           sampler="parentbased_traceidratio", sampler_ratio=0.0)
    return await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, tracing=config)


async def nothing_recorded_before(spans: OtlpReceiver, gateway: TestClient, *unsampled_ids: str) -> None:
    """A sampled request sent after the unsampled ones is exported; spans leave in the order they
    ended, so had the earlier requests recorded anything, it would be there by then."""
    response = await gateway.post("/api/v1/inference", headers={
        "traceparent": TRACEPARENT, "X-Request-ID": "req-sampled-after"},
        json={"model_id": "gemma3:1b", "input_data": "hi"})
    assert response.status == 200
    server, client = await spans.trace_of("req-sampled-after", 2)
    assert server.trace_id == CALLER_TRACE and server.parent_span_id == CALLER_SPAN  # the caller's flag, followed
    assert client.parent_span_id == server.span_id
    # Everything the receiver got: the two spans of the sampled request, none of the others.
    assert sorted(span.span_id for span in spans.spans) == sorted([server.span_id, client.span_id])
    assert not any(request_id in json.dumps(span.attributes) for span in spans.spans for request_id in unsampled_ids)


async def test_an_unsampled_caller_is_followed_its_context_passed_on_and_nothing_exported(
    sampled_out: TestClient, receiver: tuple[OtlpReceiver, TestServer], ollama: RunningUpstream,
) -> None:
    spans, _ = receiver
    unsampled = f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"
    response = await sampled_out.post("/v1/chat/completions", headers={
        "traceparent": unsampled, "tracestate": "vendor=abc", "X-Request-ID": "req-unsampled-1"},
        json={"model": "gemma3:1b", "messages": [{"role": "user", "content": PROMPT}]})
    assert response.status == 200
    assert (await response.json())["choices"][0]["message"]["content"]
    seen = ollama.recorder.requests[-1].headers
    version, trace_id, parent_id, flags = seen["traceparent"].split("-")
    # As the SDK's non-recording span would send it: the caller's trace, a span of the gateway's, not sampled.
    assert (version, trace_id, flags) == ("00", CALLER_TRACE, "00")
    assert len(parent_id) == 16 and parent_id not in (CALLER_SPAN, "0" * 16)
    assert seen["tracestate"] == "vendor=abc" and seen["X-Request-ID"] == "req-unsampled-1"
    await nothing_recorded_before(spans, sampled_out, "req-unsampled-1")


async def test_an_unsampled_new_trace_gives_each_attempt_its_own_traceparent(
    sampled_out: TestClient, receiver: tuple[OtlpReceiver, TestServer], ollama: RunningUpstream,
    openai: RunningUpstream,
) -> None:
    spans, _ = receiver
    response = await sampled_out.post("/api/v1/inference", headers={"X-Request-ID": "req-unsampled-2"},
                                      json={"model_id": "missing-locally", "input_data": PROMPT})
    assert response.status == 200
    assert (await response.json())["provider"] == "openai"  # after a first attempt at Ollama
    first = ollama.recorder.requests[-1].headers["traceparent"].split("-")
    second = openai.recorder.requests[-1].headers["traceparent"].split("-")
    assert first[0] == second[0] == "00" and first[3] == second[3] == "00"
    assert first[1] == second[1] != "0" * 32 and len(first[1]) == 32  # one new trace
    assert first[2] != second[2]  # a span id per attempt
    assert "tracestate" not in ollama.recorder.requests[-1].headers
    assert openai.recorder.requests[-1].headers["X-Request-ID"] == "req-unsampled-2"
    await nothing_recorded_before(spans, sampled_out, "req-unsampled-2")

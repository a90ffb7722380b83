"""What operators see: Prometheus metrics at /metrics and the JSON access log.

In-process gateways share prometheus-client's registry, so these tests read how much a
counter moved, never its absolute value. The worker and log tests run the real process.
"""

from __future__ import annotations

import pathlib
import re

import aiohttp
import orjson
from aiohttp.test_utils import TestClient

from proxy.observability.model_labels import ModelLabels
from tests.support.app import AUTH, TOKEN, GatewayFactory, RunningUpstream
from tests.support.gateway_process import running_gateway
from tests.support.metrics import parse, scrape, value


async def test_a_stream_is_counted_with_its_provider_first_token_and_tokens(gateway: TestClient) -> None:
    route = {"route": "/api/v1/inference/stream"}
    before = await scrape(gateway)
    response = await gateway.post("/api/v1/inference/stream", json={"model_id": "gemma3:1b", "input_data": "2+2?"})
    await response.read()
    after = await scrape(gateway)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gateway_requests_total", **route, method="POST", status="200", provider="ollama") == 1
    assert moved("gateway_request_duration_seconds_count", **route, provider="ollama") == 1
    assert moved("gateway_time_to_first_token_seconds_count", **route, provider="ollama") == 1
    # The replayed Ollama stream reports 128 prompt and 9 completion tokens.
    assert moved("gateway_tokens_total", provider="ollama", model="gemma3:1b", direction="in") == 128
    assert moved("gateway_tokens_total", provider="ollama", model="gemma3:1b", direction="out") == 9
    assert ("gateway_requests_in_flight", frozenset()) in after


async def test_fallbacks_and_upstream_errors_are_counted_by_backend_and_reason(gateway: TestClient) -> None:
    before = await scrape(gateway)
    response = await gateway.post("/v1/chat/completions", json={
        "model": "missing-locally", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status == 200
    after = await scrape(gateway)
    for name in ("gateway_upstream_errors_total", "gateway_fallbacks_total"):
        assert value(after, name, backend="ollama", reason="model_not_found") - \
            value(before, name, backend="ollama", reason="model_not_found") == 1
    route = {"route": "/v1/chat/completions", "method": "POST", "status": "200", "provider": "openai"}
    assert value(after, "gateway_requests_total", **route) - value(before, "gateway_requests_total", **route) == 1


async def test_errors_and_unknown_paths_are_counted_without_raw_paths_as_labels(gateway: TestClient) -> None:
    before = await scrape(gateway)
    await gateway.get("/no/such/path/12345")
    await gateway.post("/api/v1/inference", json={"model_id": 5})
    after = await scrape(gateway)
    unmatched = {"route": "unmatched", "method": "GET", "status": "404", "provider": "none"}
    invalid = {"route": "/api/v1/inference", "method": "POST", "status": "400", "provider": "none"}
    for labels in (unmatched, invalid):
        assert value(after, "gateway_requests_total", **labels) - value(before, "gateway_requests_total", **labels) == 1
    assert not any("12345" in str(labels) for _, labels in after)


async def test_backend_gauges_follow_the_breaker(
    make_gateway: GatewayFactory, dead_url: object, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url, breaker_failures=1)
    samples = await scrape(gateway)
    assert value(samples, "gateway_backend_up", backend="ollama", provider="ollama") == 1
    assert value(samples, "gateway_backend_breaker_state", backend="ollama") == 0
    response = await gateway.post("/api/v1/inference", json={"model_id": "m", "input_data": "hi"})
    assert response.status == 200  # served by the fallback; the refused connection opened Ollama's breaker
    samples = await scrape(gateway)
    assert value(samples, "gateway_backend_up", backend="ollama", provider="ollama") == 0
    assert value(samples, "gateway_backend_breaker_state", backend="ollama") == 2
    assert value(samples, "gateway_backend_up", backend="openai", provider="openai") == 1


async def test_metrics_add_up_across_worker_processes(tmp_path: pathlib.Path, openai: RunningUpstream) -> None:
    variables = {"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": "", "OPENAI_API_ENDPOINT": str(openai.url),
                 "PROXY_WORKERS": "2"}
    async with running_gateway(variables, ready="/livez", log_dir=tmp_path, graceful=True) as running:
        base = f"http://127.0.0.1:{running.port}"
        workers_seen: set[str] = set()
        sent = 0
        # A new connection per request, so the kernel spreads them over both workers; each
        # worker's request ids start with its own prefix, which shows both served.
        while len(workers_seen) < 2 or sent < 20:
            assert sent < 400, "only one worker ever answered"
            async with aiohttp.ClientSession() as session, session.post(
                f"{base}/v1/chat/completions", headers=AUTH,
                json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
            ) as response:
                assert response.status == 200
                workers_seen.add(response.headers["X-Request-ID"][:12])
            sent += 1
        route = {"route": "/v1/chat/completions", "method": "POST", "status": "200", "provider": "openai"}
        for _ in range(6):  # scrapes land on either worker; each must count every request
            async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
                samples = parse(await response.text())
            assert value(samples, "gateway_requests_total", **route) == sent
            tokens_out = value(samples, "gateway_tokens_total", provider="openai", model="gpt-test", direction="out")
            assert tokens_out == 5 * sent


async def test_access_log_is_one_json_line_per_request_without_prompts_or_outputs(
    tmp_path: pathlib.Path, openai: RunningUpstream,
) -> None:
    prompt = "my-private-prompt-7731"
    variables = {"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": "", "OPENAI_API_ENDPOINT": str(openai.url)}
    async with running_gateway(variables, ready="/livez", log_dir=tmp_path, graceful=True) as running:
        base = f"http://127.0.0.1:{running.port}"
        async with aiohttp.ClientSession(headers=AUTH) as session:
            async with session.post(f"{base}/api/v1/inference/stream", headers={"X-Request-ID": "trace-abc.1"},
                                    json={"model_id": "gpt-test", "input_data": prompt}) as response:
                assert response.headers["X-Request-ID"] == "trace-abc.1"  # echoed
                await response.read()
            async with session.post(f"{base}/api/v1/inference", json={"model_id": "gpt-test", "input_data": prompt}) \
                    as response:
                generated = response.headers["X-Request-ID"]
                await response.read()
            async with session.get(f"{base}/livez") as response:
                assert response.status == 200
    output = running.output()
    assert prompt not in output and "fallback" not in output  # neither the prompt nor the answer's tokens
    assert TOKEN not in output
    records = {r["request_id"]: r for r in map(orjson.loads, running.stderr().splitlines())
               if r.get("event") == "access"}
    streamed = records["trace-abc.1"]
    assert streamed["route"] == "/api/v1/inference/stream" and streamed["status"] == 200
    assert (streamed["provider"], streamed["model"]) == ("openai", "gpt-test")
    assert (streamed["tokens_in"], streamed["tokens_out"]) == (7, 5)
    assert 0 < streamed["ttft_ms"] <= streamed["latency_ms"]
    assert re.fullmatch(r"[0-9a-f]{22}", generated)
    assert len(records) == 2  # the probe is not logged: orchestrators send one every few seconds
    single = records[generated]
    assert single["ttft_ms"] is None and single["tokens_out"] == 5 and single["method"] == "POST"


async def test_model_names_no_backend_served_never_become_labels(gateway: TestClient) -> None:
    for i in range(3):
        response = await gateway.post("/api/v1/inference", json={"model_id": f"missing-everywhere-{i}",
                                                                 "input_data": "hi"})
        assert response.status == 404
    samples = await scrape(gateway)
    assert not any("missing-everywhere" in str(labels) for _, labels in samples)


def test_model_labels_are_bounded_and_the_rest_count_as_other() -> None:
    labels = ModelLabels(limit=2)
    assert labels.label("invented", served=False) == "other"  # nothing answered for it
    assert [labels.label(name, served=True) for name in ("a", "b", "c")] == ["a", "b", "other"]
    assert labels.label("a", served=False) == "a"  # once served, a known name stays itself
    assert labels.label(None, served=True) == "none"


def test_one_key_cannot_take_every_model_label() -> None:
    labels = ModelLabels(limit=8, per_key=3)
    greedy = [labels.label(f"invented-{i}", served=True, key="greedy") for i in range(10)]
    assert greedy == ["invented-0", "invented-1", "invented-2"] + ["other"] * 7
    # Another tenant's new models still become labels, and known names are everyone's.
    assert labels.label("phi-4-mini", served=True, key="team") == "phi-4-mini"
    assert labels.label("invented-1", served=True, key="team") == "invented-1"

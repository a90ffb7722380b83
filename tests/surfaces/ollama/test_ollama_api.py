"""The Ollama API over plain HTTP, for what a client library hides: the bytes of a relayed
stream, every field passing through, errors in Ollama's shape, the provider header, routed
names, and bad input stopped before any upstream sees it."""

from __future__ import annotations

import pathlib

import orjson
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.metrics import scrape, value
from tests.support.tenant_keys import ADMIN, bearer, write_keys
from tests.support.upstreams.ollama import transcript


def ndjson(body: bytes) -> list[dict]:
    return [orjson.loads(line) for line in body.splitlines() if line.strip()]


async def test_a_stream_is_relayed_as_ollama_sent_it_and_streams_by_default(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    # No "stream" field: Ollama streams, and so does the gateway.
    response = await gateway.post("/api/chat", json={"model": "gemma3:1b", "messages": [
        {"role": "user", "content": "2+2?"}]})
    assert response.status == 200 and response.content_type == "application/x-ndjson"
    assert response.headers["X-Gateway-Provider"] == "ollama"
    assert await response.read() == "".join(transcript("chat_stream")["body_lines"]).encode()
    assert ollama.recorder.bodies("/api/chat")[-1]["stream"] is True


async def test_every_field_ollama_knows_passes_through_untouched(gateway: TestClient, ollama: RunningUpstream) -> None:
    chat = {  # a model that has every capability asked (tests/support/upstreams/ollama_features.py)
        "model": "qwen3-vl:8b", "stream": False, "keep_alive": "10m", "think": "high", "format": {"type": "object"},
        "options": {"temperature": 0.2, "num_ctx": 8192, "mirostat": 1, "repeat_penalty": 1.1, "stop": ["\n"]},
        "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "look", "images": ["aGVsbG8="]},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add", "arguments": {}}}]},
            {"role": "tool", "content": "3", "tool_name": "add"},
        ],
    }
    generate = {"model": "gemma3:1b", "prompt": "def f(", "suffix": "    return x", "raw": True, "stream": False,
                "template": "{{ .Prompt }}", "context": [1, 2, 3], "images": ["aGVsbG8="], "system": "code"}
    for path, body in (("/api/chat", chat), ("/api/generate", generate)):
        response = await gateway.post(path, json=body)
        assert response.status == 200, await response.text()
        # Every field as sent; only `stream`, as a single answer is read from Ollama's stream.
        assert ollama.recorder.bodies(path)[-1] == {**body, "stream": True}


async def test_a_stream_cut_by_ollama_ends_with_its_error_line(gateway: TestClient) -> None:
    response = await gateway.post("/api/chat", json={"model": "midstream-error", "messages": [
        {"role": "user", "content": "hi"}]})
    lines = (await response.read()).splitlines(keepends=True)
    recorded = transcript("chat_midstream_error")["body_lines"]
    assert response.status == 200 and lines == [line.encode() for line in recorded]
    assert orjson.loads(lines[-1]) == {"error": "an error was encountered while running the model: unexpected EOF"}


async def test_a_fallback_stream_cut_after_its_start_ends_with_an_error_line(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post("/api/generate", json={"model": "midstream-error", "prompt": "hi"})
    lines = ndjson(await response.read())
    assert response.status == 200 and response.headers["X-Gateway-Provider"] == "openai"
    assert [line.get("response") for line in lines[:-1]] == ["Hello", " from"]
    assert not any(line.get("done") for line in lines)
    assert "error" in lines[-1] and set(lines[-1]) == {"error"}


async def test_the_fallback_answers_in_ollamas_shape(make_gateway: GatewayFactory, openai: RunningUpstream) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post("/api/chat", json={"model": "gpt-test", "messages": [
        {"role": "user", "content": "hi"}], "options": {"num_predict": 20, "seed": 7, "top_k": 3}})
    lines = ndjson(await response.read())
    assert response.headers["X-Gateway-Provider"] == "openai"
    assert "".join(line["message"]["content"] for line in lines) == "Hello from the fallback."
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop" and final["model"] == "gpt-test"
    assert (final["prompt_eval_count"], final["eval_count"]) == (7, 5) and final["total_duration"] > 0
    sent = openai.recorder.bodies("/v1/chat/completions")[-1]
    assert (sent["max_tokens"], sent["seed"], sent["top_k"]) == (20, 7, 3)


@pytest.mark.parametrize(("path", "body", "field"), [
    # A suffix is a text completion (/completions), which has no system prompt.
    ("/api/generate", {"prompt": "def f(", "suffix": "x", "system": "code"}, "$.system"),
    ("/api/generate", {"prompt": ""}, "$.prompt"),  # a model load: Ollama's alone
    ("/api/generate", {"prompt": "hi", "context": [1, 2, 3]}, "$.context"),
    ("/api/generate", {"prompt": "hi", "template": "{{ .Prompt }}"}, "$.template"),
    ("/api/generate", {"prompt": "hi", "raw": True}, "$.raw"),
    # "hello" is no image: its media type cannot be told, and a data: URL needs one.
    ("/api/chat", {"messages": [{"role": "user", "content": "look", "images": ["aGVsbG8="]}]},
     "$.messages[0].images[0]"),
    ("/api/chat", {"messages": [{"role": "tool", "content": "3", "tool_name": "add"}]}, "$.messages[0]"),
    ("/api/chat", {"messages": [{"role": "user", "content": "hi"}], "format": {"type": "array"}}, "$.format"),
])
async def test_what_the_fallback_cannot_honour_is_not_sent_to_it(
    make_gateway: GatewayFactory, openai: RunningUpstream, path: str, body: dict, field: str,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post(path, json={"model": "gpt-test", **body})
    assert response.status == 400
    error = (await response.json())["error"]
    # A capability refusal, as on /v1: the backend that refused, why, and the field.
    assert error.startswith("no backend can serve what this request asks for (openai: ")
    assert error.endswith(f" @ {field})")
    assert openai.recorder.requests == []


@pytest.mark.parametrize("stream", [False, True])
async def test_a_suffix_on_the_fallback_is_a_fill_in_the_middle_text_completion(
    make_gateway: GatewayFactory, openai: RunningUpstream, stream: bool,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    response = await gateway.post("/api/generate", json={
        "model": "gpt-test", "prompt": "def add(a, b):\n", "suffix": "    return total\n", "stream": stream,
        "options": {"num_predict": 16, "temperature": 0}})
    lines = ndjson(await response.read())
    assert response.status == 200 and response.headers["X-Gateway-Provider"] == "openai"
    assert "".join(line["response"] for line in lines) == "Hello from the fallback."
    assert lines[-1]["done"] is True and lines[-1]["eval_count"] == 5
    [sent] = openai.recorder.bodies("/v1/completions")
    assert (sent["prompt"], sent["suffix"], sent["max_tokens"], sent["temperature"]) == (
        "def add(a, b):\n", "    return total\n", 16, 0)
    assert openai.recorder.bodies("/v1/chat/completions") == []


async def test_a_model_that_cannot_insert_is_refused_naming_the_suffix(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url)
    response = await gateway.post("/api/generate", json={
        "model": "llama3.2", "prompt": "def f(", "suffix": "    return x", "stream": False})
    assert response.status == 400
    assert (await response.json())["error"].endswith("does not support insert @ $.suffix)")
    completion = await gateway.post("/v1/completions", json={
        "model": "llama3.2", "prompt": "def f(", "suffix": "    return x"})
    assert completion.status == 400
    assert (await completion.json())["error"]["message"].endswith("does not support insert @ $.suffix)")
    assert [body["suffix"] for body in ollama.recorder.bodies("/api/generate")] == ["    return x"] * 2


@pytest.mark.parametrize(("body", "named"), [
    ({"model": 5, "messages": []}, "$.model"),
    ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "$.messages[0].content"),
    ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, "$.messages[0].role"),
    ({"model": "m", "messages": [], "options": {"temperature": "hot"}}, "$.options.temperature"),
    ({"model": "m", "messages": [], "stream": "yes"}, "$.stream"),
    ({"model": "m", "messages": [], "think": "maybe"}, "$.think"),
    ({"model": "m", "messages": [], "sneaky": 1}, "sneaky"),
])
async def test_bad_input_is_a_400_in_ollamas_shape_naming_the_field(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, body: dict, named: str,
) -> None:
    response = await gateway.post("/api/chat", json=body)
    error = await response.json()
    assert response.status == 400 and set(error) == {"error"} and named in error["error"]
    assert ollama.recorder.requests == [] and openai.recorder.requests == []


async def test_errors_on_ollama_paths_have_ollamas_shape_and_api_v1_keeps_its_own(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, headers={})
    refused = await gateway.get("/api/tags")
    assert refused.status == 401 and set(await refused.json()) == {"error"}
    missing = await gateway.post("/api/chat", headers=AUTH, json={"model": "missing-model", "stream": False})
    assert missing.status == 404 and "not found" in (await missing.json())["error"]
    wrong_method = await gateway.get("/api/chat", headers=AUTH)
    assert wrong_method.status == 405 and (await wrong_method.json()) == {"error": "GET is not allowed on /api/chat"}
    for elsewhere in ("/api/v1/nowhere", "/api/v2/health"):  # not Ollama's: the contract's shape
        contract = await gateway.get(elsewhere, headers=AUTH)
        assert contract.status == 404 and (await contract.json())["code"] == "not_found"


async def test_root_answers_without_a_token_and_version_is_ollamas(make_gateway: GatewayFactory,
                                                                   ollama: RunningUpstream) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, headers={})
    for method in ("GET", "HEAD"):
        response = await gateway.request(method, "/")
        assert response.status == 200
    assert await (await gateway.get("/")).text() == "Ollama is running"
    version = await gateway.get("/api/version", headers=AUTH)
    assert await version.json() == {"version": "0.13.5"}  # the recorded server's


async def test_a_routed_model_is_asked_for_by_its_backend_name_and_answered_by_its_public_one(
    make_gateway: GatewayFactory, ollama: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text('[models."house-chat"]\nbackends = [{ backend = "ollama", model = "gemma3:1b" }]\n'
                      'max_tokens = { max = 64 }\n')
    gateway = await make_gateway(ollama_base_url=ollama.url, routes_file=str(routes))
    response = await gateway.post("/api/chat", json={"model": "house-chat", "messages": [
        {"role": "user", "content": "hi"}], "options": {"num_predict": 500}})
    lines = ndjson(await response.read())
    assert {line["model"] for line in lines} == {"house-chat"}
    assert "".join(line["message"]["content"] for line in lines) == "2 + 2 = 4\n"
    sent = ollama.recorder.bodies("/api/chat")[-1]
    assert sent["model"] == "gemma3:1b" and sent["options"]["num_predict"] == 64  # the route's ceiling
    listed = await (await gateway.get("/api/tags")).json()
    assert [model["name"] for model in listed["models"]] == ["house-chat"]


async def test_the_older_embeddings_endpoint(gateway: TestClient, make_gateway: GatewayFactory,
                                             openai: RunningUpstream) -> None:
    response = await gateway.post("/api/embeddings", json={"model": "nomic-embed-text", "prompt": "hi"})
    assert (await response.json())["embedding"][:2] == [0.5670403838157654, 0.009260174818336964]
    fallback = await make_gateway(openai_endpoint=openai.url)
    response = await fallback.post("/api/embeddings", json={"model": "nomic-embed-text", "prompt": "hello"})
    assert await response.json() == {"embedding": [5.0, 0.0, 0.5]}
    assert response.headers["X-Gateway-Provider"] == "openai"


async def test_embed_refuses_too_many_inputs_before_any_upstream(
    make_gateway: GatewayFactory, ollama: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, embed_max_inputs=2)
    response = await gateway.post("/api/embed", json={"model": "nomic-embed-text", "input": ["a", "b", "c"]})
    assert response.status == 400 and "$.input" in (await response.json())["error"]
    assert ollama.recorder.requests == []


async def test_a_passed_through_stream_is_counted_in_metrics_and_the_keys_usage(
    make_gateway: GatewayFactory, ollama: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    keys = write_keys(tmp_path / "keys.toml", {"alice": {"tokens_per_minute": 100000}})
    gateway = await make_gateway(headers={}, api_tokens=(), keys_file=str(keys), ollama_base_url=ollama.url)
    before = await scrape(gateway)
    response = await gateway.post("/api/chat", headers=bearer("alice"), json={
        "model": "gemma3:1b", "messages": [{"role": "user", "content": "2+2?"}]})
    await response.read()
    after = await scrape(gateway)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"route": "/api/chat", "provider": "ollama"}
    assert moved("gateway_requests_total", **route, method="POST", status="200") == 1
    assert moved("gateway_time_to_first_token_seconds_count", **route) == 1
    # Read from Ollama's final line: 128 prompt and 9 completion tokens.
    assert moved("gateway_tokens_total", provider="ollama", model="gemma3:1b", direction="in") == 128
    assert moved("gateway_tokens_total", provider="ollama", model="gemma3:1b", direction="out") == 9
    usage = await (await gateway.get("/api/v1/admin/usage", headers=bearer(ADMIN))).json()
    assert usage["keys"]["alice"]["total"] == {"in": 128, "out": 9}


async def test_a_model_load_without_a_prompt_is_for_ollama_only(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url)
    for path, body in (("/api/generate", {"model": "gpt-test"}), ("/api/chat", {"model": "gpt-test", "messages": []})):
        response = await gateway.post(path, json={**body, "keep_alive": 0})
        assert response.status == 400 and "loads or unloads a model" in (await response.json())["error"]
    assert openai.recorder.requests == []


async def test_a_key_over_its_limit_gets_a_429_in_ollamas_shape(
    make_gateway: GatewayFactory, ollama: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    keys = write_keys(tmp_path / "keys.toml", {"alice": {"requests_per_minute": 1}})
    gateway = await make_gateway(headers=bearer("alice"), api_tokens=(), keys_file=str(keys),
                                 ollama_base_url=ollama.url)
    body = {"model": "gemma3:1b", "prompt": "hi", "stream": False}
    assert (await gateway.post("/api/generate", json=body)).status == 200
    refused = await gateway.post("/api/generate", json=body)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "requests_per_minute" in (await refused.json())["error"]
    assert len(ollama.recorder.bodies("/api/generate")) == 1

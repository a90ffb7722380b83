"""End to end against a real model server: llama.cpp serving SmolLM2-135M-Instruct.

Ollama is configured but unreachable, so every request takes the real fallback path to
the OpenAI-compatible llama.cpp server, exactly as `make run` does on a machine without
Ollama. Model output is not fixed, so these tests check shapes, counts and behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import jsonschema
import pytest
from yarl import URL

from tests.support.app import GatewayFactory
from tests.support.openai_client import client_for
from tests.support.ports import free_port
from tests.support.sse import events

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_model() -> Iterator[URL]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.local_model", "--port", str(port), "--parallel", "4", "--ctx", "4096"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local model server did not start: {process.stderr.read()[-2000:]!r}")
            time.sleep(0.2)
        yield URL(f"http://127.0.0.1:{port}/v1")
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()


@pytest.fixture
async def real_gateway(make_gateway: GatewayFactory, local_model: URL, dead_url: URL):
    return await make_gateway(ollama_base_url=dead_url, openai_endpoint=local_model)


async def test_single_shot_answer_from_the_real_model(real_gateway) -> None:
    response = await real_gateway.post("/api/v1/inference", json={
        "model_id": "smollm2", "input_data": "Say hello.", "parameters": {"max_tokens": 12, "temperature": 0},
    })
    assert response.status == 200
    body = await response.json()
    assert body["provider"] == "openai"
    assert body["output"].strip()
    assert 0 < body["usage"]["completion_tokens"] <= 12
    assert body["finish_reason"] in ("stop", "length")


async def test_stream_from_the_real_model_relays_every_token(real_gateway) -> None:
    response = await real_gateway.post("/api/v1/inference/stream", json={
        "model_id": "smollm2",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a color."}],
        "parameters": {"max_tokens": 16, "seed": 1},
    })
    assert response.status == 200
    body = events(await response.read())
    tokens, last = body[:-1], body[-1]
    assert tokens and all(e["done"] is False and e["provider"] == "openai" for e in tokens)
    assert last["done"] is True and "error" not in last
    # One event per generated token (llama.cpp streams one token per chunk).
    assert last["usage"]["completion_tokens"] == len(tokens)


async def test_batch_against_the_real_model(real_gateway) -> None:
    inputs = [{"input_data": f"Count to {n}."} for n in range(1, 5)] + [{"messages": []}]
    response = await real_gateway.post("/api/v1/inference/batch", json={
        "model_id": "smollm2", "inputs": inputs, "parameters": {"max_tokens": 8}, "max_concurrency": 2,
    })
    assert response.status == 200
    body = await response.json()
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in body["results"]] == [200, 200, 200, 200, 400]
    assert all(r["usage"]["completion_tokens"] <= 8 for r in body["results"][:4])
    assert (body["succeeded"], body["failed"]) == (4, 1)


async def test_embeddings_from_the_real_model(real_gateway) -> None:
    response = await real_gateway.post("/api/v1/embeddings", json={
        "model_id": "smollm2", "input": ["the sea", "the sea", "a tax form"],
    })
    assert response.status == 200
    body = await response.json()
    vectors = [d["embedding"] for d in body["data"]]
    assert vectors == body["embeddings"]
    assert len(vectors) == 3 and len({len(v) for v in vectors}) == 1 and len(vectors[0]) > 100
    assert vectors[0] == pytest.approx(vectors[1], abs=1e-5)  # same text, same vector
    assert vectors[0] != pytest.approx(vectors[2], abs=1e-3)
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]


async def test_health_reports_the_real_model_server(real_gateway) -> None:
    response = await real_gateway.get("/api/v1/health")
    assert response.status == 200
    backends = {b["name"]: b for b in (await response.json())["backends"]}
    assert backends["openai"]["healthy"] is True
    assert backends["ollama"]["healthy"] is False


async def test_the_local_model_is_listed_under_its_plain_name(real_gateway) -> None:
    """Not the GGUF file's path: the name the README's examples send is the one listed."""
    response = await real_gateway.get("/v1/models")
    assert response.status == 200
    assert [m["id"] for m in (await response.json())["data"]] == ["smollm2"]


# Small on purpose: the model writes a few tokens a second on a busy machine.
CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}},
        "required": ["city"], "additionalProperties": False}
CITY_FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": CITY}}


async def test_a_json_schema_answer_from_the_real_model_parses_and_matches(real_gateway) -> None:
    # llama.cpp turns the schema into a grammar: the model cannot produce anything else.
    asked = {"model": "smollm2", "messages": [{"role": "user", "content": "Name a city."}],
             "response_format": CITY_FORMAT, "max_tokens": 24, "temperature": 0}
    response = await real_gateway.post("/v1/chat/completions", json=asked)
    assert response.status == 200, await response.text()
    answer = (await response.json())["choices"][0]
    jsonschema.validate(json.loads(answer["message"]["content"]), CITY)
    assert answer["finish_reason"] == "stop"
    streamed = await real_gateway.post("/v1/chat/completions", json={**asked, "stream": True})
    chunks = [json.loads(b[6:]) for b in (await streamed.read()).split(b"\n\n") if b.startswith(b"data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    jsonschema.validate(json.loads(text), CITY)


async def test_text_completions_from_the_real_model(real_gateway) -> None:
    """/v1/completions served by llama.cpp's own /v1/completions, through the official client."""
    async with client_for(real_gateway) as client:
        completion = await client.completions.create(
            model="smollm2", prompt="The capital of France is", max_tokens=8, temperature=0, echo=True)
        stream = await client.completions.create(
            model="smollm2", prompt="One, two, three,", max_tokens=8, stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    [choice] = completion.choices
    assert choice.text.startswith("The capital of France is") and choice.text.removeprefix(
        "The capital of France is").strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 8
    assert "".join(c.choices[0].text for c in chunks if c.choices).strip()
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= 8


async def test_responses_from_the_real_model(real_gateway) -> None:
    """/v1/responses over llama.cpp's chat completions, single shot and streamed."""
    async with client_for(real_gateway) as client:
        response = await client.responses.create(
            model="smollm2", instructions="You are terse.", input="Name a color.", max_output_tokens=8)
        stream = await client.responses.create(model="smollm2", input="Name a fruit.", max_output_tokens=8,
                                               stream=True)
        events = [event async for event in stream]
    assert response.output_text.strip() and response.status in ("completed", "incomplete")
    assert response.usage is not None and 0 < response.usage.output_tokens <= 8
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    final = events[-1]
    # Eight tokens may end the answer early: OpenAI then ends with response.incomplete.
    assert final.type in ("response.completed", "response.incomplete") and final.response.status == final.type[9:]
    assert deltas and final.response.output_text == "".join(deltas)
    # llama.cpp sends a chunk per token, except that it holds back a token ending inside a
    # UTF-8 character and sends it with the next: a delta carries one token or more.
    assert final.response.usage is not None and 0 < len(deltas) <= final.response.usage.output_tokens

"""POST /api/v1/embeddings: both response shapes, order, usage, fallback and failure statuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.upstreams.ollama import transcript

URL_ = "/api/v1/embeddings"

SINGLE = orjson.loads(transcript("embed_single")["body"])  # real capture: one text, sent as a string
LISTED = orjson.loads(transcript("embed_list")["body"])  # two texts, sent as a list


def assert_both_shapes(body: dict[str, Any], vectors: list[list[float]]) -> None:
    """`data[i].embedding` (the SDKs) and `embeddings[i]` (the docs) carry the same vectors, in order."""
    assert body["object"] == "list"
    assert body["data"] == [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    assert body["embeddings"] == vectors


async def test_single_string_gets_one_768_float_vector_from_ollama(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url)
    response = await gateway.post(URL_, json={"model_id": "nomic-embed-text", "input": "Hello world"})
    assert response.status == 200
    body = await response.json()
    assert len(body["data"]) == len(body["embeddings"]) == 1
    assert len(body["embeddings"][0]) == 768
    assert all(isinstance(x, float) for x in body["embeddings"][0])
    assert_both_shapes(body, SINGLE["embeddings"])
    assert body["model"] == "nomic-embed-text"
    assert body["provider"] == "ollama"
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    # Forwarded as the client gave it, as in the recorded real call.
    assert [(r.method, r.path, r.json) for r in ollama.recorder.requests] == [
        ("POST", "/api/embed", {"model": "nomic-embed-text", "input": "Hello world"}),
    ]


async def test_list_input_gets_vectors_in_input_order_from_ollama(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url)
    texts = ["The quick brown fox jumps over the lazy dog", "Ollama makes it easy to run large language models locally"]
    response = await gateway.post(URL_, json={"model_id": "nomic-embed-text", "input": texts})
    assert response.status == 200
    body = await response.json()
    assert_both_shapes(body, LISTED["embeddings"])
    assert [len(v) for v in body["embeddings"]] == [768, 768]
    assert all(isinstance(x, float) for v in body["embeddings"] for x in v)
    assert body["model"] == "nomic-embed-text"
    assert body["provider"] == "ollama"
    assert body["usage"] == {"prompt_tokens": 21, "total_tokens": 21}
    assert all(type(n) is int for n in body["usage"].values())
    sent = ollama.recorder.requests
    assert [(r.method, r.path) for r in sent] == [("POST", "/api/embed")]
    assert sent[0].json == {"model": "nomic-embed-text", "input": texts}


async def test_ollama_answering_the_wrong_number_of_vectors_is_a_bad_upstream_answer(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    # The replay answers any list with its two-vector capture: three texts get two vectors.
    gateway = await make_gateway(ollama_base_url=ollama.url)
    response = await gateway.post(URL_, json={"model_id": "nomic-embed-text", "input": ["a", "b", "c"]})
    assert response.status == 502
    body = await response.json()
    assert body["code"] == "bad_upstream_response"
    assert [a["backend"] for a in body["attempts"]] == ["ollama"]


async def test_unreachable_ollama_falls_back_to_openai_with_vectors_ordered_by_index(
    make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)
    texts = ["a", "two words", "three words here"]
    response = await gateway.post(URL_, json={"model_id": "text-embedding-3-small", "input": texts})
    assert response.status == 200
    body = await response.json()
    # The test server lists data in reverse; its vector for text i is [len(text), i, 0.5].
    assert_both_shapes(body, [[float(len(t)), float(i), 0.5] for i, t in enumerate(texts)])
    assert body["provider"] == "openai"
    assert body["model"] == "text-embedding-3-small"
    assert body["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    assert openai.recorder.requests[-1].path == "/v1/embeddings"
    assert openai.recorder.requests[-1].json == {"model": "text-embedding-3-small", "input": texts}


async def test_model_missing_everywhere_is_404(gateway: TestClient) -> None:
    response = await gateway.post(URL_, json={"model_id": "missing-everywhere", "input": ["hi"]})
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "model_not_found"
    assert body["retryable"] is False
    assert [(a["backend"], a["code"]) for a in body["attempts"]] == [
        ("ollama", "model_not_found"), ("openai", "model_not_found"),
    ]
    # Ollama's embed endpoint words its 404 differently from chat's.
    assert body["attempts"][0]["message"] == 'model "missing-everywhere" not found, try pulling it first'


async def test_model_missing_in_ollama_is_served_by_openai(gateway: TestClient, openai: RunningUpstream) -> None:
    response = await gateway.post(URL_, json={"model_id": "missing-locally", "input": "hi"})
    assert response.status == 200
    body = await response.json()
    assert body["provider"] == "openai"
    assert body["embeddings"] == [[2.0, 0.0, 0.5]]
    assert openai.recorder.requests[-1].json["model"] == "missing-locally"


async def test_busy_ollama_falls_back_and_busy_openai_makes_503_listing_both(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    response = await gateway.post(URL_, json={"model_id": "busy-embed", "input": "hi"})
    assert response.status == 503
    body = await response.json()
    assert body["code"] == "upstream_unavailable"
    assert body["retryable"] is True
    assert [a["backend"] for a in body["attempts"]] == ["ollama", "openai"]
    assert "server busy" in body["attempts"][0]["message"]
    assert "Rate limit" in body["attempts"][1]["message"]
    assert ollama.recorder.paths() == ["/api/embed"]
    assert openai.recorder.paths() == ["/v1/embeddings"]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"model_id": "nomic-embed-text", "input": []}, "must not be empty @ $.input"),
        ({"model_id": "nomic-embed-text"}, "required field missing @ $.input"),
        ({"model_id": "nomic-embed-text", "input": ["a", 1]}, "expected a string or a list of strings"),
        ({"model_id": "nomic-embed-text", "input": 5}, "expected a string or a list of strings"),
        ({"input": "a"}, "required field missing @ $.model_id"),
        ({"model_id": "nomic-embed-text", "input": "a", "dimensions": 3}, "unknown field(s): dimensions @ $"),
    ],
)
async def test_invalid_body_is_400_naming_the_problem_and_nothing_is_sent(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, payload: dict[str, Any], problem: str,
) -> None:
    response = await gateway.post(URL_, json=payload)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "invalid_input"
    assert any(problem in e for e in body["errors"])
    assert ollama.recorder.requests == [] and openai.recorder.requests == []


async def test_more_texts_than_allowed_is_400_and_nothing_is_sent(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, embed_max_inputs=2)
    response = await gateway.post(URL_, json={"model_id": "nomic-embed-text", "input": ["a", "b", "c"]})
    assert response.status == 400
    assert (await response.json())["errors"] == ["at most 2 texts are accepted @ $.input"]
    assert ollama.recorder.requests == []


async def test_embeddings_require_the_bearer_token(make_gateway: GatewayFactory, ollama: RunningUpstream) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, headers={})
    response = await gateway.post(URL_, json={"model_id": "nomic-embed-text", "input": "hi"})
    assert response.status == 401
    assert (await response.json())["code"] == "unauthorized"
    assert ollama.recorder.requests == []

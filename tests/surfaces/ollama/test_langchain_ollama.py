"""LangChain's ChatOllama and OllamaEmbeddings (langchain-ollama, pinned) pointed at the gateway,
with the key in the headers they pass to Ollama's client; served by an Ollama backend and
by the fallback, as in test_ollama_client.py."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from langchain_ollama import ChatOllama, OllamaEmbeddings
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.tenant_keys import bearer, write_keys


@pytest.fixture(params=["ollama", "fallback"])
async def served(
    request: pytest.FixtureRequest, make_gateway: GatewayFactory, ollama: RunningUpstream,
    openai: RunningUpstream, dead_url: URL, tmp_path: pathlib.Path,
) -> AsyncIterator[tuple[str, TestClient]]:
    keys = write_keys(tmp_path / "keys.toml", {"alice": {}})
    first = ollama.url if request.param == "ollama" else dead_url
    gateway = await make_gateway(headers={}, api_tokens=(), keys_file=str(keys), ollama_base_url=first,
                                 openai_endpoint=openai.url)
    yield request.param, gateway
    # LangChain never closes the Ollama clients it makes; the test does, for a clean exit.
    for model in _MADE:
        await model._async_client.close()
        model._client.close()
    _MADE.clear()


_MADE: list[ChatOllama | OllamaEmbeddings] = []


def _chat(gateway: TestClient) -> ChatOllama:
    _MADE.append(ChatOllama(model="gemma3:1b", base_url=str(gateway.make_url("")),
                            client_kwargs={"headers": bearer("alice")}))
    return _MADE[-1]  # type: ignore[return-value]


async def test_chat_ollama_invoke(served: tuple[str, TestClient]) -> None:
    by, gateway = served
    answer = await _chat(gateway).ainvoke("What is 2+2?")
    assert answer.content == ("2 + 2 = 4\n" if by == "ollama" else "Hello from the fallback.")
    # LangChain reads Ollama's counts into its usage: they crossed the gateway in either case.
    expected = (128, 9) if by == "ollama" else (7, 5)
    usage = answer.usage_metadata
    assert usage is not None and (usage["input_tokens"], usage["output_tokens"]) == expected


async def test_chat_ollama_stream(served: tuple[str, TestClient]) -> None:
    by, gateway = served
    chunks = [chunk async for chunk in _chat(gateway).astream("What is 2+2?")]
    assert len(chunks) > 2
    assert "".join(str(chunk.content) for chunk in chunks) == (
        "2 + 2 = 4\n" if by == "ollama" else "Hello from the fallback.")


async def test_ollama_embeddings(served: tuple[str, TestClient]) -> None:
    by, gateway = served
    embeddings = OllamaEmbeddings(model="nomic-embed-text", base_url=str(gateway.make_url("")),
                                  client_kwargs={"headers": bearer("alice")})
    _MADE.append(embeddings)
    vectors = await embeddings.aembed_documents(["one", "three"])
    query = await embeddings.aembed_query("four")
    assert len(vectors) == 2 and query
    if by == "fallback":
        assert [vector[:2] for vector in vectors] == [[3.0, 0.0], [5.0, 1.0]] and query[:2] == [4.0, 0.0]
    else:
        assert len(vectors[0]) > 100

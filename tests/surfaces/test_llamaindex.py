"""LlamaIndex's own classes (pinned in the test extra) pointed at the gateway, unchanged: `OpenAILike`
over /v1/completions (its default, `is_chat_model=False`) and /v1/chat/completions, `OpenAILikeEmbedding`
over /v1/embeddings, and `Ollama` / `OllamaEmbedding` over the Ollama API with the key in their headers.
Each is served by the Ollama test server (replayed real traffic) and, with Ollama unreachable, by the
OpenAI test server through the fallback; the upstreams' recorders show what LlamaIndex's request became.

LlamaIndex's sync methods run in a worker thread: the gateway serves on this test's event loop. The
NLTK and tiktoken data LlamaIndex uses ship inside llama-index-core, so these tests need no network
beyond loopback (the chat engine's memory counts tokens with that tiktoken encoding)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import httpx
import ollama as ollama_client
import openai as openai_client
import pytest
from aiohttp.test_utils import TestClient
from attrs import Factory, frozen
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory
from llama_index.embeddings.ollama import OllamaEmbedding
from llama_index.embeddings.openai_like import OpenAILikeEmbedding
from llama_index.llms.ollama import Ollama
from llama_index.llms.openai_like import OpenAILike
from sqlalchemy.ext.asyncio import create_async_engine
from yarl import URL

from tests.support.app import AUTH, TOKEN, GatewayFactory, RunningUpstream
from tests.support.upstreams.openai import TOKENS

T = TypeVar("T")

FALLBACK_TEXT = "".join(TOKENS)
# Replayed from a real Ollama (tests/support/data/ollama_transcripts.json): generate_stream, chat_stream.
GENERATED = "Okay, here we go!\n\n1, 2, 3, 4, 5\n"
CHATTED = "2 + 2 = 4\n"
MESSAGES = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="2+2?")]
SENT_MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
# LlamaIndex's OpenAI classes send temperature 0.1 unless told otherwise; max_tokens is set here.
OPENAI_LIKE_OPTIONS = {"temperature": 0.1, "num_predict": 32}


@frozen
class Served:
    by: str  # "ollama" or "fallback"
    gateway: TestClient
    ollama: RunningUpstream
    openai: RunningUpstream
    http: httpx.Client = Factory(httpx.Client)  # handed to LlamaIndex's OpenAI classes, closed after
    ahttp: httpx.AsyncClient = Factory(httpx.AsyncClient)
    made: list[Ollama | OllamaEmbedding] = Factory(list)

    @property
    def model(self) -> str:
        """A chat model the serving backend lists (the Ollama classes ask /api/show about it)."""
        return "gemma3:1b" if self.by == "ollama" else "gpt-test"

    def openai_like(self, *, token: str = TOKEN, **options: Any) -> OpenAILike:
        return OpenAILike(model=self.model, api_base=str(self.gateway.make_url("/v1")), api_key=token,
                          max_tokens=32, max_retries=0, http_client=self.http, async_http_client=self.ahttp,
                          **options)

    def openai_like_embedding(self, *, token: str = TOKEN, **options: Any) -> OpenAILikeEmbedding:
        return OpenAILikeEmbedding(model_name="nomic-embed-text", api_base=str(self.gateway.make_url("/v1")),
                                   api_key=token, max_retries=0, http_client=self.http,
                                   async_http_client=self.ahttp, **options)

    def ollama_llm(self, *, headers: dict[str, str] = AUTH, **options: Any) -> Ollama:
        llm = Ollama(model=self.model, base_url=str(self.gateway.make_url("")), headers=headers, temperature=0.2,
                     **options)
        self.made.append(llm)
        return llm

    def ollama_embedding(self, *, headers: dict[str, str] = AUTH, **options: Any) -> OllamaEmbedding:
        embedding = OllamaEmbedding(model_name="nomic-embed-text", base_url=str(self.gateway.make_url("")),
                                    client_kwargs={"headers": headers}, **options)
        self.made.append(embedding)
        return embedding

    def upstream_bodies(self, ollama_path: str, openai_path: str) -> list[Any]:
        if self.by == "ollama":
            return self.ollama.recorder.bodies(ollama_path)
        return self.openai.recorder.bodies(openai_path)

    async def close(self) -> None:
        self.http.close()
        await self.ahttp.aclose()
        for made in self.made:  # the ollama clients they made (LlamaIndex never closes them)
            if isinstance(made, Ollama):
                made.client.close()
                await made.async_client.close()
            else:
                made._client.close()
                await made._async_client.close()


@pytest.fixture(params=["ollama", "fallback"])
async def served(
    request: pytest.FixtureRequest, make_gateway: GatewayFactory, ollama: RunningUpstream,
    openai: RunningUpstream, dead_url: URL,
) -> AsyncIterator[Served]:
    first = ollama.url if request.param == "ollama" else dead_url  # nothing listens at dead_url
    gateway = await make_gateway(ollama_base_url=first, openai_endpoint=openai.url)
    served = Served(request.param, gateway, ollama, openai)
    yield served
    await served.close()


async def in_thread(call: Callable[[], T]) -> T:
    """A sync LlamaIndex method, off the event loop that the in-process gateway answers on."""
    return await asyncio.to_thread(call)


async def test_openai_like_complete_is_a_text_completion(served: Served) -> None:
    llm = served.openai_like()
    answers = [await llm.acomplete("Count from 1 to 5"), await in_thread(lambda: llm.complete("Count from 1 to 5"))]
    expected, usage = (GENERATED, (16, 22)) if served.by == "ollama" else (FALLBACK_TEXT, (7, len(TOKENS)))
    for answer in answers:
        assert answer.text == expected
        counts = answer.additional_kwargs
        assert (counts["prompt_tokens"], counts["completion_tokens"]) == usage  # the upstream's counts
    sent = served.upstream_bodies("/api/generate", "/v1/completions")
    if served.by == "ollama":
        assert sent == [{"model": "gemma3:1b", "prompt": "Count from 1 to 5", "stream": True,
                         "options": OPENAI_LIKE_OPTIONS}] * 2
    else:
        assert [(b["model"], b["prompt"], b["max_tokens"], b["temperature"]) for b in sent] == [
            ("gpt-test", "Count from 1 to 5", 32, 0.1)] * 2
        assert served.openai.recorder.bodies("/v1/chat/completions") == []  # a completion, not a chat


async def test_openai_like_stream_complete(served: Served) -> None:
    llm = served.openai_like()
    streamed = await in_thread(lambda: list(llm.stream_complete("Count")))
    astreamed = [part async for part in await llm.astream_complete("Count")]
    expected = GENERATED if served.by == "ollama" else FALLBACK_TEXT
    for parts in (streamed, astreamed):
        assert len(parts) > 2 and "".join(part.delta or "" for part in parts) == expected
        assert parts[-1].text == expected  # LlamaIndex's running total
    sent = served.upstream_bodies("/api/generate", "/v1/completions")
    assert [(b["prompt"], b["stream"]) for b in sent] == [("Count", True)] * 2


async def test_openai_like_chat_model_chats(served: Served) -> None:
    llm = served.openai_like(is_chat_model=True)
    answers = [await llm.achat(MESSAGES), await in_thread(lambda: llm.chat(MESSAGES))]
    expected, usage = (CHATTED, (128, 9)) if served.by == "ollama" else (FALLBACK_TEXT, (7, len(TOKENS)))
    for answer in answers:
        assert (answer.message.role, answer.message.content) == ("assistant", expected)
        assert (answer.additional_kwargs["prompt_tokens"], answer.additional_kwargs["completion_tokens"]) == usage
    sent = served.upstream_bodies("/api/chat", "/v1/chat/completions")
    if served.by == "ollama":
        assert sent == [{"model": "gemma3:1b", "messages": SENT_MESSAGES, "stream": True,
                         "options": OPENAI_LIKE_OPTIONS}] * 2
    else:
        assert [(b["messages"], b["max_tokens"], b["temperature"]) for b in sent] == [(SENT_MESSAGES, 32, 0.1)] * 2
        assert served.openai.recorder.bodies("/v1/completions") == []


async def test_openai_like_chat_model_streams(served: Served) -> None:
    llm = served.openai_like(is_chat_model=True)
    streamed = await in_thread(lambda: list(llm.stream_chat(MESSAGES)))
    astreamed = [part async for part in await llm.astream_chat(MESSAGES)]
    expected = CHATTED if served.by == "ollama" else FALLBACK_TEXT
    for parts in (streamed, astreamed):
        assert len(parts) > 2 and "".join(part.delta or "" for part in parts) == expected
        assert parts[-1].message.content == expected
    sent = served.upstream_bodies("/api/chat", "/v1/chat/completions")
    assert [(b["messages"], b["stream"]) for b in sent] == [(SENT_MESSAGES, True)] * 2


async def test_openai_like_embedding_any_model_name(served: Served) -> None:
    """Four texts in batches of two: two calls, each vector back in its text's place."""
    embedding = served.openai_like_embedding(embed_batch_size=2)
    texts = ["one", "three", "seven", "eleven"]
    vectors = await embedding.aget_text_embedding_batch(texts)
    again = await in_thread(lambda: embedding.get_text_embedding_batch(texts))
    assert vectors == again and len(vectors) == 4
    sent = served.upstream_bodies("/api/embed", "/v1/embeddings")
    assert [b["input"] for b in sent] == [["one", "three"], ["seven", "eleven"]] * 2
    assert {b["model"] for b in sent} == {"nomic-embed-text"}
    if served.by == "ollama":
        assert {len(vector) for vector in vectors} == {768}  # the recorded nomic-embed-text vectors
    else:  # the test server's [length, index in its batch, 0.5], through OpenAI's base64 encoding
        assert vectors == [[3.0, 0.0, 0.5], [5.0, 1.0, 0.5], [5.0, 0.0, 0.5], [6.0, 1.0, 0.5]]


async def test_ollama_llm_chat(served: Served) -> None:
    """Without a context window, LlamaIndex asks /api/show for one (sync, even from achat), so the
    sync call goes first and the async one is given the window."""
    answer = await in_thread(lambda: served.ollama_llm().chat(MESSAGES))
    again = await served.ollama_llm(context_window=4096).achat(MESSAGES)
    expected, usage = (CHATTED, (128, 9)) if served.by == "ollama" else (FALLBACK_TEXT, (7, len(TOKENS)))
    for reply in (answer, again):
        assert (reply.message.role, reply.message.content) == ("assistant", expected)
        assert reply.raw is not None and (reply.raw["usage"]["prompt_tokens"],
                                          reply.raw["usage"]["completion_tokens"]) == usage
    sent = served.upstream_bodies("/api/chat", "/v1/chat/completions")
    if served.by == "ollama":
        assert served.ollama.recorder.bodies("/api/show") == [{"model": "gemma3:1b"}]
        # Ollama's own show names gemma3's context length, 8192: LlamaIndex sends it as num_ctx.
        assert [(b["messages"], b["options"]) for b in sent] == [
            (SENT_MESSAGES, {"temperature": 0.2, "num_ctx": 8192}),
            (SENT_MESSAGES, {"temperature": 0.2, "num_ctx": 4096})]
    else:  # the gateway answered /api/show for a model the fallback lists; num_ctx has no OpenAI field
        assert "/v1/models" in served.openai.recorder.paths()
        assert sent == [{"model": "gpt-test", "messages": SENT_MESSAGES, "temperature": 0.2, "stream": True,
                         "stream_options": {"include_usage": True}}] * 2


async def test_ollama_llm_stream_chat(served: Served) -> None:
    llm = served.ollama_llm(context_window=4096)
    streamed = await in_thread(lambda: list(llm.stream_chat(MESSAGES)))
    astreamed = [part async for part in await llm.astream_chat(MESSAGES)]
    expected, usage = (CHATTED, (128, 9)) if served.by == "ollama" else (FALLBACK_TEXT, (7, len(TOKENS)))
    for parts in (streamed, astreamed):
        assert len(parts) > 2 and "".join(part.delta or "" for part in parts) == expected
        assert parts[-1].message.content == expected and parts[-1].raw is not None
        last = parts[-1].raw
        assert last["done"] is True and (last["prompt_eval_count"], last["eval_count"]) == usage
    sent = served.upstream_bodies("/api/chat", "/v1/chat/completions")
    assert [(b["messages"], b["stream"]) for b in sent] == [(SENT_MESSAGES, True)] * 2


async def test_ollama_embedding(served: Served) -> None:
    embedding = served.ollama_embedding()
    vectors = await embedding.aget_text_embedding_batch(["one", "three"])
    again = await in_thread(lambda: embedding.get_text_embedding_batch(["one", "three"]))
    assert vectors == again and len(vectors) == 2
    sent = served.upstream_bodies("/api/embed", "/v1/embeddings")
    assert [(b["model"], b["input"]) for b in sent] == [("nomic-embed-text", ["one", "three"])] * 2
    if served.by == "ollama":
        assert {len(vector) for vector in vectors} == {768}
    else:
        assert vectors == [[3.0, 0.0, 0.5], [5.0, 1.0, 0.5]]


async def test_a_chat_engine_sends_the_conversation_so_far(served: Served) -> None:
    """LlamaIndex's chat engine keeps the conversation in its memory, measured with the tiktoken
    encoding that ships in llama-index-core, and sends it whole with each new question. The memory's
    database is its default (SQLite in memory), made here so that the test can close it."""
    database = create_async_engine("sqlite+aiosqlite:///:memory:")
    try:
        engine = SimpleChatEngine.from_defaults(llm=served.openai_like(is_chat_model=True),
                                                memory=Memory.from_defaults(async_engine=database))
        first = await engine.achat("2+2?")
        second = await engine.achat("And 3+3?")
    finally:
        await database.dispose()
    expected = CHATTED if served.by == "ollama" else FALLBACK_TEXT
    assert str(first) == str(second) == expected
    sent = served.upstream_bodies("/api/chat", "/v1/chat/completions")
    assert [b["messages"] for b in sent] == [
        [{"role": "user", "content": "2+2?"}],
        [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": expected},
         {"role": "user", "content": "And 3+3?"}]]


async def test_a_wrong_token_raises_the_gateways_401_in_each_client(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    served = Served("ollama", gateway, ollama, openai)
    wrong = {"Authorization": "Bearer wrong"}
    try:
        with pytest.raises(openai_client.AuthenticationError) as completing:
            await served.openai_like(token="wrong").acomplete("hi")
        with pytest.raises(openai_client.AuthenticationError) as embedding:
            await served.openai_like_embedding(token="wrong").aget_text_embedding_batch(["hi"])
        with pytest.raises(ollama_client.ResponseError) as chatting:
            await served.ollama_llm(headers=wrong, context_window=4096).achat(MESSAGES)
        with pytest.raises(ollama_client.ResponseError) as embedding_natively:
            await served.ollama_embedding(headers=wrong).aget_text_embedding_batch(["hi"])
    finally:
        await served.close()
    for raised in (completing.value, embedding.value):
        assert raised.status_code == 401 and raised.code == "unauthorized"
        assert isinstance(raised.body, dict) and raised.body["message"] == "invalid token"
    for refused in (chatting.value, embedding_natively.value):
        assert (refused.status_code, refused.error) == (401, "invalid token")
    assert ollama.recorder.requests == [] and openai.recorder.requests == []  # refused before any upstream

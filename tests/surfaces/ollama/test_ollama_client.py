"""The official `ollama` Python client, unchanged, against the gateway's Ollama API.

Every call is made twice: served by an Ollama backend (the test server replays Ollama's
recorded traffic, tests/upstreams/ollama.py) and by the fallback (Ollama unreachable, the
OpenAI test server answers through the translation). The client cannot tell them apart;
the upstreams' recorders show who served and what they were sent.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import ollama
import pytest
from aiohttp.test_utils import TestClient
from attrs import field, frozen
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.tenant_keys import bearer, write_keys
from tests.support.upstreams.ollama_docs import SHOW

ALLOWED = ["gemma3:1b", "qwen3:32b", "nomic-embed-text", "gpt-test"]


@frozen
class Served:
    by: str  # "ollama" or "fallback"
    gateway: TestClient
    ollama: RunningUpstream
    openai: RunningUpstream
    model: str  # a chat model the serving backend lists
    clients: list[ollama.AsyncClient] = field(factory=list)  # closed after the test

    def client(self, key: str = "alice") -> ollama.AsyncClient:
        self.clients.append(ollama.AsyncClient(host=str(self.gateway.make_url("")), headers=bearer(key)))
        return self.clients[-1]

    def upstream_bodies(self, ollama_path: str, openai_path: str) -> list[dict]:
        if self.by == "ollama":
            return self.ollama.recorder.bodies(ollama_path)
        return self.openai.recorder.bodies(openai_path)


@pytest.fixture(params=["ollama", "fallback"])
async def served(
    request: pytest.FixtureRequest, make_gateway: GatewayFactory, ollama: RunningUpstream,
    openai: RunningUpstream, dead_url: URL, tmp_path: pathlib.Path,
) -> AsyncIterator[Served]:
    keys = write_keys(tmp_path / "keys.toml", {"alice": {"models": ALLOWED}})
    first = ollama.url if request.param == "ollama" else dead_url  # nothing listens at dead_url
    gateway = await make_gateway(headers={}, api_tokens=(), keys_file=str(keys), ollama_base_url=first,
                                 openai_endpoint=openai.url)
    model = "gemma3:1b" if request.param == "ollama" else "gpt-test"
    served = Served(by=request.param, gateway=gateway, ollama=ollama, openai=openai, model=model)
    yield served
    for client in served.clients:
        await client.close()


FALLBACK_TEXT = "Hello from the fallback."


async def test_chat(served: Served) -> None:
    answer = await served.client().chat(model=served.model, messages=[{"role": "user", "content": "2+2?"}],
                                        options={"temperature": 0})
    assert answer.done and answer.message.role == "assistant"
    if served.by == "ollama":
        # Ollama's recorded stream, rebuilt as its own single answer (test_ollama_single_answers.py).
        assert answer.message.content == "2 + 2 = 4\n" and answer.done_reason == "stop"
        assert (answer.prompt_eval_count, answer.eval_count) == (128, 9)
        sent = served.ollama.recorder.bodies("/api/chat")[-1]
        assert sent["options"] == {"temperature": 0} and sent["stream"] is True
    else:
        assert answer.message.content == FALLBACK_TEXT
        assert (answer.prompt_eval_count, answer.eval_count, answer.done_reason) == (7, 5, "stop")
        assert answer.total_duration and answer.total_duration > 0
        sent = served.openai.recorder.bodies("/v1/chat/completions")[-1]
        assert sent["temperature"] == 0 and sent["messages"] == [{"role": "user", "content": "2+2?"}]


async def test_streamed_chat(served: Served) -> None:
    parts = [part async for part in await served.client().chat(
        model=served.model, messages=[{"role": "user", "content": "2+2?"}], stream=True)]
    text = "".join(part.message.content or "" for part in parts)
    assert [part.done for part in parts] == [False] * (len(parts) - 1) + [True]
    if served.by == "ollama":
        assert text == "2 + 2 = 4\n"  # the recorded stream, line by line
        assert (parts[-1].prompt_eval_count, parts[-1].eval_count) == (128, 9)
    else:
        assert text == FALLBACK_TEXT
        assert (parts[-1].prompt_eval_count, parts[-1].eval_count, parts[-1].done_reason) == (7, 5, "stop")
        assert served.openai.recorder.bodies("/v1/chat/completions")[-1]["stream"] is True


async def test_generate(served: Served) -> None:
    answer = await served.client().generate(model=served.model, prompt="Hello, how are you?", system="Be brief.")
    assert answer.done
    if served.by == "ollama":
        assert answer.response.startswith("Okay, here") and answer.context  # Ollama's own answer, context too
        sent = served.ollama.recorder.bodies("/api/generate")[-1]
        assert sent["prompt"] == "Hello, how are you?" and sent["system"] == "Be brief."
    else:
        assert answer.response == FALLBACK_TEXT
        sent = served.openai.recorder.bodies("/v1/chat/completions")[-1]
        assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Hello, how are you?"}]


async def test_streamed_generate(served: Served) -> None:
    parts = [part async for part in await served.client().generate(model=served.model, prompt="Count", stream=True)]
    text = "".join(part.response for part in parts)
    assert parts[-1].done and not any(part.done for part in parts[:-1])
    assert text.startswith("Okay") if served.by == "ollama" else text == FALLBACK_TEXT


async def test_embed(served: Served) -> None:
    answer = await served.client().embed(model="nomic-embed-text", input=["one", "three"])
    assert len(answer.embeddings) == 2
    if served.by == "ollama":
        assert len(answer.embeddings[0]) > 100  # the recorded vectors
    else:
        assert [vector[:2] for vector in answer.embeddings] == [[3.0, 0.0], [5.0, 1.0]]
        assert served.openai.recorder.bodies("/v1/embeddings")[-1]["input"] == ["one", "three"]


async def test_list(served: Served) -> None:
    models = (await served.client().list()).models
    if served.by == "ollama":  # Ollama's entries as it sent them, then what the fallback lists
        assert [model.model for model in models] == ["qwen3:32b", "gpt-test"]
        assert models[0].details.family == "qwen3" and models[0].size
    else:
        assert [model.model for model in models] == ["gpt-test"]


async def test_ps(served: Served) -> None:
    running = (await served.client().ps()).models
    if served.by == "ollama":
        assert [model.model for model in running] == ["qwen3:32b"] and running[0].size_vram
    else:
        assert running == []  # no Ollama answered: nothing is loaded anywhere the gateway can see


async def test_show(served: Served) -> None:
    shown = await served.client().show(served.model)
    if served.by == "ollama":
        # Ollama's answer as it is: the documented example, with gemma3's family and capabilities.
        assert shown.details is not None and shown.details.family == "gemma3"
        assert shown.modelfile == SHOW["modelfile"] and shown.capabilities == ["completion"]
    else:
        assert shown.capabilities == ["completion"] and shown.template == ""


async def test_a_wrong_token_is_a_401_response_error(served: Served) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        await served.client(key="nobody").chat(model=served.model, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 401 and raised.value.error == "invalid token"
    assert served.ollama.recorder.requests == [] and served.openai.recorder.requests == []


async def test_a_forbidden_model_is_a_403_response_error(served: Served) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        await served.client().chat(model="llama3-secret", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 403 and "llama3-secret" in raised.value.error
    assert served.upstream_bodies("/api/chat", "/v1/chat/completions") == []

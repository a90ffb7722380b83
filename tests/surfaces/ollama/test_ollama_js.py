"""The official Ollama client for JavaScript (npm `ollama`, ollama-js), unchanged, against the
gateway's Ollama API, the key sent as a bearer header through the client's `headers` config.

One Node process (tests/support/node/ollama_js_client.mjs) makes every call once: chat, a
streamed chat and generate, embed, list, ps, show, version, a wrong key, a model the key may
not use, and a stream that breaks. It runs twice: served by Ollama (the test server replays
Ollama's recorded traffic) and through the fallback (Ollama unreachable, the OpenAI test
server answers through the translation), as the Python client's tests do
(test_ollama_client.py). The upstreams' recorders show who served and what they were sent.
"""

from __future__ import annotations

import pathlib
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.node_clients import needs_package, run_node
from tests.support.tenant_keys import secret_of, write_keys
from tests.support.upstreams.ollama_docs import SHOW
from tests.support.upstreams.openai import TOKENS

pytestmark = needs_package("ollama")

ALLOWED = ["gemma3:1b", "qwen3:32b", "nomic-embed-text", "gpt-test", "midstream-error"]
FALLBACK_TEXT = "".join(TOKENS)


async def keyed_gateway(make_gateway: GatewayFactory, tmp_path: pathlib.Path, ollama_url: URL,
                        openai: RunningUpstream) -> TestClient:
    keys = write_keys(tmp_path / "keys.toml", {"alice": {"models": ALLOWED}})
    return await make_gateway(headers={}, api_tokens=(), keys_file=str(keys), ollama_base_url=ollama_url,
                              openai_endpoint=openai.url)


async def ollama_js(gateway: TestClient, model: str) -> dict[str, Any]:
    return await run_node("ollama_js_client.mjs", str(gateway.make_url("")), secret_of("alice"),
                          secret_of("nobody"), model)


def text_of(parts: list[dict[str, Any]], field: str) -> str:
    return "".join(part["message"]["content"] if field == "message" else part[field] for part in parts)


def assert_refusals_reach_no_upstream(results: dict[str, Any], upstream: RunningUpstream) -> None:
    """A wrong key and a forbidden model are ollama-js's ResponseError with the gateway's
    status and message, streamed or not. (Each test counts what went upstream: none of them.)
    No key is passed on."""
    invalid = {"name": "ResponseError", "message": "invalid token", "status_code": 401}
    assert results["wrongToken"] == results["wrongTokenStreamed"] == {"error": invalid}
    assert results["forbiddenModel"] == {"error": {
        "name": "ResponseError", "message": "key 'alice' may not use model 'llama3-secret'", "status_code": 403}}
    assert upstream.recorder.requests and not [
        seen for seen in upstream.recorder.requests if secret_of("alice") in str(seen.headers)]


async def test_every_call_served_by_ollama(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    results = await ollama_js(await keyed_gateway(make_gateway, tmp_path, ollama.url, openai), "gemma3:1b")
    chat = results["chat"]  # Ollama's recorded stream, rebuilt as its own single answer
    assert chat["message"] == {"role": "assistant", "content": "2 + 2 = 4\n"} and chat["done_reason"] == "stop"
    assert (chat["prompt_eval_count"], chat["eval_count"], chat["done"]) == (128, 9, True)
    streamed = results["streamedChat"]
    assert text_of(streamed, "message") == "2 + 2 = 4\n" and [p["done"] for p in streamed] == [False] * 8 + [True]
    generated = results["streamedGenerate"]
    assert text_of(generated, "response").startswith("Okay, here we go!") and generated[-1]["context"]
    sent_chats, sent_generate = ollama.recorder.bodies("/api/chat"), ollama.recorder.bodies("/api/generate")
    assert sent_chats[0] == {"model": "gemma3:1b", "messages": [{"role": "user", "content": "2+2?"}],
                             "options": {"temperature": 0}, "stream": True}  # a single answer is read as a stream
    assert len(sent_chats) == 3 and sent_chats[1]["stream"] is True  # chat, streamed chat, the broken stream
    assert sent_generate == [
        {"model": "gemma3:1b", "prompt": "Count", "system": "Be brief.", "stream": True}]
    assert [len(vector) for vector in results["embed"]["embeddings"]] == [768, 768]
    assert ollama.recorder.bodies("/api/embed") == [{"model": "nomic-embed-text", "input": ["one", "three"]}]
    # Ollama's entries as it sent them, then what the fallback lists.
    assert [m["model"] for m in results["list"]["models"]] == ["qwen3:32b", "gpt-test"]
    assert results["list"]["models"][0]["details"]["family"] == "qwen3"
    assert [m["model"] for m in results["ps"]["models"]] == ["qwen3:32b"] and results["ps"]["models"][0]["size_vram"]
    shown = results["show"]
    assert shown["modelfile"] == SHOW["modelfile"] and shown["details"]["family"] == "gemma3"
    assert shown["capabilities"] == ["completion"] and ollama.recorder.bodies("/api/show") == [{"model": "gemma3:1b"}]
    assert results["version"] == {"version": "0.13.5"}
    # Ollama's own error line ends the stream: ollama-js throws it after the lines before it.
    broken = results["brokenStream"]
    assert text_of(broken["parts"], "message") == "2 + 2" and not any(p["done"] for p in broken["parts"])
    assert broken["thrown"] == {
        "name": "Error", "message": "an error was encountered while running the model: unexpected EOF"}
    assert openai.recorder.bodies("/v1/chat/completions") == []
    assert_refusals_reach_no_upstream(results, ollama)


async def test_every_call_through_the_fallback(
    make_gateway: GatewayFactory, dead_url: URL, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    results = await ollama_js(await keyed_gateway(make_gateway, tmp_path, dead_url, openai), "gpt-test")
    chat = results["chat"]
    assert chat["message"] == {"role": "assistant", "content": FALLBACK_TEXT} and chat["done_reason"] == "stop"
    assert (chat["prompt_eval_count"], chat["eval_count"], chat["done"]) == (7, 5, True) and chat["total_duration"] > 0
    streamed = results["streamedChat"]
    assert [p["message"]["content"] for p in streamed[:-1]] == TOKENS and streamed[-1]["done"] is True
    assert (streamed[-1]["prompt_eval_count"], streamed[-1]["eval_count"]) == (7, 5)
    assert text_of(results["streamedGenerate"], "response") == FALLBACK_TEXT
    assert results["streamedGenerate"][-1]["done"] is True
    sent = openai.recorder.bodies("/v1/chat/completions")
    assert sent[0]["temperature"] == 0 and sent[0]["messages"] == [{"role": "user", "content": "2+2?"}]
    assert [body["stream"] for body in sent] == [True] * 4  # chat, streamed chat, generate, the broken stream
    assert sent[2]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count"}]
    embed = results["embed"]
    assert embed["embeddings"] == [[3.0, 0.0, 0.5], [5.0, 1.0, 0.5]] and embed["load_duration"] == 0
    assert openai.recorder.bodies("/v1/embeddings") == [{"model": "nomic-embed-text", "input": ["one", "three"]}]
    assert [m["model"] for m in results["list"]["models"]] == ["gpt-test"]
    assert results["ps"] == {"models": []}  # no Ollama answered: nothing loaded that the gateway can see
    shown = results["show"]
    assert (shown["capabilities"], shown["template"], shown["modelfile"]) == (["completion"], "", "")
    assert results["version"] == {"version": "0.13.5"}  # the Ollama API version the gateway follows
    # The upstream's error event becomes an error line: ollama-js throws it after the tokens before it.
    broken = results["brokenStream"]
    assert [p["message"]["content"] for p in broken["parts"]] == TOKENS[:2]
    assert broken["thrown"] == {"name": "Error", "message": "error from the model: The model crashed."}
    assert_refusals_reach_no_upstream(results, openai)

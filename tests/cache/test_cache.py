"""The answer cache over HTTP: hits that never reach the upstream, scopes, streams, Redis.

The OpenAI test server answers every chat with the same tokens (tests/upstreams/openai.py)
and counts what it is asked, so "never reached the upstream" is its request count.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openai import AsyncOpenAI
from prometheus_client import REGISTRY

from tests.support.app import TOKEN, GatewayFactory, RunningUpstream
from tests.support.redis_server import RedisServer
from tests.support.sse import events
from tests.support.tenant_keys import ADMIN, bearer, write_keys
from tests.support.upstreams.openai import TOKENS

EMBED = "/v1/embeddings"
STREAM = "/api/v1/inference/stream"
INFER = "/api/v1/inference"


def routes_file(tmp_path: pathlib.Path, cache: str) -> str:
    path = tmp_path / "routes.toml"
    path.write_text(f"""
[models."embed-test"]
kinds = ["embeddings"]
cache = "{cache}"
backends = [{{ backend = "openai", model = "text-embedding-3-small" }}]

[models."chat-test"]
kinds = ["chat"]
cache = "{cache}"
backends = [{{ backend = "openai", model = "gpt-test" }}]
""")
    return str(path)


def embeds(requests: list[Any]) -> int:
    return sum(1 for r in requests if r.path.endswith("/embeddings"))


def chats(requests: list[Any]) -> int:
    return sum(1 for r in requests if r.path.endswith("/chat/completions"))


def client_for(gateway: TestClient) -> AsyncOpenAI:
    # No retries: every answer the test sees is the gateway's first.
    return AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=TOKEN, max_retries=0)


def lookups(result: str, kind: str) -> float:
    return REGISTRY.get_sample_value("gateway_cache_lookups_total", {"kind": kind, "result": result}) or 0.0


@pytest.fixture
def keys_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_keys(tmp_path / "keys.toml", {
        "alice": {"cache": True}, "bob": {"cache": True}, "carol": {},
        "dave": {"cache": True, "requests_per_minute": 10, "tokens_per_minute": 1000}})


async def test_a_second_identical_embeddings_request_never_reaches_the_upstream(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"))
    hits_before = lookups("hit", "embeddings")
    body = {"model": "embed-test", "input": ["a page of the manual", "another page"]}
    first = await gateway.post(EMBED, json=body)
    assert first.status == 200 and first.headers["X-Gateway-Cache"] == "miss"
    second = await gateway.post(EMBED, json=body)
    assert second.status == 200 and second.headers["X-Gateway-Cache"] == "hit"
    one, two = await first.json(), await second.json()
    assert [d["embedding"] for d in two["data"]] == [d["embedding"] for d in one["data"]]
    assert two["model"] == "embed-test" and len(two["data"]) == 2
    assert embeds(openai.recorder.requests) == 1
    assert lookups("hit", "embeddings") == hits_before + 1

    changed = await gateway.post(EMBED, json={**body, "input": ["a page of the manual"]})
    assert changed.headers["X-Gateway-Cache"] == "miss"
    assert embeds(openai.recorder.requests) == 2


async def test_keys_never_read_each_others_entries(
    make_gateway: GatewayFactory, openai: RunningUpstream, keys_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(headers={}, openai_endpoint=openai.url, keys_file=str(keys_path))
    body = {"model": "text-embedding-3-small", "input": "the same text"}
    assert (await gateway.post(EMBED, json=body, headers=bearer("alice"))).headers["X-Gateway-Cache"] == "miss"
    assert (await gateway.post(EMBED, json=body, headers=bearer("bob"))).headers["X-Gateway-Cache"] == "miss"
    assert (await gateway.post(EMBED, json=body, headers=bearer("alice"))).headers["X-Gateway-Cache"] == "hit"
    carol = await gateway.post(EMBED, json=body, headers=bearer("carol"))  # her key has no cache
    assert carol.status == 200 and "X-Gateway-Cache" not in carol.headers
    assert embeds(openai.recorder.requests) == 3


async def test_a_shared_route_lets_keys_read_each_others_entries(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path, keys_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(headers={}, openai_endpoint=openai.url, keys_file=str(keys_path),
                                 routes_file=routes_file(tmp_path, "shared"))
    body = {"model": "embed-test", "input": "the same text"}
    assert (await gateway.post(EMBED, json=body, headers=bearer("alice"))).headers["X-Gateway-Cache"] == "miss"
    assert (await gateway.post(EMBED, json=body, headers=bearer("carol"))).headers["X-Gateway-Cache"] == "hit"
    assert embeds(openai.recorder.requests) == 1


async def test_a_cached_stream_replays_token_by_token_and_says_so_at_the_end(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"))
    body = {"model_id": "chat-test", "input_data": "hi", "parameters": {"temperature": 0}}
    first = await gateway.post(STREAM, json=body)
    assert first.headers["X-Gateway-Cache"] == "miss"
    live = events(await first.read())
    second = await gateway.post(STREAM, json=body)
    assert second.status == 200 and second.headers["X-Gateway-Cache"] == "hit"
    replayed = events(await second.read())

    assert [e["token"] for e in replayed if not e["done"]] == TOKENS  # one event per original token
    assert [e["token"] for e in live if not e["done"]] == TOKENS
    live_end, replayed_end = live[-1], replayed[-1]
    assert replayed_end["done"] is True and replayed_end["cached"] is True
    assert "cached" not in live_end
    assert replayed_end["usage"] == live_end["usage"] and replayed_end["provider"] == "openai"
    assert chats(openai.recorder.requests) == 1


async def test_an_answer_that_is_not_deterministic_is_cached_only_when_the_client_asks(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"))
    body = {"model_id": "chat-test", "input_data": "hi", "parameters": {"temperature": 0.8}}
    for _ in range(2):
        response = await gateway.post(INFER, json=body)
        assert response.status == 200 and "X-Gateway-Cache" not in response.headers
    assert chats(openai.recorder.requests) == 2
    asked = [await gateway.post(INFER, json=body, headers={"X-Gateway-Cache": "use"}) for _ in range(2)]
    assert [r.headers["X-Gateway-Cache"] for r in asked] == ["miss", "hit"]
    assert (await asked[1].json())["output"] == (await asked[0].json())["output"] == "".join(TOKENS)
    assert chats(openai.recorder.requests) == 3
    seeded = {"model_id": "chat-test", "input_data": "hi", "parameters": {"seed": 7}}
    assert [(await gateway.post(INFER, json=seeded)).headers["X-Gateway-Cache"] for _ in range(2)] == ["miss", "hit"]


async def test_a_bad_cache_header_is_a_400_naming_it_and_nothing_is_sent(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"))
    response = await gateway.post(EMBED, json={"model": "embed-test", "input": "x"},
                                  headers={"X-Gateway-Cache": "forever"})
    assert response.status == 400
    assert "X-Gateway-Cache" in (await response.json())["error"]["message"]
    assert openai.recorder.requests == []


async def test_a_hit_counts_as_a_request_but_spends_no_tokens(
    make_gateway: GatewayFactory, openai: RunningUpstream, keys_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(headers={}, openai_endpoint=openai.url, keys_file=str(keys_path))
    body = {"model_id": "gpt-test", "input_data": "hi", "parameters": {"temperature": 0, "max_tokens": 10}}
    answers = [await gateway.post(INFER, json=body, headers=bearer("dave")) for _ in range(3)]
    assert [r.headers["X-Gateway-Cache"] for r in answers] == ["miss", "hit", "hit"]
    usage = await (await gateway.get("/api/v1/admin/usage", headers=bearer(ADMIN))).json()
    dave = usage["keys"]["dave"]
    assert dave["window_here"]["requests_per_minute"] == 3
    assert dave["window_here"]["tokens_per_minute"] == 7 + 5  # the one upstream answer only
    assert dave["total"] == {"in": 7, "out": 5}
    assert chats(openai.recorder.requests) == 1


async def test_redis_killed_turns_hits_into_misses_never_errors(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path, redis_server: RedisServer,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"),
                                 redis_url=redis_server.url)
    body = {"model": "embed-test", "input": "kept in redis"}
    assert (await gateway.post(EMBED, json=body)).headers["X-Gateway-Cache"] == "miss"
    assert (await gateway.post(EMBED, json=body)).headers["X-Gateway-Cache"] == "hit"
    assert embeds(openai.recorder.requests) == 1

    await redis_server.kill()
    for _ in range(2):
        response = await gateway.post(EMBED, json=body)
        assert response.status == 200 and response.headers["X-Gateway-Cache"] == "miss"
        assert len((await response.json())["data"][0]["embedding"]) > 0
    assert embeds(openai.recorder.requests) == 3


async def test_metrics_count_hits_misses_and_bytes(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"))
    for _ in range(2):
        await gateway.post(EMBED, json={"model": "embed-test", "input": "counted"})
    text = await (await gateway.get("/metrics")).text()
    for line in ('gateway_cache_lookups_total{kind="embeddings",result="hit"}',
                 'gateway_cache_lookups_total{kind="embeddings",result="miss"}',
                 'gateway_cache_stored_bytes_total{kind="embeddings"}',
                 'gateway_cache_served_bytes_total{kind="embeddings"}',
                 "gateway_cache_memory_bytes"):
        assert line in text
    stored = REGISTRY.get_sample_value("gateway_cache_stored_bytes_total", {"kind": "embeddings"})
    assert stored is not None and stored > 0


async def test_the_official_openai_client_reads_a_replayed_stream_like_the_live_one(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url, routes_file=routes_file(tmp_path, "private"))

    async def chunks() -> tuple[str, list[Any]]:
        async with client_for(gateway) as client:
            response = await client.chat.completions.with_raw_response.create(
                model="chat-test", messages=[{"role": "user", "content": "hi"}], temperature=0, stream=True)
            return response.headers["X-Gateway-Cache"], [chunk async for chunk in response.parse()]

    (live_cache, live), (replayed_cache, replayed) = await chunks(), await chunks()
    assert (live_cache, replayed_cache) == ("miss", "hit")

    def texts(stream: list[Any]) -> list[str]:
        return [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]

    assert texts(replayed) == texts(live) == TOKENS
    finish = [c for c in replayed if c.choices and c.choices[0].finish_reason]
    assert finish[0].choices[0].finish_reason == "stop" and finish[0].model_extra["cached"] is True
    assert chats(openai.recorder.requests) == 1

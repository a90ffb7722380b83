"""Per-key limits in one process: requests and tokens per minute, concurrency, and usage.

Every limit is checked before the upstream is called: a refused request is a 429 whose
body names the limit and whose Retry-After says when to come back, and the upstream never
sees it. Tokens are reserved up front (prompt estimate plus max_tokens) and replaced by
the real usage when the answer ends, so concurrent requests cannot overshoot the limit.
However a request ends (answer, upstream failure, cut stream, client hanging up), its
slot and reservation are released: the admin usage endpoint's `window_here` shows it.

The OpenAI test server reports usage of 7 prompt and 5 completion tokens for every chat;
the gateway's estimate of the prompt "hi" is 8 (1 for the text, 4 per message, 3 for the
reply), so a request with max_tokens=10 reserves 18 tokens and really uses 12.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openai import AsyncOpenAI, RateLimitError

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.limits import USED, ask, assert_rate_limited, metric
from tests.support.sse import events, next_block
from tests.support.tenant_keys import ADMIN, bearer, secret_of, write_keys
from tests.support.upstreams.faults import FaultyOllama
from tests.support.upstreams.openai import OpenAIUpstream
from tests.support.waiting import eventually

INFER = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"
BATCH = "/api/v1/inference/batch"
TENANTS: dict[str, dict[str, Any]] = {
    "rpm3": {"requests_per_minute": 3},
    "tpm30": {"tokens_per_minute": 30},
    "conc2": {"concurrent_requests": 2},
    "conc1": {"concurrent_requests": 1, "tokens_per_minute": 1000},
    "unlimited": {},
}


@pytest.fixture
def keys_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_keys(tmp_path / "keys.toml", TENANTS)


@pytest.fixture
async def limited(make_gateway: GatewayFactory, openai: RunningUpstream, keys_path: pathlib.Path) -> TestClient:
    return await make_gateway(headers={}, openai_endpoint=openai.url, keys_file=str(keys_path))


async def window(client: TestClient, key: str) -> dict[str, int]:
    response = await client.get("/api/v1/admin/usage", headers=bearer(ADMIN))
    assert response.status == 200
    return dict((await response.json())["keys"][key]["window_here"])


async def settled_window(client: TestClient, key: str) -> dict[str, int]:
    """The key's window once nothing of it is in flight (a settling request may lag its answer)."""
    async def idle() -> dict[str, int] | None:
        counted = await window(client, key)
        return None if counted["concurrent_requests"] else counted

    return await eventually(idle)


async def test_requests_per_minute_admit_exactly_the_limit_then_429_naming_it(
    limited: TestClient, openai: RunningUpstream,
) -> None:
    refused_before = metric("gateway_rate_limited_total", key="rpm3", limit="requests_per_minute")
    statuses = [(await limited.post(INFER, json=ask(), headers=bearer("rpm3"))).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await limited.post(INFER, json=ask(), headers=bearer("rpm3"))
    body = await assert_rate_limited(refused, "requests_per_minute")
    assert body["limit_value"] == 3
    assert 55 <= body["retry_after"] <= 60  # the first request ages out of the minute first
    assert "rpm3" in body["message"]
    assert len(openai.recorder.requests) == 3  # the refused one never reached the upstream
    assert metric("gateway_rate_limited_total", key="rpm3", limit="requests_per_minute") == refused_before + 1
    # Other keys have their own limits.
    assert (await limited.post(INFER, json=ask(), headers=bearer("unlimited"))).status == 200


async def test_tokens_are_reserved_up_front_so_concurrent_requests_cannot_overshoot(
    limited: TestClient, openai_fake: OpenAIUpstream,
) -> None:
    openai_fake.release = asyncio.Event()
    first = await limited.post(STREAM, json=ask(), headers=bearer("tpm30"))
    assert first.status == 200  # holding a reservation of 18 while it streams
    second = await limited.post(STREAM, json=ask(), headers=bearer("tpm30"))
    body = await assert_rate_limited(second, "tokens_per_minute")
    assert "reserves 18 tokens" in body["message"]
    openai_fake.release.set()
    assert events(await first.read())[-1]["usage"]["total_tokens"] == USED
    # The reservation of 18 became the real 12: 12 + 18 fits in 30 now.
    assert (await settled_window(limited, "tpm30"))["tokens_per_minute"] == USED
    assert (await limited.post(INFER, json=ask(), headers=bearer("tpm30"))).status == 200
    assert (await settled_window(limited, "tpm30"))["tokens_per_minute"] == 2 * USED
    await assert_rate_limited(await limited.post(INFER, json=ask(), headers=bearer("tpm30")), "tokens_per_minute")


async def test_a_request_that_alone_reserves_more_than_the_limit_is_told_not_to_retry(limited: TestClient) -> None:
    response = await limited.post(INFER, json=ask(max_tokens=100), headers=bearer("tpm30"))
    assert response.status == 429
    body = await response.json()
    assert body["limit"] == "tokens_per_minute"
    assert body["retryable"] is False
    assert "Retry-After" not in response.headers
    assert "lower max_tokens" in body["message"]


async def test_a_request_without_max_tokens_reserves_what_is_left_of_the_limit_at_most(
    limited: TestClient, openai_fake: OpenAIUpstream,
) -> None:
    open_ended = {"model_id": "gpt-test", "input_data": "hi"}
    openai_fake.release = asyncio.Event()
    first = await limited.post(STREAM, json=open_ended, headers=bearer("tpm30"))
    assert first.status == 200  # reserving all 30 (the default 1024 does not fit), not refused
    assert (await window(limited, "tpm30"))["tokens_per_minute"] == 30
    refused = await limited.post(INFER, json=open_ended, headers=bearer("tpm30"))
    await assert_rate_limited(refused, "tokens_per_minute")
    # Only a running reservation is in the way, which settles within seconds: not "wait 60 s".
    assert refused.headers["Retry-After"] == "1"
    openai_fake.release.set()
    await first.read()
    assert (await settled_window(limited, "tpm30"))["tokens_per_minute"] == USED
    # The next takes what is left (18), not one request a minute.
    assert (await limited.post(INFER, json=open_ended, headers=bearer("tpm30"))).status == 200
    assert (await settled_window(limited, "tpm30"))["tokens_per_minute"] == 2 * USED


async def test_concurrency_is_a_slot_per_request_in_flight_freed_when_it_ends(
    limited: TestClient, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.release = asyncio.Event()
    held = [await limited.post(STREAM, json=ask(), headers=bearer("conc2")) for _ in range(2)]
    assert [r.status for r in held] == [200, 200]
    refused = await limited.post(STREAM, json=ask(), headers=bearer("conc2"))
    body = await assert_rate_limited(refused, "concurrent_requests")
    assert body["limit_value"] == 2 and body["retry_after"] == 1
    assert openai.recorder.max_in_flight == 2
    openai_fake.release.set()
    for response in held:
        assert events(await response.read())[-1]["done"] is True
    assert (await settled_window(limited, "conc2"))["concurrent_requests"] == 0
    assert (await limited.post(STREAM, json=ask(), headers=bearer("conc2"))).status == 200


@pytest.mark.parametrize(("model", "charged"), [
    ("cut-here", 8 + 2),  # two tokens, then the upstream vanishes: prompt estimate + tokens seen
    ("midstream-error", 8 + 2),
    ("down", 0),  # no backend served: nothing used
    ("missing-everywhere", 0),
])
async def test_a_failed_or_cut_request_frees_its_slot_and_is_charged_what_it_used(
    limited: TestClient, model: str, charged: int,
) -> None:
    response = await limited.post(STREAM, json=ask(model), headers=bearer("conc1"))
    await response.read()
    counted = await settled_window(limited, "conc1")
    assert counted["tokens_per_minute"] == charged
    assert (await limited.post(STREAM, json=ask(), headers=bearer("conc1"))).status == 200


async def test_a_client_that_hangs_up_mid_stream_frees_its_slot(
    limited: TestClient, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.release = asyncio.Event()  # never set: the stream stays open until the client leaves
    response = await limited.post(STREAM, json=ask(), headers=bearer("conc1"))
    first = json.loads((await next_block(response))[len(b"data: "):])
    assert first["token"] == "Hello"
    assert (await limited.post(STREAM, json=ask(), headers=bearer("conc1"))).status == 429
    response.close()
    [seen] = await openai.recorder.settled()  # the refused request never reached it
    assert seen.cancelled
    counted = await settled_window(limited, "conc1")
    assert counted["tokens_per_minute"] == 8 + 1  # the prompt and the one token relayed
    openai_fake.release.set()
    assert (await limited.post(INFER, json=ask(), headers=bearer("conc1"))).status == 200


@pytest.mark.parametrize(("path", "model"), [(STREAM, "hang-headers"), (INFER, "hang-after-2")],
                         ids=["stream waiting for its first token", "single shot"])
async def test_a_client_that_hangs_up_before_any_answer_frees_its_slot(
    make_gateway: GatewayFactory, aiohttp_server: Callable[..., Awaitable[TestServer]], keys_path: pathlib.Path,
    path: str, model: str,
) -> None:
    faulty = FaultyOllama()
    upstream = await aiohttp_server(faulty.app())
    gateway = await make_gateway(headers={}, ollama_base_url=upstream.make_url(""), keys_file=str(keys_path),
                                 backend_timeout=60)
    request = asyncio.create_task(gateway.post(path, json=ask(model), headers=bearer("conc1")))
    await faulty.recorder.arrived(1)
    request.cancel()  # the client gives up and closes its connection
    with pytest.raises(asyncio.CancelledError):
        await request
    [seen] = await faulty.recorder.settled()
    assert seen.cancelled
    counted = await settled_window(gateway, "conc1")
    assert counted["tokens_per_minute"] == 8  # the prompt, which the upstream may have read
    assert (await gateway.post(INFER, json=ask("ok"), headers=bearer("conc1"))).status == 200


async def test_batch_items_count_one_by_one_and_over_the_limit_fail_alone(
    limited: TestClient, openai: RunningUpstream,
) -> None:
    inputs = [{"input_data": str(i), "parameters": {"max_tokens": 10}} for i in range(5)]
    response = await limited.post(BATCH, json={"model_id": "gpt-test", "inputs": inputs}, headers=bearer("rpm3"))
    assert response.status == 200
    body = await response.json()
    assert sorted(r["status"] for r in body["results"]) == [200, 200, 200, 429, 429]
    assert (body["succeeded"], body["failed"]) == (3, 2)
    assert len(openai.recorder.requests) == 3


async def test_a_batch_runs_no_more_items_at_once_than_its_key_may(
    limited: TestClient, openai: RunningUpstream,
) -> None:
    inputs = [{"input_data": str(i)} for i in range(6)]
    response = await limited.post(BATCH, json={"model_id": "gpt-test", "inputs": inputs, "max_concurrency": 8},
                                  headers=bearer("conc2"))
    body = await response.json()
    assert body["max_concurrency"] == 2
    assert body["succeeded"] == 6
    assert openai.recorder.max_in_flight <= 2


async def test_usage_per_key_and_model_from_the_admin_endpoint_and_the_metrics(
    limited: TestClient, keys_path: pathlib.Path,
) -> None:
    await limited.get("/metrics")  # exported every second and at each scrape
    before = metric("gateway_key_tokens_total", key="unlimited", model="gpt-test", direction="out")
    for _ in range(3):
        assert (await limited.post(INFER, json=ask(), headers=bearer("unlimited"))).status == 200
    stream = await limited.post(STREAM, json=ask(), headers=bearer("unlimited"))
    await stream.read()
    embedded = await limited.post("/api/v1/embeddings", json={"model_id": "embed-test", "input": "one two three"},
                                  headers=bearer("unlimited"))
    assert embedded.status == 200
    assert (await limited.post(INFER, json=ask(), headers=AUTH)).status == 200  # a plain token: `default`

    response = await limited.get("/api/v1/admin/usage", headers=bearer(ADMIN))
    body = await response.json()
    assert body["scope"] == "this_process"
    assert body["limits"] == "local"
    unlimited = body["keys"]["unlimited"]
    assert unlimited["models"] == {"gpt-test": {"in": 4 * 7, "out": 4 * 5}, "embed-test": {"in": 3, "out": 0}}
    assert unlimited["total"] == {"in": 31, "out": 20}
    assert body["keys"]["default"]["models"] == {"gpt-test": {"in": 7, "out": 5}}
    assert body["keys"]["rpm3"] == {
        "limits": {"requests_per_minute": 3, "tokens_per_minute": None, "concurrent_requests": None},
        "models": {}, "total": {"in": 0, "out": 0},
        "window_here": {"requests_per_minute": 0, "tokens_per_minute": 0, "concurrent_requests": 0}}
    await limited.get("/metrics")
    assert metric("gateway_key_tokens_total", key="unlimited", model="gpt-test", direction="out") == before + 20


async def test_an_upstream_that_counts_no_tokens_is_charged_the_estimate(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream, keys_path: pathlib.Path,
) -> None:
    openai_fake.embedding_usage = False
    limited = await make_gateway(headers={}, openai_endpoint=openai.url, keys_file=str(keys_path))
    text = {"model_id": "embed-test", "input": "x" * 40}  # an estimate of 10 tokens
    statuses = [(await limited.post("/api/v1/embeddings", json=text, headers=bearer("tpm30"))).status
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # else a key could embed for free
    window_now = await settled_window(limited, "tpm30")
    assert window_now["tokens_per_minute"] == 30


async def test_only_admin_keys_read_usage(limited: TestClient) -> None:
    for headers in (bearer("unlimited"), AUTH):
        response = await limited.get("/api/v1/admin/usage", headers=headers)
        assert response.status == 403
        assert (await response.json())["code"] == "forbidden"
    assert (await limited.get("/api/v1/admin/usage")).status == 401


async def test_concurrent_requests_of_one_key_are_all_counted(limited: TestClient) -> None:
    responses = await asyncio.gather(*(limited.post(INFER, json=ask(), headers=bearer("unlimited"))
                                       for _ in range(40)))
    assert all(r.status == 200 for r in responses)
    body = await (await limited.get("/api/v1/admin/usage", headers=bearer(ADMIN))).json()
    assert body["keys"]["unlimited"]["models"]["gpt-test"] == {"in": 40 * 7, "out": 40 * 5}


async def test_health_says_limits_are_local_without_redis(limited: TestClient) -> None:
    body = await (await limited.get("/api/v1/health", headers=AUTH)).json()
    assert body["limits"] == "local"
    assert "redis" not in body


# --- the same limits on the OpenAI-compatible /v1 surface ------------------------------------

V1_CHAT = "/v1/chat/completions"


def v1_ask(stream: bool = False) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10,
            "stream": stream}


async def test_v1_requests_count_against_the_same_limits_and_429_in_openais_shape(
    limited: TestClient, openai: RunningUpstream,
) -> None:
    statuses = [(await limited.post(V1_CHAT, json=v1_ask(), headers=bearer("rpm3"))).status for _ in range(2)]
    assert statuses == [200, 200]
    assert (await limited.post(INFER, json=ask(), headers=bearer("rpm3"))).status == 200  # the third, on /api/v1
    refused = await limited.post(V1_CHAT, json=v1_ask(), headers=bearer("rpm3"))
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    error = (await refused.json())["error"]
    assert (error["type"], error["code"], error["limit"]) == ("rate_limit_error", "rate_limited", "requests_per_minute")
    embedded = await limited.post("/v1/embeddings", json={"model": "embed-test", "input": "hi"}, headers=bearer("rpm3"))
    assert embedded.status == 429
    assert len(openai.recorder.requests) == 3


async def test_the_official_openai_client_sees_a_rate_limit_error(
    limited: TestClient, openai_fake: OpenAIUpstream,
) -> None:
    openai_fake.release = asyncio.Event()
    client = AsyncOpenAI(base_url=str(limited.make_url("/v1")), api_key=secret_of("conc1"), max_retries=0)
    async with client:
        held = await limited.post(V1_CHAT, json=v1_ask(stream=True), headers=bearer("conc1"))
        with pytest.raises(RateLimitError) as refused:
            await client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
        assert refused.value.response.headers["Retry-After"] == "1"
        openai_fake.release.set()
        await held.read()  # the stream ends, and with it its hold on the slot
        await settled_window(limited, "conc1")
        answer = await client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert answer.usage is not None and answer.usage.total_tokens == USED


async def test_a_v1_stream_is_charged_its_real_usage_when_it_ends(limited: TestClient) -> None:
    response = await limited.post(V1_CHAT, json={**v1_ask(stream=True), "stream_options": {"include_usage": True}},
                                  headers=bearer("tpm30"))
    assert response.status == 200
    await response.read()
    assert (await settled_window(limited, "tpm30"))["tokens_per_minute"] == USED

"""Limits, usage and backend cooldowns shared through a real Redis by several replicas.

Each replica here is a whole gateway app with its own Redis connection, as separate
processes would be (tests/fleet/test_fleet.py runs real processes behind nginx). Redis is a real
redis-server, killed, frozen and restarted to show the failure policy: `open` serves
with each replica's share of the limits, `closed` refuses keys that have limits, and
either way the gateway finds Redis again by itself.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest
import redis.asyncio
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY
from yarl import URL

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.limits import USED, ask, assert_rate_limited, metric
from tests.support.openapi import Described
from tests.support.redis_server import RedisServer
from tests.support.sse import events
from tests.support.tenant_keys import ADMIN, bearer, write_keys
from tests.support.upstreams.openai import OpenAIUpstream
from tests.support.waiting import eventually

INFER = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"

TENANTS: dict[str, dict[str, Any]] = {
    "rpm5": {"requests_per_minute": 5},
    "rpm4": {"requests_per_minute": 4},
    "rpm6": {"requests_per_minute": 6},
    "tpm30": {"tokens_per_minute": 30},
    "conc2": {"concurrent_requests": 2},
    "conc1": {"concurrent_requests": 1},
    "unlimited": {},
}


@pytest.fixture
def keys_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_keys(tmp_path / "keys.toml", TENANTS)


Replicas = list[TestClient]


async def replicas(
    make_gateway: GatewayFactory, count: int, redis_url: str, keys_path: pathlib.Path, **settings: Any,
) -> Replicas:
    return [await make_gateway(headers={}, keys_file=str(keys_path), redis_url=redis_url, **settings)
            for _ in range(count)]


async def whole_fleet_seen(clients: Replicas) -> None:
    """Each replica has counted the others (heartbeats come every second)."""
    for client in clients:
        await eventually(lambda client=client: fleet_of(client, len(clients)))


async def health(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.get("/api/v1/health", headers=AUTH)).json()
    return body


async def fleet_of(client: TestClient, count: int) -> bool:
    return bool((await health(client))["redis"]["replicas"] == count)


async def redis_state(client: TestClient, up: bool) -> dict[str, Any] | None:
    body = await health(client)
    return body if body["redis"]["up"] is up else None


@pytest.fixture
async def pair(
    make_gateway: GatewayFactory, openai: RunningUpstream, redis_server: RedisServer, keys_path: pathlib.Path,
) -> Replicas:
    return await replicas(make_gateway, 2, redis_server.url, keys_path, openai_endpoint=openai.url)


async def test_two_replicas_together_admit_exactly_the_requests_per_minute(pair: Replicas) -> None:
    responses = await asyncio.gather(*(pair[i % 2].post(INFER, json=ask(), headers=bearer("rpm5"))
                                       for i in range(16)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 5 + [429] * 11
    for response in responses:
        if response.status == 429:
            await assert_rate_limited(response, "requests_per_minute")


async def test_concurrency_is_counted_across_replicas(pair: Replicas, openai_fake: OpenAIUpstream) -> None:
    openai_fake.release = asyncio.Event()
    held = [await pair[0].post(STREAM, json=ask(), headers=bearer("conc2")),
            await pair[1].post(STREAM, json=ask(), headers=bearer("conc2"))]
    assert [r.status for r in held] == [200, 200]
    for replica in pair:
        await assert_rate_limited(await replica.post(STREAM, json=ask(), headers=bearer("conc2")),
                                  "concurrent_requests")
    openai_fake.release.set()
    for response in held:
        await response.read()

    async def admitted_again() -> bool:
        response = await pair[1].post(INFER, json=ask(), headers=bearer("conc2"))
        return response.status == 200

    await eventually(admitted_again)  # once both slots are given back in Redis


async def test_tokens_are_reserved_and_reconciled_across_replicas(
    pair: Replicas, openai_fake: OpenAIUpstream,
) -> None:
    openai_fake.release = asyncio.Event()
    first = await pair[0].post(STREAM, json=ask(), headers=bearer("tpm30"))  # reserves 18 of 30
    assert first.status == 200
    await assert_rate_limited(await pair[1].post(INFER, json=ask(), headers=bearer("tpm30")), "tokens_per_minute")
    openai_fake.release.set()
    assert events(await first.read())[-1]["usage"]["total_tokens"] == USED

    async def fits_after_reconciliation() -> bool:  # 12 real + 18 reserved = 30
        return (await pair[1].post(INFER, json=ask(), headers=bearer("tpm30"))).status == 200

    await eventually(fits_after_reconciliation)
    await assert_rate_limited(await pair[0].post(INFER, json=ask(), headers=bearer("tpm30")), "tokens_per_minute")


async def test_usage_adds_up_across_replicas_at_the_admin_endpoint(pair: Replicas) -> None:
    await asyncio.gather(*(pair[i % 2].post(INFER, json=ask(), headers=bearer("unlimited")) for i in range(10)))

    async def fleet_usage() -> dict[str, Any] | None:
        body = await (await pair[0].get("/api/v1/admin/usage", headers=bearer(ADMIN))).json()
        assert body["scope"] == "fleet"
        counted: dict[str, Any] = body["keys"]["unlimited"]["models"].get("gpt-test", {})
        return counted if counted.get("in") == 10 * 7 else None

    assert await eventually(fleet_usage) == {"in": 70, "out": 50}


async def test_every_limit_key_in_redis_expires(pair: Replicas, redis_server: RedisServer) -> None:
    for key in ("rpm5", "tpm30", "conc2"):
        assert (await pair[0].post(INFER, json=ask(), headers=bearer(key))).status == 200
    client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    async with client:
        names = [name async for name in client.scan_iter("octomil-gateway:*")]
        ttls = {name: await client.pttl(name) for name in names}
    limit_keys = [name for name in names if name.startswith("octomil-gateway:{")]
    assert {name.rsplit(":", 1)[1] for name in limit_keys} >= {"req", "tok", "tokn", "toksum"}
    # Everything but the usage totals (bounded by keys x models) expires on its own.
    assert {name for name, ttl in ttls.items() if ttl < 0} <= {"octomil-gateway:usage"}


async def test_a_backend_cooldown_seen_by_one_replica_rests_it_on_the_others(
    make_gateway: GatewayFactory, openai: RunningUpstream, redis_server: RedisServer, keys_path: pathlib.Path,
    dead_url: URL,
) -> None:
    first, second = await replicas(make_gateway, 2, redis_server.url, keys_path, ollama_base_url=dead_url,
                                   openai_endpoint=openai.url, breaker_failures=1, breaker_cooldown=30)
    assert (await first.post(INFER, json=ask(), headers=AUTH)).status == 200  # Ollama refused, OpenAI answered

    async def ollama_on(client: TestClient) -> dict[str, Any]:
        [ollama] = [b for b in (await health(client))["backends"] if b["name"] == "ollama"]
        return dict(ollama)

    assert (await ollama_on(first))["state"] == "open"

    async def rested_on_second() -> dict[str, Any] | None:
        ollama = await ollama_on(second)
        return ollama if ollama["state"] == "open" else None

    seen = await eventually(rested_on_second)
    assert seen["consecutive_failures"] == 0  # the second replica never tried it itself


async def test_redis_killed_open_policy_serves_with_each_replicas_share_then_recovers(
    pair: Replicas, redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    await whole_fleet_seen(pair)
    # rpm6: three requests through the first replica while Redis is up.
    for _ in range(3):
        assert (await pair[0].post(INFER, json=ask(), headers=bearer("rpm6"))).status == 200
    await redis_server.kill()
    down = await eventually(lambda: redis_state(pair[0], up=False))
    assert down["status"] == "ok"  # a gateway without Redis is degraded, not down
    assert down["limits"] == "local_share"
    assert down["redis"]["failure_policy"] == "open" and down["redis"]["error"]
    await eventually(lambda: redis_state(pair[1], up=False))
    assert REGISTRY.get_sample_value("gateway_redis_up") == 0

    # Each replica now enforces half of each limit, counting what it admitted itself.
    rpm6 = [(await replica.post(INFER, json=ask(), headers=bearer("rpm6"))).status
            for replica in pair for _ in range(4)]
    assert rpm6 == [429] * 4 + [200] * 3 + [429]  # the first had used its 3 already
    rpm4 = [(await replica.post(INFER, json=ask(), headers=bearer("rpm4"))).status
            for replica in pair for _ in range(3)]
    assert rpm4 == [200, 200, 429] * 2
    assert (await pair[0].post(INFER, json=ask(), headers=bearer("unlimited"))).status == 200

    await redis_server.start()  # the same port, empty: as a restarted Redis without persistence
    for replica in pair:
        back = await eventually(lambda replica=replica: redis_state(replica, up=True))
        assert back["limits"] == "shared"
    assert REGISTRY.get_sample_value("gateway_redis_up") == 1
    logged = [r.getMessage() for r in caplog.records if r.name == "proxy" and "redis" in r.getMessage()]
    assert sum("unavailable" in line for line in logged) == 2  # once per replica, not once per request
    assert sum("reachable again" in line for line in logged) == 2
    assert all(redis_server.url.split("@")[-1].split("/")[2] in line for line in logged)
    responses = [await pair[i % 2].post(INFER, json=ask(), headers=bearer("rpm5")) for i in range(7)]
    assert [r.status for r in responses] == [200] * 5 + [429] * 2  # shared and exact again


async def test_a_frozen_redis_costs_a_timeout_not_a_hang_and_loses_no_usage(
    pair: Replicas, redis_server: RedisServer,
) -> None:
    assert (await pair[0].post(INFER, json=ask(), headers=bearer("unlimited"))).status == 200
    redis_server.freeze()  # accepts connections, answers nothing
    statuses = [(await pair[i % 2].post(INFER, json=ask(), headers=bearer("rpm5"))).status for i in range(4)]
    assert statuses == [200] * 4
    for i in range(4):
        assert (await pair[i % 2].post(INFER, json=ask(), headers=bearer("unlimited"))).status == 200
    await eventually(lambda: redis_state(pair[0], up=False))
    redis_server.thaw()

    async def everything_counted() -> bool:
        body = await (await pair[1].get("/api/v1/admin/usage", headers=bearer(ADMIN))).json()
        return body["scope"] == "fleet" and body["keys"]["unlimited"]["models"]["gpt-test"]["in"] == 5 * 7

    await eventually(everything_counted)


async def test_redis_down_closed_policy_refuses_limited_keys_and_serves_the_others(
    make_gateway: GatewayFactory, openai: RunningUpstream, redis_server: RedisServer, keys_path: pathlib.Path,
) -> None:
    [gateway] = await replicas(make_gateway, 1, redis_server.url, keys_path, openai_endpoint=openai.url,
                               redis_failure="closed")
    before = metric("gateway_limits_unavailable_total", key="rpm5")
    await redis_server.kill()
    refused = await gateway.post(INFER, json=ask(), headers=bearer("rpm5"))
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    body = await refused.json()
    assert body["code"] == "limits_unavailable" and body["retryable"] is True
    assert metric("gateway_limits_unavailable_total", key="rpm5") == before + 1
    assert (await gateway.post(INFER, json=ask(), headers=bearer("unlimited"))).status == 200
    assert (await gateway.post(INFER, json=ask(), headers=AUTH)).status == 200
    down = await eventually(lambda: redis_state(gateway, up=False))
    assert down["limits"] == "refusing"

    await redis_server.start()
    await eventually(lambda: redis_state(gateway, up=True))
    assert (await gateway.post(INFER, json=ask(), headers=bearer("rpm5"))).status == 200


async def test_a_gateway_starts_and_serves_while_its_redis_is_down(
    make_gateway: GatewayFactory, openai: RunningUpstream, keys_path: pathlib.Path, dead_url: URL,
) -> None:
    redis_url = dead_url.with_scheme("redis").with_user("").with_password("hunter2-secret")
    gateway = await make_gateway(headers={}, keys_file=str(keys_path), openai_endpoint=openai.url,
                                 redis_url=str(redis_url))
    body = await health(gateway)
    assert body["redis"]["up"] is False and body["limits"] == "local_share"
    assert "hunter2-secret" not in str(body) and body["redis"]["url"] == f"redis://127.0.0.1:{dead_url.port}/"
    statuses = [(await gateway.post(INFER, json=ask(), headers=bearer("rpm4"))).status for _ in range(5)]
    assert statuses == [200] * 4 + [429]


async def test_a_long_request_keeps_its_slot_past_the_lease_by_renewing_it(
    make_gateway: GatewayFactory, openai: RunningUpstream, redis_server: RedisServer, keys_path: pathlib.Path,
    openai_fake: OpenAIUpstream,
) -> None:
    first, second = await replicas(make_gateway, 2, redis_server.url, keys_path, openai_endpoint=openai.url,
                                   redis_lease=0.6)
    openai_fake.release = asyncio.Event()
    held = [await first.post(STREAM, json=ask(), headers=bearer("conc2")) for _ in range(2)]
    assert [r.status for r in held] == [200, 200]
    await asyncio.sleep(2.0)  # several leases long: only renewals keep the slots taken
    await assert_rate_limited(await second.post(STREAM, json=ask(), headers=bearer("conc2")), "concurrent_requests")
    openai_fake.release.set()
    for response in held:
        await response.read()


async def test_an_open_ended_request_takes_what_is_left_of_the_fleets_tokens(
    pair: Replicas, openai_fake: OpenAIUpstream,
) -> None:
    open_ended = {"model_id": "gpt-test", "input_data": "hi"}  # no max_tokens
    openai_fake.release = asyncio.Event()
    first = await pair[0].post(STREAM, json=open_ended, headers=bearer("tpm30"))
    assert first.status == 200  # the whole 30: the default completion reservation does not fit
    refused = await pair[1].post(INFER, json=open_ended, headers=bearer("tpm30"))
    await assert_rate_limited(refused, "tokens_per_minute")
    assert refused.headers["Retry-After"] == "1"  # only a running reservation is in the way
    openai_fake.release.set()
    await first.read()

    async def admitted_with_the_rest() -> bool:  # 30 - 12 used = 18 left, enough for a prompt
        return (await pair[1].post(INFER, json=open_ended, headers=bearer("tpm30"))).status == 200

    await eventually(admitted_with_the_rest)


async def test_health_usage_and_limit_answers_conform_to_the_openapi_description(
    pair: Replicas, redis_server: RedisServer,
) -> None:
    gateway = pair[0]
    described = Described(await (await gateway.get("/api/v1/openapi.json")).json())

    async def check(method: str, path: str, headers: dict[str, str], body: Any = None) -> int:
        response = await gateway.request(method, path, json=body, headers=headers)
        described.check_answer(method, path, response.status, "application/json", await response.json())
        return response.status

    assert await check("GET", "/api/v1/health", AUTH) == 200
    assert await check("GET", "/api/v1/admin/usage", bearer(ADMIN)) == 200
    assert await check("GET", "/api/v1/admin/usage", bearer("rpm4")) == 403
    for _ in range(4):
        await gateway.post(INFER, json=ask(), headers=bearer("rpm4"))
    assert await check("POST", INFER, bearer("rpm4"), ask()) == 429
    v1_body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    assert await check("POST", "/v1/chat/completions", bearer("rpm4"), v1_body) == 429
    await redis_server.kill()
    await eventually(lambda: redis_state(gateway, up=False))
    assert await check("GET", "/api/v1/health", AUTH) == 200
    assert await check("GET", "/api/v1/admin/usage", bearer(ADMIN)) == 200


async def test_with_redis_down_a_request_too_big_for_the_share_is_told_to_retry(
    pair: Replicas, redis_server: RedisServer,
) -> None:
    await whole_fleet_seen(pair)
    await redis_server.kill()
    await eventually(lambda: redis_state(pair[0], up=False))
    # tpm30 across 2 replicas: a share of 15 each; ask() reserves 18, which fits the real limit.
    response = await pair[0].post(INFER, json=ask(), headers=bearer("tpm30"))
    body = await assert_rate_limited(response, "tokens_per_minute")
    assert body["limit_value"] == 15
    assert "share" in body["message"] and "Redis" in body["message"]


async def test_one_request_after_another_never_finds_its_own_slot_still_taken(pair: Replicas) -> None:
    # A single-shot answer leaves only once Redis has freed its slot; before, a client that
    # sent its next request at once was now and then refused (about 1 in 1,000 here).
    statuses = [(await pair[i % 2].post(INFER, json=ask(), headers=bearer("conc1"))).status for i in range(300)]
    assert statuses == [200] * 300

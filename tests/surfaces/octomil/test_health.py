"""GET /api/v1/health and /api/v1/inference/health: one probe per backend, 200 while any can serve."""

from __future__ import annotations

import asyncio
import base64
import pathlib
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.tenant_keys import ADMIN, bearer, write_keys
from tests.support.upstreams.openai import OpenAIUpstream

PATHS = ["/api/v1/health", "/api/v1/inference/health"]
# The contract's fields; the gateway may report more (breaker state, requests in flight).
BACKEND_FIELDS = {"name", "provider", "url", "healthy", "latency_ms", "error"}


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {backend["name"]: backend for backend in body["backends"]}


@pytest.mark.parametrize("path", PATHS)
async def test_both_backends_up_is_200_ok(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream, path: str,
) -> None:
    response = await gateway.get(path)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert [b["name"] for b in body["backends"]] == ["ollama", "openai"]
    for backend in body["backends"]:
        assert set(backend) >= BACKEND_FIELDS
        assert backend["healthy"] is True
        assert backend["error"] is None
        assert isinstance(backend["latency_ms"], float | int) and backend["latency_ms"] >= 0
    backends = by_name(body)
    assert backends["ollama"]["provider"] == "ollama"
    assert backends["ollama"]["url"] == str(ollama.url)
    assert backends["openai"]["provider"] == "openai"
    assert backends["openai"]["url"] == str(openai.url)


async def test_both_paths_give_the_same_answer(gateway: TestClient) -> None:
    answers = []
    for path in PATHS:
        response = await gateway.get(path)
        body = await response.json()
        # Latencies differ from call to call; everything else must not.
        body.pop("latency_ms", None)
        for backend in body["backends"]:
            backend.pop("latency_ms")
        answers.append((response.status, body))
    assert answers[0] == answers[1]


async def test_probes_are_ollama_version_and_openai_models(
    gateway: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    assert (await gateway.get("/api/v1/health")).status == 200
    assert [(r.method, r.path) for r in ollama.recorder.requests] == [("GET", "/api/version")]
    assert [(r.method, r.path) for r in openai.recorder.requests] == [("GET", "/v1/models")]


@pytest.mark.parametrize("path", PATHS)
async def test_dead_ollama_with_openai_up_is_200_with_ollama_unhealthy(
    make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL, path: str,
) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)
    response = await gateway.get(path)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    backends = by_name(body)
    assert backends["ollama"]["healthy"] is False
    assert backends["ollama"]["url"] == str(dead_url)
    assert isinstance(backends["ollama"]["error"], str) and "cannot connect" in backends["ollama"]["error"]
    assert backends["openai"]["healthy"] is True
    assert backends["openai"]["error"] is None


@pytest.mark.parametrize("path", PATHS)
async def test_all_backends_dead_is_503_unavailable(make_gateway: GatewayFactory, dead_url: URL, path: str) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=dead_url / "v1")
    response = await gateway.get(path)
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert [(b["name"], b["healthy"]) for b in body["backends"]] == [("ollama", False), ("openai", False)]
    assert all(set(b) >= BACKEND_FIELDS and b["error"] for b in body["backends"])


async def test_single_dead_backend_is_503(make_gateway: GatewayFactory, dead_url: URL) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url)
    response = await gateway.get("/api/v1/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert [b["name"] for b in body["backends"]] == ["ollama"]


async def test_credentials_in_a_backend_url_are_used_but_never_shown(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    # With warnings as errors, this also proves no deprecated aiohttp auth path is taken.
    with_credentials = openai.url.with_user("user").with_password("secret")
    gateway = await make_gateway(openai_endpoint=with_credentials)
    response = await gateway.get("/api/v1/health")
    assert response.status == 200
    text = await response.text()
    assert "secret" not in text
    assert "user@" not in text
    assert by_name(await response.json())["openai"]["url"] == str(openai.url)
    expected = "Basic " + base64.b64encode(b"user:secret").decode()
    assert openai.recorder.requests[-1].headers["Authorization"] == expected


async def test_openai_backend_refusing_the_gateways_key_is_unhealthy(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream, ollama: RunningUpstream,
) -> None:
    openai_fake.api_key = "sk-x"
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, openai_api_key="sk-wrong")
    response = await gateway.get("/api/v1/health")
    assert response.status == 200  # Ollama still serves
    text = await response.text()
    assert "sk-wrong" not in text
    backends = by_name(await response.json())
    assert backends["ollama"]["healthy"] is True
    assert backends["openai"]["healthy"] is False
    assert "key" in backends["openai"]["error"]
    assert openai.recorder.requests[-1].headers["Authorization"] == "Bearer sk-wrong"


async def test_openai_backend_with_the_right_key_is_healthy(
    make_gateway: GatewayFactory, openai_fake: OpenAIUpstream, openai: RunningUpstream,
) -> None:
    openai_fake.api_key = "sk-x"
    gateway = await make_gateway(openai_endpoint=openai.url, openai_api_key="sk-x")
    response = await gateway.get("/api/v1/health")
    assert response.status == 200
    assert by_name(await response.json())["openai"]["healthy"] is True
    assert "sk-x" not in await response.text()


@pytest.mark.parametrize("path", PATHS)
async def test_health_requires_the_bearer_token(
    make_gateway: GatewayFactory, ollama: RunningUpstream, path: str,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, headers={})
    response = await gateway.get(path)
    assert response.status == 401
    body = await response.json()
    assert body["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert ollama.recorder.requests == []


async def test_health_refuses_a_wrong_bearer_token(make_gateway: GatewayFactory, ollama: RunningUpstream) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, headers={"Authorization": "Bearer wrong-token"})
    response = await gateway.get("/api/v1/health")
    assert response.status == 401
    assert ollama.recorder.requests == []


# --- who sees what, how often upstreams are probed, and the caller's limits -----------------------


@pytest.fixture
def keys_file(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_keys(tmp_path / "keys.toml", {"app": {"requests_per_minute": 3}})


async def test_only_operators_see_backend_details(
    make_gateway: GatewayFactory, ollama: RunningUpstream, keys_file: pathlib.Path,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, keys_file=str(keys_file))
    app = await (await gateway.get("/api/v1/health", headers=bearer("app"))).json()
    assert app["status"] == "ok"
    assert app["backends"] == [{"name": "ollama", "provider": "ollama", "healthy": True}]
    assert "in_flight" not in app and "limits" not in app
    for operator in (bearer(ADMIN), AUTH):  # an admin key, and a plain PROXY_API_TOKENS token
        body = await (await gateway.get("/api/v1/health", headers=operator)).json()
        [backend] = body["backends"]
        assert set(backend) >= BACKEND_FIELDS | {"state", "consecutive_failures", "in_flight"}
        assert backend["url"] == str(ollama.url)
        assert body["in_flight"] == 0 and body["limits"] == "local"


async def test_health_counts_against_the_callers_key(
    make_gateway: GatewayFactory, ollama: RunningUpstream, keys_file: pathlib.Path,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, keys_file=str(keys_file))
    statuses = [(await gateway.get("/api/v1/health", headers=bearer("app"))).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await gateway.get("/api/v1/health", headers=bearer("app"))
    body = await refused.json()
    assert body["code"] == "rate_limited" and body["limit"] == "requests_per_minute"
    assert "Retry-After" in refused.headers
    assert (await gateway.get("/api/v1/health")).status == 200  # other keys are not affected


async def test_many_health_calls_share_one_round_of_probes(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url)
    responses = await asyncio.gather(*(gateway.get("/api/v1/health") for _ in range(50)))
    assert {response.status for response in responses} == {200}
    # Probe results are shared for about a second: 50 calls at once probe each upstream once.
    assert ollama.recorder.paths().count("/api/version") == 1
    assert openai.recorder.paths().count("/v1/models") == 1


async def test_a_credential_in_the_query_string_is_never_shown(
    make_gateway: GatewayFactory, openai: RunningUpstream,
) -> None:
    gateway = await make_gateway(openai_endpoint=openai.url.with_query(key="sk-in-the-query"))
    response = await gateway.get("/api/v1/health")
    raw = await response.text()
    assert "sk-in-the-query" not in raw
    [backend] = (await response.json())["backends"]
    assert backend["url"] == str(openai.url)

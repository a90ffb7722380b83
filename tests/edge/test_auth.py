"""Bearer auth on every /api/v1 endpoint, and the request context every answer carries.

A refused token is a 401 before anything else happens: before body validation, before
any upstream is contacted. Every response, whatever its kind, names its request id
(the client's, if it is plain) and its Server-Timing; no error body shows a traceback
or a secret.
"""

from __future__ import annotations

import re

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.app import TOKEN, GatewayFactory, RunningUpstream
from tests.support.upstreams.openai import OpenAIUpstream

INFERENCE = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"
GOOD = {"model_id": "gemma3:1b", "input_data": "What is 2+2?"}
PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SERVER_TIMING = re.compile(r"total;dur=\d+(\.\d+)?")

ENDPOINTS = [
    ("POST", INFERENCE, GOOD),
    ("POST", STREAM, GOOD),
    ("POST", "/api/v1/inference/batch", {"model_id": "gemma3:1b", "inputs": [{"input_data": "hi"}]}),
    ("POST", "/api/v1/embeddings", {"model_id": "nomic-embed-text", "input": "hi"}),
    ("GET", "/api/v1/inference/health", None),
    ("GET", "/api/v1/health", None),
]


@pytest.fixture
def upstreams(ollama: RunningUpstream, openai: RunningUpstream) -> list[RunningUpstream]:
    return [ollama, openai]


@pytest.fixture
async def anonymous(make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream) -> TestClient:
    """A client of the usual gateway that sends no Authorization header of its own."""
    return await make_gateway(headers={}, ollama_base_url=ollama.url, openai_endpoint=openai.url)


async def assert_unauthorized(response: ClientResponse) -> dict[str, object]:
    assert response.status == 401
    assert response.content_type == "application/json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.json()
    assert body["code"] == "unauthorized"
    assert body["retryable"] is False
    return body


def assert_nothing_forwarded(upstreams: list[RunningUpstream]) -> None:
    for upstream in upstreams:
        assert upstream.recorder.requests == []


def assert_context_headers(response: ClientResponse) -> str:
    """The response's request id, after checking both context headers are there."""
    request_id = response.headers["X-Request-ID"]
    assert PLAIN_ID.fullmatch(request_id)
    assert SERVER_TIMING.fullmatch(response.headers["Server-Timing"])
    return request_id


# --- who gets in --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "payload"), ENDPOINTS, ids=[p for _, p, _ in ENDPOINTS])
async def test_request_without_authorization_is_401_before_any_upstream_call(
    anonymous: TestClient, upstreams: list[RunningUpstream], method: str, path: str, payload: object,
) -> None:
    response = await anonymous.request(method, path, json=payload)
    body = await assert_unauthorized(response)
    assert "Bearer" in str(body["message"])
    assert_nothing_forwarded(upstreams)


@pytest.mark.parametrize("authorization", [
    "Bearer wrong-token",
    f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}",
    "Basic xyz",
    f"Basic {TOKEN}",
    f"Token {TOKEN}",
    TOKEN,
    "Bearer",
    "Bearer    ",
    "",
])
async def test_wrong_token_or_scheme_is_401(
    anonymous: TestClient, upstreams: list[RunningUpstream], authorization: str,
) -> None:
    response = await anonymous.post(INFERENCE, json=GOOD, headers={"Authorization": authorization})
    await assert_unauthorized(response)
    assert_nothing_forwarded(upstreams)


@pytest.mark.parametrize("token", ["a-token", "b-token"])
async def test_any_of_several_configured_tokens_is_accepted(
    make_gateway: GatewayFactory, ollama: RunningUpstream, token: str,
) -> None:
    gateway = await make_gateway(headers={"Authorization": f"Bearer {token}"}, api_tokens=("a-token", "b-token"),
                                 ollama_base_url=ollama.url)
    response = await gateway.post(INFERENCE, json=GOOD)
    assert response.status == 200, await response.text()
    assert (await response.json())["provider"] == "ollama"


async def test_one_configured_token_does_not_open_a_lookalike(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={"Authorization": "Bearer a-token,b-token"},
                                 api_tokens=("a-token", "b-token"), ollama_base_url=ollama.url)
    response = await gateway.post(INFERENCE, json=GOOD)
    await assert_unauthorized(response)
    assert ollama.recorder.requests == []


async def test_bearer_scheme_is_case_insensitive(anonymous: TestClient, ollama: RunningUpstream) -> None:
    # RFC 9110 11.1: the auth scheme is case-insensitive.
    response = await anonymous.post(INFERENCE, json=GOOD, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status == 200, await response.text()
    assert ollama.recorder.paths() == ["/api/chat"]


async def test_auth_disabled_serves_requests_without_a_token(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={}, api_tokens=(), auth_disabled=True, ollama_base_url=ollama.url)
    response = await gateway.post(INFERENCE, json=GOOD)
    assert response.status == 200, await response.text()
    assert (await response.json())["output"] == "2 + 2 = 4\n"
    health = await gateway.get("/api/v1/health")
    assert health.status == 200


@pytest.mark.parametrize("payload", [{"model_id": 5}, {"parameters": {"max_tokens": "5"}}, []])
async def test_unauthenticated_invalid_body_gets_401_not_400(
    anonymous: TestClient, upstreams: list[RunningUpstream], payload: object,
) -> None:
    response = await anonymous.post(INFERENCE, json=payload)
    body = await assert_unauthorized(response)
    assert "errors" not in body
    assert_nothing_forwarded(upstreams)


async def test_unauthenticated_oversized_body_gets_401_not_413(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={}, max_body_bytes=1024, ollama_base_url=ollama.url)
    response = await gateway.post(INFERENCE, json={"model_id": "m", "input_data": "x" * 4096})
    await assert_unauthorized(response)
    assert ollama.recorder.requests == []


# --- no secrets, no tracebacks --------------------------------------------------------------


async def test_401_body_shows_no_token_and_no_traceback(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={"Authorization": "Bearer offered-secret"},
                                 api_tokens=("configured-secret-1", "configured-secret-2"), ollama_base_url=ollama.url)
    response = await gateway.post(INFERENCE, json=GOOD)
    await assert_unauthorized(response)
    text = await response.text()
    for secret in ("configured-secret-1", "configured-secret-2", "offered-secret"):
        assert secret not in text
    assert "Traceback" not in text


async def test_upstream_refusing_the_gateways_key_is_503_not_the_clients_401(
    make_gateway: GatewayFactory, openai: RunningUpstream, openai_fake: OpenAIUpstream, dead_url: URL,
) -> None:
    openai_fake.api_key = "sk-the-right-key"
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url,
                                 openai_api_key="sk-wrong-secret-key")
    response = await gateway.post(INFERENCE, json=GOOD)
    assert response.status == 503
    assert "WWW-Authenticate" not in response.headers
    text = await response.text()
    assert (await response.json())["code"] == "upstream_unavailable"
    # The gateway really sent its key upstream; the answer does not repeat it.
    assert openai.recorder.requests[-1].headers["Authorization"] == "Bearer sk-wrong-secret-key"
    for secret in ("sk-wrong-secret-key", TOKEN):
        assert secret not in text
    assert "Traceback" not in text


async def test_upstream_failure_body_shows_no_secret(
    make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL,
) -> None:
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url, openai_api_key="sk-secret-key")
    response = await gateway.post(INFERENCE, json={"model_id": "down-model", "input_data": "hi"})
    assert response.status == 503
    text = await response.text()
    assert [a["backend"] for a in (await response.json())["attempts"]] == ["ollama", "openai"]
    for secret in ("sk-secret-key", TOKEN):
        assert secret not in text
    assert "Traceback" not in text


# --- request id and timing ---------------------------------------------------------------------


@pytest.mark.parametrize("offered", ["abc-123", "req_1.2:3", "0f8fad5b-d9cb-469f-a165-70867728950e", "x" * 128])
async def test_plain_client_request_id_is_echoed_in_header_and_error_body(
    gateway: TestClient, offered: str,
) -> None:
    response = await gateway.post(INFERENCE, json={"input_data": "hi"}, headers={"X-Request-ID": offered})
    assert response.status == 400
    assert response.headers["X-Request-ID"] == offered
    assert (await response.json())["request_id"] == offered


async def test_plain_client_request_id_is_echoed_on_success(gateway: TestClient) -> None:
    response = await gateway.post(INFERENCE, json=GOOD, headers={"X-Request-ID": "client-42"})
    assert response.status == 200
    assert response.headers["X-Request-ID"] == "client-42"


async def test_client_request_id_is_echoed_on_401(anonymous: TestClient) -> None:
    response = await anonymous.post(INFERENCE, json=GOOD, headers={"X-Request-ID": "client-42"})
    body = await assert_unauthorized(response)
    assert response.headers["X-Request-ID"] == "client-42"
    assert body["request_id"] == "client-42"


@pytest.mark.parametrize("offered", ["has spaces", "x" * 129, "a/b", "<script>", "id;drop", "é"])
async def test_unsafe_client_request_id_is_replaced_with_a_generated_one(gateway: TestClient, offered: str) -> None:
    response = await gateway.post(INFERENCE, json={"input_data": "hi"}, headers={"X-Request-ID": offered})
    assert response.status == 400
    generated = response.headers["X-Request-ID"]
    assert generated != offered
    assert PLAIN_ID.fullmatch(generated)
    assert (await response.json())["request_id"] == generated


async def test_each_request_gets_its_own_generated_id(gateway: TestClient) -> None:
    first = await gateway.post(INFERENCE, json={"input_data": "hi"})
    second = await gateway.post(INFERENCE, json={"input_data": "hi"})
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2
    assert ids == {(await first.json())["request_id"], (await second.json())["request_id"]}


async def test_json_answer_has_request_id_and_server_timing(gateway: TestClient) -> None:
    response = await gateway.post(INFERENCE, json=GOOD)
    assert response.status == 200
    assert_context_headers(response)


async def test_stream_has_request_id_and_server_timing(gateway: TestClient) -> None:
    response = await gateway.post(STREAM, json=GOOD, headers={"X-Request-ID": "stream-1"})
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    assert assert_context_headers(response) == "stream-1"
    assert '"done":true' in await response.text()


async def test_health_answer_has_request_id_and_server_timing(gateway: TestClient) -> None:
    response = await gateway.get("/api/v1/health")
    assert response.status == 200
    assert_context_headers(response)


@pytest.mark.parametrize(("method", "path", "payload", "status"), [
    ("POST", INFERENCE, {"input_data": "hi"}, 400),
    ("POST", INFERENCE, {"model_id": "missing-everywhere", "input_data": "hi"}, 404),
    ("GET", INFERENCE, None, 405),
    ("POST", "/api/v1/nope", None, 404),
    ("GET", "/nope", None, 404),
])
async def test_error_answer_has_request_id_and_server_timing(
    gateway: TestClient, method: str, path: str, payload: object, status: int,
) -> None:
    response = await gateway.request(method, path, json=payload)
    assert response.status == status
    request_id = assert_context_headers(response)
    assert (await response.json())["request_id"] == request_id


async def test_401_has_request_id_and_server_timing(anonymous: TestClient) -> None:
    response = await anonymous.post(INFERENCE, json=GOOD)
    body = await assert_unauthorized(response)
    assert body["request_id"] == assert_context_headers(response)

"""CORS over HTTP: what the gateway answers a browser's preflight and its real requests.

The browser itself is in tests/surfaces/test_browser.py; here every header is checked exactly,
for every API route the app has (read from the app, so a route added later is covered by
these tests without a change), for streams, and for each kind of error a browser client
must be able to read.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from proxy.app import create_app
from proxy.edge.cors import under_cors
from proxy.settings.config import Settings
from tests.support.app import AUTH, TOKEN, GatewayFactory, RunningUpstream
from tests.support.upstreams.openai import OpenAIUpstream

WEB_APP = "https://app.example.com"
OTHER = "https://evil.example.net"
MAX_AGE = 900
INFERENCE = "/api/v1/inference"
STREAM = "/api/v1/inference/stream"
GOOD = {"model_id": "gemma3:1b", "input_data": "What is 2+2?"}
EXPOSED = {"X-Request-ID", "Server-Timing", "Retry-After"}


def preflight_headers(method: str = "POST", origin: str = WEB_APP,
                      headers: str = "authorization,content-type") -> dict[str, str]:
    """What Chromium sends before a fetch with an Authorization header and a JSON body."""
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


def api_routes(settings: Settings) -> list[tuple[str, str]]:
    """(method, path) of every route the app registers under /api/ and /v1/ (HEAD aside)."""
    app = create_app(settings)
    return sorted({
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and under_cors(route.resource.canonical)
        and route.method not in ("HEAD", "OPTIONS")
    })


SETTINGS = Settings(api_tokens=(TOKEN,), cors_origins=(WEB_APP,), cors_max_age=MAX_AGE)
ROUTES = api_routes(SETTINGS)


@pytest.fixture
def upstreams(ollama: RunningUpstream, openai: RunningUpstream) -> list[RunningUpstream]:
    return [ollama, openai]


@pytest.fixture
async def anonymous(make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream) -> TestClient:
    """A gateway that allows WEB_APP, seen by a client that sends no token of its own."""
    return await make_gateway(headers={}, ollama_base_url=ollama.url, openai_endpoint=openai.url,
                              cors_origins=(WEB_APP,), cors_max_age=MAX_AGE)


@pytest.fixture
async def web_app(make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream) -> TestClient:
    """The same gateway, seen by the web app: its Origin and a valid token on every request."""
    return await make_gateway(headers={**AUTH, "Origin": WEB_APP}, ollama_base_url=ollama.url,
                              openai_endpoint=openai.url, cors_origins=(WEB_APP,), cors_max_age=MAX_AGE)


def assert_readable_by(response: ClientResponse, origin: str) -> None:
    """The headers a browser needs before it hands this response to a page of `origin`."""
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert set(response.headers["Access-Control-Expose-Headers"].split(",")) == EXPOSED
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]


def assert_no_cors(response: ClientResponse) -> None:
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def assert_nothing_forwarded(upstreams: list[RunningUpstream]) -> None:
    for upstream in upstreams:
        assert upstream.recorder.requests == []


# --- preflights ---------------------------------------------------------------------------


def test_the_api_routes_are_found_in_the_app() -> None:
    # The parametrized tests below run once per route found here; an empty list would prove nothing.
    assert ("POST", STREAM) in ROUTES
    assert ("GET", "/api/v1/health") in ROUTES
    assert len(ROUTES) >= 7


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_every_api_route_answers_a_preflight_without_a_token_or_a_backend(
    anonymous: TestClient, upstreams: list[RunningUpstream], method: str, path: str,
) -> None:
    # A path parameter ({model}, {digest}) is asked for with a value, as a browser would.
    response = await anonymous.options(re.sub(r"\{[^}]*\}", "some-value", path), headers=preflight_headers(method))
    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == WEB_APP
    assert response.headers["Access-Control-Allow-Methods"] == method
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "content-type"}
    assert response.headers["Access-Control-Max-Age"] == str(MAX_AGE)
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]
    assert_nothing_forwarded(upstreams)


async def test_a_preflight_may_ask_for_the_clients_own_request_id_header(anonymous: TestClient) -> None:
    response = await anonymous.options(STREAM, headers=preflight_headers(headers="authorization,content-type,"
                                                                                 "x-request-id"))
    assert response.status == 200
    assert "X-REQUEST-ID" in response.headers["Access-Control-Allow-Headers"].upper()


async def test_the_openai_javascript_sdks_preflight_is_answered(anonymous: TestClient) -> None:
    sdk_headers = ("authorization,content-type,x-stainless-lang,x-stainless-package-version,x-stainless-os,"
                   "x-stainless-arch,x-stainless-runtime,x-stainless-runtime-version,x-stainless-retry-count,"
                   "x-stainless-timeout")
    response = await anonymous.options("/v1/chat/completions", headers=preflight_headers(headers=sdk_headers))
    assert response.status == 200
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert set(sdk_headers.split(",")) <= allowed


@pytest.mark.parametrize(("headers", "named"), [
    pytest.param(preflight_headers(origin=OTHER), OTHER, id="origin-not-allowed"),
    pytest.param(preflight_headers(method="DELETE"), "DELETE", id="method-the-route-lacks"),
    pytest.param(preflight_headers(headers="authorization,x-api-key"), "X-API-KEY", id="header-not-allowed"),
])
async def test_a_preflight_outside_the_configuration_is_refused_with_403_naming_why(
    anonymous: TestClient, upstreams: list[RunningUpstream], headers: dict[str, str], named: str,
) -> None:
    response = await anonymous.options(INFERENCE, headers=headers)
    assert response.status == 403
    body = await response.json()
    assert body["code"] == "forbidden"
    assert named in body["message"]
    assert "Access-Control-Allow-Origin" not in response.headers
    assert_nothing_forwarded(upstreams)


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="plain-options"),
    pytest.param({"Origin": WEB_APP}, id="origin-without-requested-method"),
    pytest.param({"Access-Control-Request-Method": "POST"}, id="requested-method-without-origin"),
])
async def test_an_options_request_that_is_not_a_preflight_still_needs_a_token(
    anonymous: TestClient, upstreams: list[RunningUpstream], headers: dict[str, str],
) -> None:
    response = await anonymous.options(INFERENCE, headers=headers)
    assert response.status == 401
    assert (await response.json())["code"] == "unauthorized"
    assert_nothing_forwarded(upstreams)


async def test_a_preflight_for_a_path_that_does_not_exist_is_404(anonymous: TestClient) -> None:
    response = await anonymous.options("/api/v1/nothing-here", headers=preflight_headers())
    assert response.status == 404
    assert_no_cors(response)


# --- real requests --------------------------------------------------------------------------


async def test_a_single_shot_answer_is_readable_by_the_allowed_origin(web_app: TestClient) -> None:
    response = await web_app.post(INFERENCE, json=GOOD)
    assert response.status == 200
    assert_readable_by(response, WEB_APP)
    assert (await response.json())["output"] == "2 + 2 = 4\n"


async def test_a_stream_carries_the_cors_headers(web_app: TestClient) -> None:
    response = await web_app.post(STREAM, json=GOOD)
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    assert_readable_by(response, WEB_APP)
    text = await response.text()
    assert '"done":true' in text


async def test_embeddings_and_models_carry_the_cors_headers(web_app: TestClient) -> None:
    embeddings = await web_app.post("/api/v1/embeddings", json={"model_id": "nomic-embed-text", "input": "hi"})
    assert embeddings.status == 200
    assert_readable_by(embeddings, WEB_APP)
    listed = await web_app.get("/api/v1/models")
    assert listed.status == 200
    assert_readable_by(listed, WEB_APP)


@pytest.mark.parametrize(("headers", "path", "payload", "status", "code"), [
    pytest.param({"Authorization": "Bearer wrong"}, INFERENCE, GOOD, 401, "unauthorized", id="401-bad-token"),
    pytest.param({}, INFERENCE, {"model_id": 5}, 400, "invalid_input", id="400-invalid-body"),
    pytest.param({}, STREAM, {"model_id": 5}, 400, "invalid_input", id="400-invalid-stream-body"),
    pytest.param({}, INFERENCE, {"model_id": "missing-everywhere-x", "input_data": "hi"}, 404, "model_not_found",
                 id="404-model-not-found"),
    pytest.param({}, STREAM, {"model_id": "busy-x", "input_data": "hi"}, 503, "upstream_unavailable",
                 id="503-no-backend-for-a-stream"),
])
async def test_errors_are_readable_by_the_allowed_origin(
    web_app: TestClient, headers: dict[str, str], path: str, payload: object, status: int, code: str,
) -> None:
    response = await web_app.post(path, json=payload, headers=headers)
    assert response.status == status
    assert_readable_by(response, WEB_APP)
    assert (await response.json())["code"] == code


async def test_overload_exposes_retry_after(
    make_gateway: GatewayFactory, openai: RunningUpstream, openai_fake: OpenAIUpstream,
) -> None:
    gateway = await make_gateway(headers={**AUTH, "Origin": WEB_APP}, openai_endpoint=openai.url,
                                 cors_origins=(WEB_APP,), upstream_max_in_flight=1, max_in_flight=1,
                                 queue_timeout=0.01)
    # The one slot is held by a stream that stays open until the test releases the upstream.
    release = asyncio.Event()
    openai_fake.release = release
    first = await gateway.post(STREAM, json=GOOD)
    assert first.status == 200
    second = await gateway.post(INFERENCE, json=GOOD)
    release.set()
    await first.read()
    assert second.status == 503
    assert_readable_by(second, WEB_APP)
    assert second.headers["Retry-After"] == "1"


async def test_another_origin_is_refused_before_anything_runs_and_gets_no_cors_headers(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={**AUTH, "Origin": OTHER}, ollama_base_url=ollama.url,
                                 cors_origins=(WEB_APP,))
    response = await gateway.post(INFERENCE, json=GOOD)
    # A browser would hide the answer from the page, but the request would still run:
    # refused instead, so a page elsewhere cannot spend the key's quota by a simple POST.
    assert response.status == 403
    body = await response.json()
    assert body["code"] == "forbidden"
    assert OTHER in body["message"] and "PROXY_CORS_ORIGINS" in body["message"]
    assert_no_cors(response)
    assert "Origin" in response.headers["Vary"]
    assert ollama.recorder.requests == []


async def test_paths_outside_the_api_get_no_cors(make_gateway: GatewayFactory, ollama: RunningUpstream) -> None:
    gateway = await make_gateway(headers={"Origin": WEB_APP}, ollama_base_url=ollama.url, cors_origins=(WEB_APP,),
                                 playground=True)
    response = await gateway.get("/playground/")
    assert response.status == 200
    assert_no_cors(response)
    preflight = await gateway.options("/playground/", headers=preflight_headers("GET"))
    assert preflight.status == 405
    assert_no_cors(preflight)


# --- configurations ---------------------------------------------------------------------------


async def test_without_origins_cors_is_off_and_a_preflight_is_an_ordinary_unauthenticated_request(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={"Origin": WEB_APP}, ollama_base_url=ollama.url)
    preflight = await gateway.options(INFERENCE, headers=preflight_headers())
    assert preflight.status == 401
    assert_no_cors(preflight)
    response = await gateway.post(INFERENCE, json=GOOD, headers=AUTH)
    assert response.status == 200
    assert_no_cors(response)
    assert "Vary" not in response.headers


async def test_a_star_allows_any_origin_and_still_never_credentials(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={}, ollama_base_url=ollama.url, cors_origins=("*",))
    for origin in (WEB_APP, OTHER, "http://localhost:5173"):
        preflight = await gateway.options(INFERENCE, headers=preflight_headers(origin=origin))
        assert preflight.status == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        response = await gateway.post(INFERENCE, json=GOOD, headers={**AUTH, "Origin": origin})
        assert response.status == 200
        assert_readable_by(response, origin)


async def test_with_auth_disabled_listed_origins_still_work(
    make_gateway: GatewayFactory, ollama: RunningUpstream,
) -> None:
    gateway = await make_gateway(headers={"Origin": WEB_APP}, api_tokens=(), auth_disabled=True,
                                 ollama_base_url=ollama.url, cors_origins=(WEB_APP,))
    preflight = await gateway.options(INFERENCE, headers=preflight_headers())
    assert preflight.status == 200
    response = await gateway.post(INFERENCE, json=GOOD)
    assert response.status == 200
    assert_readable_by(response, WEB_APP)


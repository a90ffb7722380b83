"""In a real browser: a web app on another origin uses the gateway, and so does the playground.

Headless Chromium (Debian's, see tests/support/browser/chromium.py) loads pages over HTTP from
servers on loopback ports: the gateway, in front of the upstream test servers, and a small
web app (tests/support/browser/webapp/) on a port of its own, hence another origin. What the
browser lets the page read, or refuses, is the proof: CORS is enforced by the browser,
not by these tests.

The playground screenshot in docs/playground.png is taken here: with
UPDATE_SCREENSHOTS=1 the test rewrites it, otherwise it goes to the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser
from yarl import URL

from tests.support.app import TOKEN, GatewayFactory, RunningUpstream
from tests.support.browser.chromium import VIEWPORT, WatchedPage, chromium, origin_of
from tests.support.paths import ROOT
from tests.support.upstreams.ollama import transcript
from tests.support.upstreams.openai import TOKENS, OpenAIUpstream

pytestmark = pytest.mark.browser

WEB_APP_FILES = ROOT / "tests" / "support" / "browser" / "webapp"
SCREENSHOT = ROOT / "docs" / "playground.png"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MS = r"\d+ ms"

ROUTES = """
unknown_models = "refuse"

[models."gemma3:1b"]
kinds = ["chat"]
backends = [
  { backend = "ollama", model = "length-gemma3:1b" },
  { backend = "openai", model = "gpt-test" },
]

[models."cloud-only"]
kinds = ["chat"]
backends = [{ backend = "openai", model = "gpt-test" }]

[models."nomic-embed-text"]
kinds = ["embeddings"]
backends = [{ backend = "ollama", model = "nomic-embed-text" }]
"""

ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def serve_web_app(aiohttp_server: ServerFactory) -> URL:
    """The web app's own server: another port of 127.0.0.1, so another origin than the gateway."""
    app = web.Application()
    app.router.add_static("/", WEB_APP_FILES)
    server = await aiohttp_server(app)
    return server.make_url("/index.html")


def base_url(gateway: TestClient) -> str:
    return str(gateway.make_url("")).rstrip("/")


async def in_page(page: WatchedPage, function: str, *args: Any) -> Any:
    """Call one of the web app's functions in the page with `args`, and return what it returned."""
    return await page.page.evaluate(f"(args) => {function}(...args)", list(args))


# --- a web app on another origin --------------------------------------------------------------


async def test_a_web_app_on_another_origin_reads_a_stream_token_by_token_and_an_embedding(
    make_gateway: GatewayFactory, aiohttp_server: ServerFactory, browser: Browser,
    ollama: RunningUpstream, openai: RunningUpstream, openai_fake: OpenAIUpstream,
) -> None:
    web_app = await serve_web_app(aiohttp_server)
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url,
                                 cors_origins=(origin_of(web_app),))
    page = await WatchedPage.open(browser, web_app)
    assert origin_of(web_app) != origin_of(gateway.make_url(""))

    # Ollama lacks "missing-..." models, so the OpenAI test server answers, and holds its
    # stream open after the first token until the test releases it.
    openai_fake.release = asyncio.Event()
    body = {"model_id": "missing-locally", "input_data": "Say hello"}
    stream = asyncio.ensure_future(in_page(page, "streamInference", base_url(gateway), TOKEN, body))
    await page.page.wait_for_function("window.streamed.length > 0 || window.streamEnded")
    first = await page.page.evaluate("window.streamed")
    assert [(e["token"], e["done"]) for e in first] == [("Hello", False)]  # read while the stream is open
    assert not stream.done()
    openai_fake.release.set()
    result = await stream

    assert result["status"] == 200
    assert result["contentType"].startswith("text/event-stream")
    assert REQUEST_ID.fullmatch(result["requestId"])  # exposed headers are readable by the page
    assert result["serverTiming"].startswith("total;dur=")
    tokens = [e["token"] for e in result["events"] if not e["done"]]
    assert tokens == TOKENS
    final = result["events"][-1]
    assert final["done"] is True and final["provider"] == "openai" and "error" not in final
    assert result["reads"] >= 2

    embedded = await in_page(page, "callGateway", base_url(gateway), TOKEN, "/api/v1/embeddings",
                             {"model_id": "nomic-embed-text", "input": ["first text", "second text"]})
    assert embedded["status"] == 200
    assert [len(item["embedding"]) for item in embedded["body"]["data"]] == [768, 768]
    assert embedded["body"]["provider"] == "ollama"
    assert embedded["body"]["usage"]["total_tokens"] > 0
    assert page.problems() == []


async def test_a_web_app_on_another_origin_reads_every_kind_of_error(
    make_gateway: GatewayFactory, aiohttp_server: ServerFactory, browser: Browser,
    ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    web_app = await serve_web_app(aiohttp_server)
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url,
                                 cors_origins=(origin_of(web_app),))
    page = await WatchedPage.open(browser, web_app)
    base = base_url(gateway)
    cases = [
        (await in_page(page, "callGateway", base, "wrong-token", "/api/v1/health"), 401, "unauthorized"),
        (await in_page(page, "callGateway", base, TOKEN, "/api/v1/inference", {"model_id": 5}), 400,
         "invalid_input"),
        (await in_page(page, "callGateway", base, TOKEN, "/api/v1/inference",
                       {"model_id": "missing-everywhere", "input_data": "hi"}), 404, "model_not_found"),
        (await in_page(page, "streamInference", base, TOKEN, {"model_id": "busy-everywhere", "input_data": "hi"}),
         503, "upstream_unavailable"),
    ]
    for result, status, code in cases:
        assert "refused" not in result, result
        assert result["status"] == status
        assert result["body"]["code"] == code
        assert result["body"]["request_id"] == result["requestId"]


@pytest.mark.parametrize("allowed", [
    pytest.param(("http://127.0.0.1:9",), id="origin-not-listed"),
    pytest.param((), id="cors-off"),
])
async def test_a_browser_refuses_the_gateway_to_an_origin_that_is_not_allowed(
    make_gateway: GatewayFactory, aiohttp_server: ServerFactory, browser: Browser,
    ollama: RunningUpstream, openai: RunningUpstream, allowed: tuple[str, ...],
) -> None:
    web_app = await serve_web_app(aiohttp_server)
    gateway = await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, cors_origins=allowed)
    page = await WatchedPage.open(browser, web_app)

    streamed = await in_page(page, "streamInference", base_url(gateway), TOKEN,
                             {"model_id": "gemma3:1b", "input_data": "hi"})
    health = await in_page(page, "callGateway", base_url(gateway), TOKEN, "/api/v1/health")

    for result in (streamed, health):
        assert result == {"refused": "TypeError: Failed to fetch"}
    blocked = [line for line in page.console if "blocked by CORS policy" in line]
    assert len(blocked) == 2, page.console
    assert all("preflight" in line for line in blocked)
    # The real requests were never sent: the preflight stopped them.
    assert ollama.recorder.requests == []
    assert openai.recorder.requests == []


# --- the playground ---------------------------------------------------------------------------


@pytest.fixture
async def playground_gateway(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> TestClient:
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    return await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, routes_file=str(routes),
                              playground=True)


# The page's CSP forbids eval, so waits are selectors (Playwright's wait_for_function evals).


async def connect(page: WatchedPage) -> None:
    await page.page.fill("#token", TOKEN)
    await page.page.click("#connect")
    await page.page.wait_for_selector("#auth-status:text-is('connected')")


async def ask(page: WatchedPage, model: str, prompt: str, max_tokens: str = "") -> None:
    await page.page.fill("#model", model)
    await page.page.fill("#max-tokens", max_tokens)
    await page.page.fill("#prompt", prompt)
    await page.page.click("#send")


async def text(page: WatchedPage, selector: str) -> str:
    return await page.page.inner_text(selector)


async def test_the_playground_shows_tokens_as_they_arrive(
    playground_gateway: TestClient, browser: Browser, openai_fake: OpenAIUpstream,
) -> None:
    page = await WatchedPage.open(browser, playground_gateway.make_url("/playground"))
    await connect(page)
    openai_fake.release = asyncio.Event()
    await ask(page, "cloud-only", "Say hello")

    await page.page.wait_for_selector("#answer:not(:empty)")
    assert await text(page, "#answer") == "Hello"  # the first token, shown while the stream is held open
    assert await page.page.is_enabled("#stop")
    assert await text(page, "#stat-total") == "—"
    openai_fake.release.set()
    await page.page.wait_for_selector("#run-status:text-is('done')")
    assert await text(page, "#answer") == "".join(TOKENS)
    assert await text(page, "#stat-provider") == "openai"
    assert page.problems() == []


async def test_the_playground_streams_an_answer_with_its_provider_latencies_and_backend_health(
    playground_gateway: TestClient, browser: Browser, tmp_path: pathlib.Path,
) -> None:
    page = await WatchedPage.open(browser, playground_gateway.make_url("/playground"))
    await connect(page)
    # The model picker lists the chat models of /api/v1/models, not the embeddings-only one.
    options = await page.page.eval_on_selector_all("#models option", "options => options.map(o => o.value)")
    assert options == ["gemma3:1b", "cloud-only"]
    assert await page.page.input_value("#model") == "gemma3:1b"

    await ask(page, "gemma3:1b", "Hello, how are you?", max_tokens="50")
    await page.page.wait_for_selector("#run-status:text-is('done')")

    lines = transcript("chat_stream_length")["body_lines"]
    recorded = "".join(orjson.loads(line)["message"]["content"] for line in lines)
    assert await text(page, "#answer") == recorded
    assert await text(page, "#stat-provider") == "ollama"
    assert re.fullmatch(rf"{MS} \(gateway {MS}\)", await text(page, "#stat-ttft"))
    assert re.fullmatch(rf"{MS} \(gateway {MS}\)", await text(page, "#stat-total"))
    assert re.fullmatch(r"\d+ in · \d+ out", await text(page, "#stat-tokens"))
    assert await text(page, "#stat-finish") == "length"
    assert REQUEST_ID.fullmatch(await text(page, "#stat-request-id"))
    assert await page.page.is_hidden("#error")

    rows = await page.page.eval_on_selector_all(
        "#backends tr[data-backend]", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("ollama", "ollama", "up", "closed"),
                                                         ("openai", "openai", "up", "closed")]
    assert (await text(page, "#health-summary")).startswith("ok: 2 of 2 backends answer")

    # The token stayed in the page: nothing stored, no cookie, and no request left this origin.
    assert await page.page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]
    gateway_origin = origin_of(playground_gateway.make_url(""))
    assert page.requests and all(origin_of(URL(url)) == gateway_origin for url in page.requests)
    assert page.problems() == []  # no CSP violation, no script error

    target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "playground.png"
    await page.page.screenshot(path=target)
    assert png_size(target.read_bytes()) == (VIEWPORT["width"], VIEWPORT["height"])


async def test_the_playground_says_why_a_call_failed(playground_gateway: TestClient, browser: Browser) -> None:
    page = await WatchedPage.open(browser, playground_gateway.make_url("/playground/"))
    await page.page.fill("#token", "not-the-token")
    await page.page.click("#connect")
    await page.page.wait_for_selector("#auth-status.error")
    assert await text(page, "#auth-status") == "401 unauthorized: invalid token"

    await connect(page)
    await ask(page, "no-such-model", "hi")
    await page.page.wait_for_selector("#error:visible")
    assert (await text(page, "#error")).startswith("404 model_not_found: ")
    assert REQUEST_ID.fullmatch(await text(page, "#stat-request-id"))
    assert await text(page, "#stat-provider") == "—"


async def test_the_playground_keeps_the_token_for_the_tab_only_when_asked(
    playground_gateway: TestClient, browser: Browser,
) -> None:
    page = await WatchedPage.open(browser, playground_gateway.make_url("/playground/"))
    await page.page.check("#remember")
    await connect(page)
    assert await page.page.evaluate("[localStorage.length, Object.values(sessionStorage)]") == [0, [TOKEN]]
    await page.page.reload()  # same tab: the page connects by itself with the kept token
    await page.page.wait_for_selector("#auth-status:text-is('connected')")
    await page.page.uncheck("#remember")
    assert await page.page.evaluate("sessionStorage.length") == 0


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking it is one: signature, IHDR first, IEND last."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"
    width, height = struct.unpack(">II", data[16:24])
    return width, height

"""The playground page over HTTP: off by default, its files, their headers, nothing external.

What the page does in a browser is in tests/surfaces/test_browser.py.
"""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.paths import ROOT

FILES = ROOT / "proxy" / "surfaces" / "playground" / "static"
ASSETS = {
    "playground.js": "text/javascript",
    "playground.css": "text/css",
    "favicon.svg": "image/svg+xml",
}


@pytest.fixture
async def playground(make_gateway: GatewayFactory, ollama: RunningUpstream) -> TestClient:
    return await make_gateway(headers={}, ollama_base_url=ollama.url, playground=True)


async def test_the_playground_is_off_by_default(make_gateway: GatewayFactory, ollama: RunningUpstream) -> None:
    gateway = await make_gateway(headers={}, ollama_base_url=ollama.url)
    for path in ("/playground", "/playground/", "/playground/playground.js"):
        response = await gateway.get(path, allow_redirects=False)
        assert response.status == 404
        assert (await response.json())["code"] == "not_found"


async def test_the_page_is_served_without_a_token_with_a_strict_content_security_policy(
    playground: TestClient,
) -> None:
    response = await playground.get("/playground/")
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = dict(
        directive.strip().split(" ", 1) for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<title>octomil-gateway playground</title>" in await response.text()


async def test_the_bare_path_redirects_relatively_to_the_page(playground: TestClient) -> None:
    response = await playground.get("/playground", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "playground/"  # relative: works under a proxy's path prefix


@pytest.mark.parametrize(("name", "content_type"), ASSETS.items())
async def test_each_file_is_served_with_its_type_and_the_same_policy(
    playground: TestClient, name: str, content_type: str,
) -> None:
    response = await playground.get(f"/playground/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    assert "Content-Security-Policy" in response.headers
    assert await response.read() == (FILES / name).read_bytes()


@pytest.mark.parametrize("path", ["/playground/index.html", "/playground/../proxy/config.py",
                                  "/playground/%2e%2e/config.py", "/playground/app.py"])
async def test_nothing_but_the_named_files_is_served(playground: TestClient, path: str) -> None:
    response = await playground.get(path)
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "not_found"
    assert "import" not in await response.text()  # no source file came back


async def test_the_api_still_needs_a_token_with_the_playground_on(playground: TestClient) -> None:
    response = await playground.get("/api/v1/models")
    assert response.status == 401
    assert (await response.json())["code"] == "unauthorized"


def test_the_shipped_files_load_nothing_from_elsewhere_and_run_no_inline_code() -> None:
    # The browser test also records every request the page makes; this catches one that
    # only a rarely taken path would make. An XML namespace is a name, never fetched.
    for path in FILES.iterdir():
        text = re.sub(r'xmlns="[^"]*"', "", path.read_text())
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), path.name
        assert "@import" not in text, path.name
    page = (FILES / "index.html").read_text()
    # Every script is a file of the page's own; no inline script, handler or style attribute.
    assert re.findall(r"<script[^>]*>", page) == ['<script src="playground.js" defer>']
    assert "</script>" in page and "<script src=\"playground.js\" defer></script>" in page
    assert not re.search(r"\son[a-z]+=", page)
    assert " style=" not in page
    # The answer and errors are set as text, never parsed as HTML.
    script = (FILES / "playground.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "localStorage" not in script

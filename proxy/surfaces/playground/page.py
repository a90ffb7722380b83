"""GET /playground/: a page to try the gateway from a browser (off unless PROXY_PLAYGROUND=true).

One static page of plain HTML, CSS and JavaScript shipped in the package (`proxy/surfaces/playground/static/`),
nothing downloaded from anywhere. It calls the public API exactly as a browser client would,
with the token the person types: /api/v1/models, /api/v1/health, /api/v1/inference/stream.
The page holds no secret, so it is served without a token; every call it makes needs one.

Each file is read once, when the app is built, and served with a strict
Content-Security-Policy: scripts, styles and connections only from this origin, no inline
script, no framing. This module does not serve arbitrary files: only the ones it names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

# (file name in static/, content type); the page itself is served at "/playground/".
_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "playground.js": ("playground.js", "text/javascript; charset=utf-8"),
    "playground.css": ("playground.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load, so a page never outlives the gateway version that served it.
    "Cache-Control": "no-cache",
}


def _file_handler(body: bytes, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=body, headers={**_HEADERS, "Content-Type": content_type})

    return serve


async def _to_page(_request: web.Request) -> web.Response:
    # Relative, so that behind a proxy that adds a path prefix the page is still found.
    raise web.HTTPFound("playground/")


def add_playground(app: web.Application) -> None:
    """Register /playground and its files on `app`."""
    folder = resources.files("proxy.surfaces.playground") / "static"
    app.router.add_get("/playground", _to_page)
    for path, (name, content_type) in _FILES.items():
        app.router.add_get(f"/playground/{path}", _file_handler((folder / name).read_bytes(), content_type))

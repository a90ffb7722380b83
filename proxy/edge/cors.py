"""CORS for browser clients of the API, with aiohttp-cors.

Browser apps call the gateway with `fetch` and an `Authorization` header, so every call is
cross-origin and preceded by a preflight. `enable_cors` runs after every route is added
and covers each route under `/api/` (the contract's `/api/v1/` and Ollama's API, which
browser apps call with Ollama's own OLLAMA_ORIGINS) and `/v1/` with the methods that route really has:
a preflight for any other method is refused (403). It also makes every answer of those
routes (errors and streams included) carry the CORS headers for an allowed origin, since
a browser hides from the page any response that lacks them, error bodies too.

Deliberately absent: credentials. Browser clients authenticate with the Authorization
header, which needs no credentialed mode, so Access-Control-Allow-Credentials is never
sent, and an origin of `*` can never be combined with it. Preflights for paths that do
not exist are not answered (they get the usual 404): there is nothing to call there.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp_cors
from aiohttp import hdrs, web

CORS_PREFIXES = ("/api/", "/v1/")
# Beyond the safelisted request headers: the token, JSON bodies, and a client's own request id;
# then what the official OpenAI JavaScript SDK sends from a browser with every /v1 call
# (its platform and retry headers, and the organization and project when set), without
# which its preflight would be refused.
ALLOWED_HEADERS = (
    "Authorization", "Content-Type", "X-Request-ID",
    "X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch",
    "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Retry-Count", "X-Stainless-Timeout",
    "OpenAI-Organization", "OpenAI-Project",
)
# Beyond the safelisted response headers (Content-Type, Cache-Control, ...): what clients read.
EXPOSED_HEADERS = ("X-Request-ID", "Server-Timing", "Retry-After")


def is_preflight(request: web.BaseRequest) -> bool:
    """A browser's CORS preflight: OPTIONS naming both its origin and the method it wants."""
    headers = request.headers
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ORIGIN in headers
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers
    )


def under_cors(path: str) -> bool:
    return path.startswith(CORS_PREFIXES)


def enable_cors(app: web.Application, origins: Sequence[str], max_age: int) -> None:
    """Allow `origins` (or every origin, for `*`) on every API route added so far.

    Must run after the last route is added: a route added later gets no CORS. Without
    origins nothing is set up, and browsers refuse every cross-origin call.
    """
    if not origins:
        return
    # aiohttp-cors ships py.typed but leaves ResourceOptions' constructor unannotated.
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=False,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=max_age,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):  # cors.add adds OPTIONS routes as it goes
        if route.resource is not None and under_cors(route.resource.canonical):
            cors.add(route)
    app.on_response_prepare.append(_vary_on_origin)


async def _vary_on_origin(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the CORS headers depend on Origin, so a cache must key on it too."""
    if not under_cors(request.path):
        return
    vary = response.headers.get(hdrs.VARY)
    if vary is None:
        response.headers[hdrs.VARY] = "Origin"
    elif "origin" not in vary.lower():
        response.headers[hdrs.VARY] = f"{vary}, Origin"

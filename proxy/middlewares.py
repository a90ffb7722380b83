"""Request context (id and timing), error rendering, and bearer auth (which names the tenant).

Order matters and is fixed in `middlewares()`: the context is set first so that every
error, including a 401, carries a request id; errors wrap auth so a refused token is
rendered like any other error.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware
from attrs import frozen

from proxy.cors import is_preflight
from proxy.errors import (
    Forbidden,
    GatewayError,
    InvalidInput,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from proxy.openai_errors import openai_error
from proxy.outcome import Outcome
from proxy.tenants import ANONYMOUS, KeyRing, Tenant

log = logging.getLogger("proxy")

REQUEST_ID = web.RequestKey("request_id", str)
STARTED = web.RequestKey("started", float)
OUTCOME = web.RequestKey("outcome", Outcome)
TENANT = web.RequestKey("tenant", Tenant)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A client's X-Request-ID is echoed only if it is short and plain: it goes into logs.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


_REQUEST_IDS = itertools.count(1)
# Random per process, so ids from several workers or restarts do not collide; a counter
# after it, since a fresh uuid4 per request costs more than the rest of this middleware.
_PROCESS_PREFIX = secrets.token_hex(6)


def _new_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_REQUEST_IDS):010x}"


def elapsed_ms(request: web.Request) -> float:
    """Milliseconds since the request arrived."""
    return round((time.perf_counter() - request[STARTED]) * 1000, 3)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[STARTED] = time.perf_counter()
    request[OUTCOME] = Outcome()
    offered = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = offered if offered and _CLIENT_REQUEST_ID.fullmatch(offered) else _new_request_id()
    return await handler(request)


async def add_context_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs as headers go out, for plain and streamed responses alike.

    For a JSON answer Server-Timing is the whole request; for a stream it is the time
    until the first token, since that is when the headers are sent.
    """
    if STARTED in request:
        response.headers["Server-Timing"] = f"total;dur={elapsed_ms(request)}"
        response.headers["X-Request-ID"] = request[REQUEST_ID]


def error_response(error: GatewayError, request: web.Request) -> web.Response:
    if request.path.startswith("/v1/"):  # the OpenAI-compatible surface answers in OpenAI's shape
        body = openai_error(error, request.get(REQUEST_ID))
    else:
        body = {**error.to_json(), "request_id": request.get(REQUEST_ID, "")}
    response = web.Response(
        status=error.status, body=orjson.dumps(body), content_type="application/json", headers=error.headers
    )
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


_HTTP_EXCEPTIONS: dict[int, type[GatewayError]] = {
    400: InvalidInput,
    403: Forbidden,
    404: RouteNotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


@web.middleware
async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON with a stable code; tracebacks stay in the log."""
    try:
        return await handler(request)
    except GatewayError as exc:
        return error_response(exc, request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _HTTP_EXCEPTIONS.get(exc.status, GatewayError)(_http_exception_message(exc, request))
        if exc.status not in _HTTP_EXCEPTIONS:  # another client error: keep its status
            error.status = exc.status  # type: ignore[misc]
            error.code = "invalid_request" if exc.status < 500 else "server_error"  # type: ignore[misc]
        if "Allow" in exc.headers:  # a 405 must say which methods are allowed
            error.headers["Allow"] = exc.headers["Allow"]
        return error_response(error, request)
    except Exception:
        log.exception("unexpected error request_id=%s path=%s", request.get(REQUEST_ID), request.path)
        return error_response(GatewayError("internal error; the request id is in the server log"), request)


def _http_exception_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no such endpoint: {request.path}"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}"
    if exc.status == 413:
        return f"request body too large: {exc.text}"
    return exc.text or exc.reason


@frozen
class BearerAuth:
    """Checks `Authorization: Bearer <token>` on paths under `protected_prefixes`, except the
    public ones (the API description holds nothing a caller could misuse), and puts the
    caller's tenant on the request (TENANT) for handlers, limits and the access log.

    With `open_preflights` (CORS is on), a browser's preflight passes without a token: the
    browser never sends credentials with one, and it only asks what the real request, which
    is checked, may carry. Any other OPTIONS request still needs a token.

    Keys and tokens are compared as SHA-256 digests (see KeyRing for why each comparison
    is safe against timing). A refused token is a 401 before anything else happens.
    """

    keys: KeyRing
    protected_prefixes: tuple[str, ...] = ("/api/v1", "/v1")
    public_paths: frozenset[str] = frozenset({"/api/v1/openapi.json"})
    open_preflights: bool = False

    @classmethod
    def from_tokens(cls, tokens: Sequence[str], *, open_preflights: bool = False) -> BearerAuth:
        return cls(keys=KeyRing.load(None, tokens), open_preflights=open_preflights)

    def accepts(self, token: str) -> bool:
        return self.keys.identify(token) is not None

    def protects(self, path: str) -> bool:
        if path in self.public_paths:
            return False
        # Each prefix itself, or under it ("/v1/..."), but not a mere lookalike ("/v1x").
        return path.startswith(tuple(prefix + "/" for prefix in self.protected_prefixes)) \
            or path in self.protected_prefixes

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.protects(request.path) and not (self.open_preflights and is_preflight(request)):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
            tenant = self.keys.identify(token.strip())
            if tenant is None:
                raise Unauthorized("invalid token")
            request[TENANT] = tenant
        return await handler(request)


def tenant_of(request: web.Request) -> Tenant:
    """The caller's tenant; with auth disabled, everyone is the unlimited `anonymous`."""
    tenant: Tenant = request.get(TENANT, ANONYMOUS)
    return tenant


def middlewares(auth: BearerAuth | None, *, observe: Middleware, guard: Middleware | None = None) -> list[Middleware]:
    """`observe` (metrics) sees every request with its context, and every error as rendered;
    `guard` (request_guard.py) refuses what must be refused before auth."""
    chain: list[Middleware] = [request_context, observe, render_errors]
    if guard is not None:
        chain.append(guard)
    if auth is not None:
        chain.append(auth.middleware)
    return chain

"""Error rendering: every failure, ours or aiohttp's (404, 405, 413...), leaves as JSON with a
stable code and the request id, in the shape of the surface the path belongs to."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from attrs import frozen

from proxy.edge.request_keys import REQUEST_ID
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

log = logging.getLogger("proxy")

# A surface's error body: (error, request id) -> JSON object.
ErrorShape = Callable[[GatewayError, "str | None"], dict[str, Any]]


def native_error(error: GatewayError, request_id: str | None) -> dict[str, Any]:
    """The Octomil contract's error body (every path without a shape of its own)."""
    return {**error.to_json(), "request_id": request_id or ""}


@frozen
class ErrorRendering:
    """Renders every error as JSON with a stable code, in the shape of the surface whose path
    it is: `shapes` maps a path prefix ("/v1/") to that surface's error body, so a new
    surface brings its own shape without the edge importing it. Tracebacks stay in the log."""

    shapes: tuple[tuple[str, ErrorShape], ...] = ()

    def response(self, error: GatewayError, request: web.Request) -> web.Response:
        return error_response(error, request, self._shape(request.path))

    def _shape(self, path: str) -> ErrorShape:
        for prefix, shape in self.shapes:
            if path.startswith(prefix):
                return shape
        return native_error



def error_response(error: GatewayError, request: web.Request, shape: ErrorShape = native_error) -> web.Response:
    body = shape(error, request.get(REQUEST_ID))
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


def rendered(exc: Exception, request: web.Request, rendering: ErrorRendering) -> web.Response:
    """The JSON answer for an exception a handler (or auth, or admission) raised; an HTTP
    exception below 400 (a redirect) is raised again, for aiohttp to send."""
    if isinstance(exc, GatewayError):
        return rendering.response(exc, request)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        error = _HTTP_EXCEPTIONS.get(exc.status, GatewayError)(_http_exception_message(exc, request))
        if exc.status not in _HTTP_EXCEPTIONS:  # another client error: keep its status
            error.status = exc.status  # type: ignore[misc]
            error.code = "invalid_request" if exc.status < 500 else "server_error"  # type: ignore[misc]
        if "Allow" in exc.headers:  # a 405 must say which methods are allowed
            error.headers["Allow"] = exc.headers["Allow"]
        return rendering.response(error, request)
    # Anything else is a bug: logged with its traceback, answered without it.
    log.error("unexpected error request_id=%s path=%s", request.get(REQUEST_ID), request.path, exc_info=exc)
    return rendering.response(GatewayError("internal error; the request id is in the server log"), request)


def _http_exception_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no such endpoint: {request.path}"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path}"
    if exc.status == 413:
        return f"request body too large: {exc.text}"
    return exc.text or exc.reason

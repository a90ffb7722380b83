"""JSON in and out: reading a request body (content type, size, syntax, shape) and writing answers."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from proxy.app_keys import SETTINGS
from proxy.errors import BodyTimeout, InvalidInput, UnsupportedMediaType
from proxy.surfaces.request_bodies import structure

T = TypeVar("T")


async def read_json(request: web.Request) -> Any:
    # A missing Content-Type is taken as JSON (some plain HTTP clients omit it); a
    # different one is refused, since the body was then meant as something else.
    given = request.headers.get(hdrs.CONTENT_TYPE)
    # The usual header is taken as it is; any other is parsed (parameters, case) first.
    if given is not None and given != "application/json":
        content_type = request.content_type
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise UnsupportedMediaType(f"expected Content-Type: application/json, got {content_type}")
    raw = await _read_body(request)
    if not raw.strip():
        raise InvalidInput("the request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None


async def _read_body(request: web.Request) -> bytes:
    """The whole body; over client_max_size, aiohttp raises 413 (rendered by the edge)."""
    try:
        if request.content.is_eof():
            # Already all here (a small body comes with its headers): nothing to wait for,
            # so no timer to arm and cancel on every request.
            return await request.read()
        within = request.app[SETTINGS].body_timeout
        try:
            # Bounded: a body sent at a trickle would hold its admission slot and its key's
            # concurrency for as long as the client likes.
            async with asyncio.timeout(within):
                return await request.read()
        except TimeoutError:
            raise BodyTimeout(f"the request body did not arrive within {within:g} s (PROXY_BODY_TIMEOUT)") from None
    except (web.RequestPayloadError, HttpProcessingError) as exc:  # e.g. a body cut short
        raise InvalidInput(f"the request body could not be read: {' '.join(str(exc).split())}") from None


async def read_body(request: web.Request, cls: type[T]) -> T:
    return structure(await read_json(request), cls)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")

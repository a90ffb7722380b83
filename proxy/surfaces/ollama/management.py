"""Model management in Ollama's API, for admin keys only: POST /api/pull, /api/push,
/api/create, /api/copy, DELETE /api/delete, HEAD and POST /api/blobs/{digest}.

Each request goes, as the client sent it, to one Ollama backend: the first configured, or
the one an `X-Gateway-Backend` header names ("ollama-2"). Its answer comes back as Ollama
sent it, status included, each chunk written as it arrives, so a pull's progress lines
reach the client one by one. JSON bodies are held to PROXY_MAX_BODY_BYTES like every other;
a blob (a model file, gigabytes) is streamed to Ollama as it arrives, up to
PROXY_OLLAMA_BLOB_MAX_BYTES. Any other key gets a 403 and nothing is sent upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from attrs import define

from proxy.app_keys import SETTINGS
from proxy.errors import Forbidden, PayloadTooLarge, UpstreamError
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import read_json
from proxy.surfaces.ollama.ndjson_relay import PROVIDER_HEADER

BACKEND_HEADER = "X-Gateway-Backend"


async def manage(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)
    if not (caller.tenant.admin or request.app[SETTINGS].auth_disabled):
        raise Forbidden(f"key {caller.tenant.name!r} may not manage models (admin = true in the keys file)")
    data: bytes | AsyncIterator[bytes] | None = None
    content_type: str | None = None
    capped: _Capped | None = None
    if request.path.startswith("/api/blobs/"):
        if request.method == "POST":
            limit = request.app[SETTINGS].ollama_blob_max_bytes
            if request.content_length is not None and request.content_length > limit:
                raise _too_large(limit)
            capped = _Capped(request, limit)
            data, content_type = capped.chunks(), "application/octet-stream"
    elif request.can_read_body:
        await read_json(request)  # checked as JSON, within the body limit, before anything is sent
        data, content_type = await request.read(), "application/json"
    try:
        return await _relay(request, data, content_type)
    except UpstreamError:
        if capped is not None and capped.exceeded:  # the upload was cut by the limit, not by Ollama
            raise _too_large(capped.limit) from None
        raise


async def _relay(request: web.Request, data: bytes | AsyncIterator[bytes] | None,
                 content_type: str | None) -> web.StreamResponse:
    response = web.StreamResponse()
    async with service_of(request).manage(caller_of(request), "ollama", request.headers.get(BACKEND_HEADER),
                                          request.method, request.path, data, content_type) as relayed:
        response.set_status(relayed.status)
        if relayed.content_type:
            response.headers["Content-Type"] = relayed.content_type
        response.headers[PROVIDER_HEADER] = "ollama"
        await response.prepare(request)
        async for chunk in relayed.chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


@define
class _Capped:
    """The request body as it arrives; a body that passes the limit (one sent without a
    Content-Length) is cut there, so Ollama never receives the whole of it."""

    request: web.Request
    limit: int
    exceeded: bool = False

    async def chunks(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self.request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > self.limit:
                self.exceeded = True
                raise _too_large(self.limit)
            yield chunk


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"a blob may be at most {limit} bytes (PROXY_OLLAMA_BLOB_MAX_BYTES)")

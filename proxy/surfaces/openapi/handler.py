"""GET /api/v1/openapi.json: the description, rendered once when the app is built."""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.settings.config import Settings
from proxy.surfaces.openapi.document import openapi_document

OPENAPI_DOCUMENT = web.AppKey("OPENAPI_DOCUMENT", bytes)


def render(settings: Settings) -> bytes:
    return orjson.dumps(openapi_document(settings))


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_DOCUMENT], content_type="application/json")

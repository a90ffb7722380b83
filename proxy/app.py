"""The application factory: routes, middlewares, and the lifecycle of what the app owns."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from proxy.backends.registry import BackendRegistry
from proxy.config import Settings
from proxy.handlers.batch import batch
from proxy.handlers.embeddings import embeddings
from proxy.handlers.health import health
from proxy.handlers.inference import inference
from proxy.handlers.stream import stream
from proxy.middlewares import BearerAuth, add_context_headers, middlewares
from proxy.routing import Router
from proxy.state import REGISTRY, ROUTER, SETTINGS


async def backends_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open every backend's session at start-up; close them all at shutdown."""
    registry = BackendRegistry.from_settings(app[SETTINGS])
    app[REGISTRY] = registry
    app[ROUTER] = Router(backends=registry.backends)
    try:
        yield
    finally:
        await registry.aclose()


def create_app(settings: Settings) -> web.Application:
    auth = None if settings.auth_disabled else BearerAuth.from_tokens(settings.api_tokens)
    app = web.Application(middlewares=middlewares(auth), client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(backends_ctx)
    app.on_response_prepare.append(add_context_headers)
    app.router.add_post("/api/v1/inference", inference)
    app.router.add_post("/api/v1/inference/stream", stream)
    app.router.add_post("/api/v1/inference/batch", batch)
    app.router.add_post("/api/v1/embeddings", embeddings)
    app.router.add_get("/api/v1/inference/health", health)
    app.router.add_get("/api/v1/health", health)
    return app

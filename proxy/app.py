"""The application factory: routes, middlewares, and the lifecycle of what the app owns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.app_keys import (
    ADMISSION,
    ANSWERS,
    CATALOG,
    DRAIN,
    KEYS,
    LIMITER,
    REGISTRY,
    ROUTER,
    ROUTES,
    SERVICE,
    SETTINGS,
)
from proxy.backends.registry import BackendRegistry, ModelCatalog, backend_names
from proxy.background import running
from proxy.cache.answers import AnswerCache
from proxy.edge.admission import Admission
from proxy.edge.auth import BearerAuth
from proxy.edge.chain import middlewares
from proxy.edge.context import add_context_headers
from proxy.edge.cors import enable_cors
from proxy.edge.error_rendering import ErrorRendering
from proxy.edge.request_guard import RequestGuard
from proxy.edge.tracing import Tracing
from proxy.fleet.link import RedisLink
from proxy.fleet.shared_breakers import SharedBreakers
from proxy.serving.drain import Drain
from proxy.serving.model_table import Routes
from proxy.serving.router import Router
from proxy.serving.service import Service
from proxy.settings.config import Settings
from proxy.surfaces.octomil.admin import usage
from proxy.surfaces.octomil.batch import batch
from proxy.surfaces.octomil.embeddings import embeddings
from proxy.surfaces.octomil.health import health
from proxy.surfaces.octomil.inference import inference
from proxy.surfaces.octomil.models import models
from proxy.surfaces.octomil.stream import stream
from proxy.surfaces.ollama import generation as ollama_generation
from proxy.surfaces.ollama import listing as ollama_listing
from proxy.surfaces.ollama.errors import PATHS as OLLAMA_PATHS
from proxy.surfaces.ollama.errors import ollama_error
from proxy.surfaces.ollama.management import manage as ollama_manage
from proxy.surfaces.openai.chat import chat_completions
from proxy.surfaces.openai.completions import completions
from proxy.surfaces.openai.embeddings_and_models import embeddings_v1, model_v1, models_v1
from proxy.surfaces.openai.errors import openai_error
from proxy.surfaces.openai.responses import responses
from proxy.surfaces.openapi.handler import OPENAPI_DOCUMENT, openapi
from proxy.surfaces.openapi.handler import render as render_openapi
from proxy.surfaces.operations.metrics import backend_gauges_ctx, metrics
from proxy.surfaces.operations.probes import livez, readyz
from proxy.surfaces.playground.page import add_playground
from proxy.tenants.keyring import KeyRing
from proxy.tenants.limiter import Limiter

# Above the 60 s for which nginx (deploy/nginx.conf) keeps idle connections to the gateway,
# so that nginx is always the one to close them (no request sent on a closing connection).
IDLE_CLIENT_KEEPALIVE = 75.0


async def backends_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open every backend's session at start-up; close them all at shutdown."""
    registry = BackendRegistry.from_settings(app[SETTINGS])
    app[REGISTRY] = registry
    app[ROUTER] = Router.from_tiers(registry.tiers, app[SETTINGS])
    app[CATALOG] = ModelCatalog(registry)
    try:
        yield
    finally:
        await registry.aclose()


async def routes_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reload the routing table when its file changes; the task is cancelled at shutdown."""
    settings = app[SETTINGS]
    routes = app[ROUTES]
    jobs = [] if routes.path is None else [routes.watch(backend_names(settings), settings.routes_reload)]
    async with running(*jobs):
        yield


async def keys_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reload the keys file when it changes (SIGHUP reloads it at once, see __main__)."""
    keys = app[KEYS]
    jobs = [] if keys.path is None else [keys.watch(app[SETTINGS].keys_reload)]
    async with running(*jobs):
        yield


async def fleet_ctx(app: web.Application) -> AsyncIterator[None]:
    """The limiter, and with PROXY_REDIS_URL the link to Redis and what runs over it: the
    heartbeat, lease renewal, usage flushes and shared backend cooldowns. Start-up does
    not wait for Redis: a gateway whose Redis is down serves under the failure policy."""
    settings = app[SETTINGS]
    link = RedisLink.from_settings(settings) if settings.redis_url else None
    limiter = app[LIMITER] = Limiter.from_settings(settings, link)
    # The answer cache: in Redis with the fleet (shared by every replica), else in memory.
    app[ANSWERS] = AnswerCache.from_settings(settings, link)
    jobs = []
    if link is not None:
        await link.beat()
        breakers = {member.backend.name: member.breaker for member in app[ROUTER].members}
        shared = SharedBreakers.attach(link, breakers)
        jobs = [link.maintain(), limiter.keep_leases(), limiter.usage.run(), shared.run()]
    try:
        async with running(*jobs):
            yield
    finally:
        await limiter.aclose()
        if link is not None:
            await link.aclose()


async def service_ctx(app: web.Application) -> AsyncIterator[None]:
    """The serving layer every handler calls, over what the contexts before it built."""
    app[SERVICE] = Service(model_table=app[ROUTES], limiter=app[LIMITER], router=app[ROUTER], drain=app[DRAIN],
                           answers=app[ANSWERS])
    yield


async def drain_streams(app: web.Application) -> None:
    """on_shutdown: runs after the listening sockets closed, before handlers are cancelled."""
    await app[DRAIN].drain()


def add_ollama_routes(app: web.Application) -> None:
    """Ollama's API at its own paths (beside /api/v1, which is the contract's)."""
    app.router.add_post("/api/chat", ollama_generation.chat)
    app.router.add_post("/api/generate", ollama_generation.generate)
    app.router.add_post("/api/embed", ollama_generation.embed)
    app.router.add_post("/api/embeddings", ollama_generation.embeddings)
    app.router.add_get("/api/tags", ollama_listing.tags)
    app.router.add_get("/api/ps", ollama_listing.ps)
    app.router.add_post("/api/show", ollama_listing.show)
    app.router.add_get("/api/version", ollama_listing.version)
    # Unauthenticated, like /livez: clients probe it to see that an Ollama API is there.
    app.router.add_get("/", ollama_listing.root)
    for path in ("/api/pull", "/api/push", "/api/create", "/api/copy"):
        app.router.add_post(path, ollama_manage)
    app.router.add_delete("/api/delete", ollama_manage)
    app.router.add_route("HEAD", "/api/blobs/{digest}", ollama_manage)
    app.router.add_post("/api/blobs/{digest}", ollama_manage)


def create_app(settings: Settings) -> web.Application:
    # Read and checked here, so a bad keys file stops start-up (KeysError).
    keys = KeyRing.load(settings.keys_file, settings.api_tokens)
    auth = None
    if not settings.auth_disabled:
        auth = BearerAuth(keys, open_preflights=bool(settings.cors_origins))
    admission = Admission(limit=settings.max_in_flight, queue_timeout=settings.queue_timeout)
    guard = RequestGuard.configured(host=settings.host, auth_disabled=settings.auth_disabled,
                                    cors_origins=settings.cors_origins, allowed_hosts=settings.allowed_hosts)
    # OpenTelemetry traces only when configured: otherwise no span is begun and no SDK loaded at all.
    tracing = Tracing.from_config(settings.tracing) if settings.tracing else None
    app = web.Application(
        # Each surface answers errors in its own shape; paths of no such surface get the contract's.
        middlewares=middlewares(auth, admission, ErrorRendering(shapes=(
            ("/v1/", openai_error), *((path, ollama_error) for path in OLLAMA_PATHS))), guard,
            trace=tracing),
        client_max_size=settings.max_body_bytes,
        # Request bodies are never inflated (a compressed one is refused: edge/request_guard.py).
        # An idle client connection is closed after IDLE_CLIENT_KEEPALIVE seconds, not
        # aiohttp's hour: each one holds a descriptor (docs/security.md, sizing).
        handler_args={"auto_decompress": False, "keepalive_timeout": IDLE_CLIENT_KEEPALIVE},
    )
    if tracing is not None:
        app.on_cleanup.append(lambda _app: asyncio.to_thread(tracing.shutdown))
    app[SETTINGS] = settings
    app[ADMISSION] = admission
    app[DRAIN] = Drain(grace=settings.shutdown_grace)
    app[KEYS] = keys
    # Read and checked here, so a bad routing file stops start-up (RoutesError).
    app[ROUTES] = Routes.load(settings.routes_file, backend_names(settings))
    app.cleanup_ctx.append(backends_ctx)
    app.cleanup_ctx.append(routes_watch_ctx)
    app.cleanup_ctx.append(backend_gauges_ctx)
    app.cleanup_ctx.append(keys_watch_ctx)
    app.cleanup_ctx.append(fleet_ctx)
    app.cleanup_ctx.append(service_ctx)
    app.on_shutdown.append(drain_streams)
    app.on_response_prepare.append(add_context_headers)
    app.router.add_post("/api/v1/inference", inference)
    app.router.add_post("/api/v1/inference/stream", stream)
    app.router.add_post("/api/v1/inference/batch", batch)
    app.router.add_post("/api/v1/embeddings", embeddings)
    app.router.add_get("/api/v1/inference/health", health)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/models", models)
    app.router.add_get("/api/v1/admin/usage", usage)
    app[OPENAPI_DOCUMENT] = render_openapi(settings)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1/embeddings", embeddings_v1)
    app.router.add_get("/v1/models", models_v1)
    app.router.add_get("/v1/models/{model:.+}", model_v1)
    add_ollama_routes(app)
    app.router.add_get("/metrics", metrics)
    # Outside /api/v1 and /v1, so bearer auth does not apply: probes carry no token.
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    if settings.playground:
        add_playground(app)
    # Last, after every route: CORS covers each route under /api/v1/ and /v1/ added above.
    enable_cors(app, settings.cors_origins, settings.cors_max_age)
    return app

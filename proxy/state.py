"""Typed keys for what the app owns: set in `create_app` (settings, admission, drain, keys) and in
`app.backends_ctx` (registry, router) and `app.fleet_ctx` (limiter), which also tear them down."""

from aiohttp import web

from proxy.admission import Admission
from proxy.backends.registry import BackendRegistry, ModelCatalog
from proxy.config import Settings
from proxy.draining import Drain
from proxy.limits.limiter import Limiter
from proxy.routes import Routes
from proxy.routing import Router
from proxy.serving.service import Service
from proxy.tenants import KeyRing

SETTINGS = web.AppKey("SETTINGS", Settings)
REGISTRY = web.AppKey("REGISTRY", BackendRegistry)
ROUTER = web.AppKey("ROUTER", Router)
DRAIN = web.AppKey("DRAIN", Drain)
ADMISSION = web.AppKey("ADMISSION", Admission)
ROUTES = web.AppKey("ROUTES", Routes)
CATALOG = web.AppKey("CATALOG", ModelCatalog)
KEYS = web.AppKey("KEYS", KeyRing)
LIMITER = web.AppKey("LIMITER", Limiter)
SERVICE = web.AppKey("SERVICE", Service)

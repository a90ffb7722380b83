"""Typed keys for what the app owns: set in `create_app` (settings, admission, drain) and in
`app.backends_ctx` (registry, router), which also tears the backends down."""

from aiohttp import web

from proxy.admission import Admission
from proxy.backends.registry import BackendRegistry, ModelCatalog
from proxy.config import Settings
from proxy.draining import Drain
from proxy.routes import Routes
from proxy.routing import Router

SETTINGS = web.AppKey("SETTINGS", Settings)
REGISTRY = web.AppKey("REGISTRY", BackendRegistry)
ROUTER = web.AppKey("ROUTER", Router)
DRAIN = web.AppKey("DRAIN", Drain)
ADMISSION = web.AppKey("ADMISSION", Admission)
ROUTES = web.AppKey("ROUTES", Routes)
CATALOG = web.AppKey("CATALOG", ModelCatalog)

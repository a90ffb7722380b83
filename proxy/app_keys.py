"""Typed keys for what the app owns: set in `create_app` (settings, admission, drain, keys) and in
`app.backends_ctx` (registry, router) and `app.fleet_ctx` (limiter), which also tear them down."""

from aiohttp import web

from proxy.backends.registry import BackendRegistry, ModelCatalog
from proxy.cache.answers import AnswerCache
from proxy.edge.admission import Admission
from proxy.serving.drain import Drain
from proxy.serving.model_table import Routes
from proxy.serving.router import Router
from proxy.serving.service import Service
from proxy.settings.config import Settings
from proxy.tenants.keyring import KeyRing
from proxy.tenants.limiter import Limiter

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
ANSWERS = web.AppKey("ANSWERS", AnswerCache)

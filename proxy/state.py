"""Typed keys for what the app owns; set up and torn down in `app.backends_ctx`."""

from aiohttp import web

from proxy.admission import Admission
from proxy.backends.registry import BackendRegistry
from proxy.config import Settings
from proxy.draining import Drain
from proxy.routing import Router

SETTINGS = web.AppKey("SETTINGS", Settings)
REGISTRY = web.AppKey("REGISTRY", BackendRegistry)
ROUTER = web.AppKey("ROUTER", Router)
DRAIN = web.AppKey("DRAIN", Drain)
ADMISSION = web.AppKey("ADMISSION", Admission)

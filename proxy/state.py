"""Typed keys for what the app owns; set up and torn down in `app.backends_ctx`."""

from aiohttp import web

from proxy.backends.registry import BackendRegistry
from proxy.config import Settings
from proxy.routing import Router

SETTINGS = web.AppKey("SETTINGS", Settings)
REGISTRY = web.AppKey("REGISTRY", BackendRegistry)
ROUTER = web.AppKey("ROUTER", Router)

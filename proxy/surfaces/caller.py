"""The one bridge from an HTTP request to the serving layer: who asks, under which id."""

from __future__ import annotations

from aiohttp import web

from proxy.app_keys import SERVICE
from proxy.edge.request_keys import OUTCOME, REQUEST_ID, tenant_of
from proxy.serving.service import Caller, Service


def caller_of(request: web.Request) -> Caller:
    return Caller(tenant=tenant_of(request), request_id=request[REQUEST_ID], outcome=request[OUTCOME])


def service_of(request: web.Request) -> Service:
    return request.app[SERVICE]

"""The one bridge from an HTTP request to the serving layer: who asks, under which id."""

from __future__ import annotations

from aiohttp import web

from proxy.app_keys import SERVICE
from proxy.cache.policy import REQUEST_HEADER, asked
from proxy.edge.request_keys import OUTCOME, REQUEST_ID, tenant_of
from proxy.serving.service import Caller, Service


def caller_of(request: web.Request) -> Caller:
    """The caller, with what its headers ask of the serving layer: the answer cache
    (`X-Gateway-Cache`, a 400 naming the header when it is neither `use` nor `skip`) and the
    W3C trace context to pass on to the upstreams."""
    headers = request.headers
    return Caller(
        tenant=tenant_of(request), request_id=request[REQUEST_ID], outcome=request[OUTCOME],
        cache_wish=asked(headers.get(REQUEST_HEADER)),
        traceparent=headers.get("traceparent"), tracestate=headers.get("tracestate"),
    )


def service_of(request: web.Request) -> Service:
    return request.app[SERVICE]

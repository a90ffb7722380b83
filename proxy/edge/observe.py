"""Counts every request in the metrics once it ends: the edge (chain.py) calls `record_outcome`
just inside the request context, so it sees every request with its id and every error as
rendered."""

from __future__ import annotations

import time

from aiohttp import web

from proxy.edge.request_keys import OUTCOME, STARTED, tenant_of
from proxy.observability.metrics import record_request

# A client that hung up before its answer was complete (nginx's convention).
CLIENT_CLOSED = 499


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def record_outcome(request: web.Request, status: int) -> None:
    """Requests in flight are not counted here but read from admission, which counts them
    anyway (surfaces/operations/metrics.py sets the gauge every second and at each scrape)."""
    outcome = request[OUTCOME]
    started = request[STARTED]
    record_request(
        route_template(request), request.method, status, outcome.provider,
        duration=time.perf_counter() - started,
        first_token_after=None if outcome.first_token_at is None else outcome.first_token_at - started,
        model=outcome.model, tokens=outcome.tokens, key=tenant_of(request).name,
    )

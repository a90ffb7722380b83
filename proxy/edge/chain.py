"""The edge: every request's steps before and after its surface, in one fixed order.

The context is set first so that every error, including a 401, carries a request id; the
metrics (and, while tracing is on, the request's span) see every request with its context
and every error as rendered; the request guard refuses what must be refused before auth
and before any body is read (request_guard.py); errors wrap the guard and auth so a refusal
is rendered like any other error; admission comes last, so only authenticated requests take
a place in flight.

The steps run in one aiohttp middleware rather than one each (tracing's span too, begun
and ended around the rest rather than as a layer of its own): every layer of aiohttp's
chain costs a coroutine, a call through its plumbing and a frame per request, and five
layers were a measurable share of the gateway's CPU (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from proxy.edge.admission import Admission
from proxy.edge.auth import BearerAuth
from proxy.edge.context import begin_request
from proxy.edge.error_rendering import ErrorRendering, rendered
from proxy.edge.observe import CLIENT_CLOSED, record_outcome
from proxy.edge.request_guard import RequestGuard
from proxy.edge.request_keys import Handler

if TYPE_CHECKING:
    from proxy.edge.tracing import Tracing


def middlewares(
    auth: BearerAuth | None, admission: Admission, errors: ErrorRendering, guard: RequestGuard | None = None,
    trace: Tracing | None = None,
) -> list[Middleware]:
    """`trace` (the request's span, edge/tracing.py) is there only while tracing is on."""

    async def served(request: web.Request, handler: Handler) -> web.StreamResponse:
        """The guard, auth and admission around the handler, with any error rendered."""
        try:
            if guard is not None:
                guard.check(request)
            if auth is not None:
                auth.check(request)
            return await admission.admitted(request, handler)
        except Exception as exc:  # noqa: BLE001 (rendered: an unexpected one is logged with its traceback)
            return rendered(exc, request, errors)

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        begin_request(request)
        traced = trace.begin(request) if trace is not None else None
        status = CLIENT_CLOSED  # unless an answer is returned: the client went away
        try:
            response = await served(request, handler)
            status = response.status
            return response
        finally:
            if trace is not None and traced is not None:
                trace.end(traced, request, status)
            record_outcome(request, status)

    return [edge]

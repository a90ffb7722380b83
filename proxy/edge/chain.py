"""The edge: every request's steps before and after its surface, in one fixed order.

The context is set first so that every error, including a 401, carries a request id; the
metrics see every request with its context and every error as rendered; errors wrap auth
so a refused token is rendered like any other error; admission comes last, so only
authenticated requests take a place in flight.

The steps run in one aiohttp middleware rather than one each: every layer of aiohttp's
chain costs a coroutine, a call through its plumbing and a frame per request, and five
layers were a measurable share of the gateway's CPU (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from proxy.edge.admission import Admission
from proxy.edge.auth import BearerAuth
from proxy.edge.context import begin_request
from proxy.edge.error_rendering import ErrorRendering, rendered
from proxy.edge.observe import CLIENT_CLOSED, record_outcome
from proxy.edge.request_keys import Handler


def middlewares(auth: BearerAuth | None, admission: Admission, errors: ErrorRendering) -> list[Middleware]:
    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        begin_request(request)
        status = CLIENT_CLOSED  # unless an answer is returned: the client went away
        try:
            try:
                if auth is not None:
                    auth.check(request)
                response = await _admitted(request, handler, admission)
            except Exception as exc:  # noqa: BLE001 (rendered: an unexpected one is logged with its traceback)
                response = rendered(exc, request, errors)
            status = response.status
            return response
        finally:
            record_outcome(request, status)

    return [edge]


async def _admitted(request: web.Request, handler: Handler, admission: Admission) -> web.StreamResponse:
    """Inference (POST) requests take a place in flight; reads do not, so that health and
    metrics answer under load."""
    if request.method != "POST":
        return await handler(request)
    await admission.enter()
    try:
        return await handler(request)
    finally:
        admission.leave()

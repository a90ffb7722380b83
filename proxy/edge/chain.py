"""The middleware chain, in its one fixed order.

The context is set first so that every error, including a 401, carries a request id; the
metrics see every request with its context and every error as rendered; errors wrap auth
so a refused token is rendered like any other error; the request guard refuses what must
be refused before auth (request_guard.py); admission comes last, so only authenticated
requests take a place in flight.
"""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from proxy.edge.admission import Admission
from proxy.edge.auth import BearerAuth
from proxy.edge.context import request_context
from proxy.edge.error_rendering import ErrorRendering
from proxy.edge.observe import observe
from proxy.edge.request_guard import RequestGuard


def middlewares(
    auth: BearerAuth | None, admission: Admission, errors: ErrorRendering, guard: RequestGuard | None = None,
    trace: Middleware | None = None,
) -> list[Middleware]:
    """`trace` (the request's span, edge/tracing.py) is there only while tracing is on; it
    sits beside the metrics, seeing every request with its id and every error as rendered."""
    chain: list[Middleware] = [request_context, *([trace] if trace else []), observe, errors.middleware]
    if guard is not None:
        chain.append(guard.middleware)
    if auth is not None:
        chain.append(auth.middleware)
    chain.append(admission.middleware)
    return chain

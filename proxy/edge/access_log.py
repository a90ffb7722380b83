"""One access-log record per request, written when its response has ended (for a stream,
after the last event): who asked, what for, who served it, how long, how many tokens.

Never the query string, headers or body: they can carry tokens and prompts. The path is
kept (capped) since a route template alone hides which model an OpenAI client retrieved.
The caller is named by its key's name in the keys file (`default` for PROXY_API_TOKENS),
never by its secret.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from proxy.edge.observe import route_template
from proxy.edge.request_keys import OUTCOME, REQUEST_ID, STARTED, TENANT, elapsed_ms
from proxy.observability import logs

_MAX_LOGGED_PATH = 200
# Liveness and readiness probes come every few seconds from the orchestrator: a line each
# would drown the requests. They are still counted in the metrics.
_UNLOGGED_PATHS = frozenset({"/livez", "/readyz"})


class AccessLogger(AbstractAccessLogger):
    @property
    def enabled(self) -> bool:
        # aiohttp skips log() entirely when this is false: nothing is formatted for nothing.
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not isinstance(request, web.Request) or STARTED not in request or request.path in _UNLOGGED_PATHS:
            return
        outcome = request[OUTCOME]
        first_token_ms = None
        if outcome.first_token_at is not None:
            first_token_ms = round((outcome.first_token_at - request[STARTED]) * 1000, 3)
        logs.access(self.logger, {
            "event": "access",
            "request_id": request[REQUEST_ID],
            "method": request.method,
            "key": request[TENANT].name if TENANT in request else None,
            "route": route_template(request),
            "path": request.path[:_MAX_LOGGED_PATH],
            "status": response.status,
            "provider": outcome.provider,
            "model": outcome.model,
            "latency_ms": elapsed_ms(request),
            "ttft_ms": first_token_ms,
            "tokens_in": outcome.tokens_in,
            "tokens_out": outcome.tokens_out,
            **({"features": ",".join(outcome.features)} if outcome.features else {}),
        })

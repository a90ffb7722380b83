"""One access-log line per request: id, method, path, status, key name, provider, latency.

Never the query string, headers or body: they can carry tokens and prompts. The key is
named by its name in the keys file (`default` for PROXY_API_TOKENS), never its secret.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from proxy.middlewares import PROVIDER, REQUEST_ID, STARTED, TENANT, elapsed_ms


class AccessLogger(AbstractAccessLogger):
    @property
    def enabled(self) -> bool:
        # aiohttp skips log() entirely when this is false: nothing is formatted for nothing.
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not isinstance(request, web.Request) or STARTED not in request:
            return
        self.logger.info(
            "request_id=%s method=%s path=%s status=%s key=%s provider=%s latency_ms=%s",
            request[REQUEST_ID],
            request.method,
            request.path,
            response.status,
            request[TENANT].name if TENANT in request else "-",
            request.get(PROVIDER, "-"),
            elapsed_ms(request),
        )

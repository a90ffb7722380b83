"""Request context: every request gets an id (the client's, if plain) and a start time
before anything else runs, so every answer and log line, errors included, can name it."""

from __future__ import annotations

import itertools
import re
import secrets
import time

from aiohttp import web

from proxy.edge.request_keys import OUTCOME, REQUEST_ID, STARTED, elapsed_ms
from proxy.serving.outcome import Outcome

# A client's X-Request-ID is echoed only if it is short and plain: it goes into logs.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


_REQUEST_IDS = itertools.count(1)
# Random per process, so ids from several workers or restarts do not collide; a counter
# after it, since a fresh uuid4 per request costs more than the rest of this middleware.
_PROCESS_PREFIX = secrets.token_hex(6)


def _new_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_REQUEST_IDS):010x}"


def begin_request(request: web.Request) -> None:
    """The first step of the edge (chain.py): the request's start time, outcome and id."""
    request[STARTED] = time.perf_counter()
    request[OUTCOME] = Outcome()
    offered = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = offered if offered and _CLIENT_REQUEST_ID.fullmatch(offered) else _new_request_id()


async def add_context_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs as headers go out, for plain and streamed responses alike.

    For a JSON answer Server-Timing is the whole request; for a stream it is the time
    until the first token, since that is when the headers are sent.
    """
    if STARTED in request:
        response.headers["Server-Timing"] = f"total;dur={elapsed_ms(request)}"
        response.headers["X-Request-ID"] = request[REQUEST_ID]
        cache = request[OUTCOME].cache
        if cache is not None:  # the answer cache applied: say whether this answer came from it
            response.headers["X-Gateway-Cache"] = cache

"""Relaying a stream to an Ollama client as NDJSON (`application/x-ndjson`, one JSON object a line).

As on the other surfaces, the response starts (status 200) only once a backend produced its
first line; until then a failure moves to the next backend, or ends as a plain JSON error
with its real status. From an Ollama backend every line goes out as it arrived, one write
each; from another backend each token is written as Ollama would have written it
(answers.OllamaLines). A stream cut after its start ends with an `{"error": "..."}` line,
the way Ollama ends its own, and the `ollama` client raises it as a ResponseError.
"""

from __future__ import annotations

import logging

from aiohttp import web

from proxy.edge.request_keys import OUTCOME, REQUEST_ID
from proxy.errors import GatewayError, ShuttingDown, UpstreamError
from proxy.llm import NativeItem, NativeLine, NativeRequest, stream_end
from proxy.serving.service import ServedStream
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.ollama.answers import OllamaLines
from proxy.surfaces.ollama.errors import error_line

log = logging.getLogger("proxy")

PROVIDER_HEADER = "X-Gateway-Provider"
NDJSON = "application/x-ndjson"


async def relay_ndjson(request: web.Request, native: NativeRequest, lines: OllamaLines) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    served: ServedStream[NativeItem] | None = None
    try:
        async with service_of(request).native_stream(caller_of(request), native) as served:
            response.headers[PROVIDER_HEADER] = served.provider
            await response.prepare(request)
            await _relay_items(request, response, served, lines)
            await response.write_eof()
    except TimeoutError:
        if served is None or not served.cut_by_shutdown():
            raise
        if not response.prepared:
            raise ShuttingDown("the gateway is shutting down") from None
        await response.write(error_line(ShuttingDown("the gateway is shutting down; the answer was cut")))
    except ConnectionResetError:
        log.info("client went away mid-stream request_id=%s", request[REQUEST_ID])
    return response


async def _relay_items(
    request: web.Request, response: web.StreamResponse, served: ServedStream[NativeItem], lines: OllamaLines,
) -> None:
    outcome = request[OUTCOME]
    try:
        async for item in served.items:
            if line := _line(item, lines):
                await response.write(line)
            if stream_end(item) is not None:
                return
            outcome.first_token_sent()
    except UpstreamError as exc:  # counted by the serving layer
        failure: GatewayError = exc
    except (ConnectionResetError, TimeoutError):
        raise  # the client is gone, or the drain's cut: handled by the caller
    except Exception:
        log.exception("stream relay failed request_id=%s", request[REQUEST_ID])
        failure = GatewayError("internal error while streaming; the request id is in the server log")
    # The code only: an upstream's message may quote the prompt or the output.
    log.warning("stream cut after its start request_id=%s backend=%s code=%s", request[REQUEST_ID],
                served.backend_name, failure.code)
    await response.write(error_line(failure))


def _line(item: NativeItem, lines: OllamaLines) -> bytes:
    if isinstance(item, NativeLine):
        return item.data
    return lines.item(item)

"""POST /v1/responses: OpenAI's Responses API on the same backends, fallback, auth and limits
as chat completions, through the same translation: the input items become a normalized
`ChatRequest`, served by `Service.chat` or `Service.stream`, and the answer is rendered as
a `response` object (response_objects.py) or its event stream (response_events.py).
"""

from __future__ import annotations

import time

from aiohttp import web

from proxy.app_keys import SETTINGS
from proxy.edge.request_keys import REQUEST_ID
from proxy.surfaces.caller import caller_of, service_of
from proxy.surfaces.json_io import json_response, read_json
from proxy.surfaces.openai.response_events import ResponseEvents
from proxy.surfaces.openai.response_input import input_messages
from proxy.surfaces.openai.response_models import ResponsesBody, responses_chat_request
from proxy.surfaces.openai.response_objects import ResponseFrame, status_of
from proxy.surfaces.openai.response_tools import tool_problems
from proxy.surfaces.request_bodies import structure
from proxy.surfaces.sse_relay import relay


async def responses(request: web.Request) -> web.StreamResponse:
    raw = await read_json(request)
    messages, problems = input_messages(raw, max_messages=request.app[SETTINGS].max_messages)
    if isinstance(raw, dict):
        problems += tool_problems(raw)
    body = structure(raw, ResponsesBody, also=problems)
    chat = responses_chat_request(body, messages)
    frame = ResponseFrame.for_request(request[REQUEST_ID], int(time.time()), body, chat)
    if body.stream:
        return await relay(request, chat, lambda _provider: ResponseEvents(frame))
    provider, result = await service_of(request).chat(caller_of(request), chat)
    status = status_of(result.finish_reason)
    response = json_response(frame.response(status, frame.output(result, status), usage=result.usage))
    response.headers["X-Gateway-Provider"] = provider
    return response

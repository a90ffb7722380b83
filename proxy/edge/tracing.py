"""The request's SERVER span, opened by a middleware that exists only while tracing is on.

The span takes the caller's W3C trace context as its parent (a sampled caller is traced,
per the default parent-based sampler), is current for everything the request does, and
is ended with what the request came to: status, key, public model, provider, tokens,
finish reasons and the time to first token (read from the request's Outcome, which the
serving code fills in for the access log and the metrics already).
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from attrs import define

from proxy.backends.outbound import caller_trace_context
from proxy.edge.observe import CLIENT_CLOSED, route_template
from proxy.edge.request_keys import OUTCOME, REQUEST_ID, STARTED, TENANT, Handler
from proxy.settings.tracing import TracingConfig
from proxy.tracing.recorder import LiveSpan, Recorder
from proxy.tracing.setup import SpanExport, span_recording
from proxy.tracing.spans import RequestSpan, first_token_event

# The API surfaces are traced; probes, metrics and the playground's files are not.
_TRACED_PREFIXES = ("/api/v1/", "/v1/")


def _version() -> str:
    try:
        return version("octomil-gateway")
    except PackageNotFoundError:
        return "unknown"


@define
class Tracing:
    recorder: Recorder
    export: SpanExport
    capture_content: bool

    @classmethod
    def from_config(cls, config: TracingConfig) -> Tracing:
        recorder, export = span_recording(config, _version())
        return cls(recorder=recorder, export=export, capture_content=config.capture_content)

    def shutdown(self) -> None:
        """Export what is still queued (bounded by the export timeout), then stop."""
        self.export.shutdown()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(_TRACED_PREFIXES) or request.method == "OPTIONS":
            return await handler(request)
        caller = caller_trace_context(request.headers.get("traceparent"), request.headers.get("tracestate"))
        started_ns = time.time_ns()
        route = route_template(request)
        span = self.recorder.server_span(
            f"{request.method} {route}", caller,
            {"http.request.method": request.method, "http.route": route, "gateway.request_id": request[REQUEST_ID]},
            started_ns)
        traced = RequestSpan(span=span, recorder=self.recorder, capture_content=self.capture_content,
                             request_id=request[REQUEST_ID], tracestate=caller.get("tracestate"))
        traced.enter()
        status = CLIENT_CLOSED
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            if span.sampled:  # not sampled: nothing to describe or export
                _finish(span, traced, request, status, started_ns)


def _finish(span: LiveSpan, traced: RequestSpan, request: web.Request, status: int, started_ns: int) -> None:
    outcome = request[OUTCOME]
    attributes = span.attributes
    attributes["http.response.status_code"] = status
    if traced.operation or outcome.model:
        attributes["gen_ai.operation.name"] = traced.operation or _operation(request.path)
    if outcome.model:
        attributes["gen_ai.request.model"] = attributes["gateway.model"] = outcome.model
    if outcome.provider:
        attributes["gen_ai.provider.name"] = outcome.provider
    if traced.response_model:
        attributes["gen_ai.response.model"] = traced.response_model
    if outcome.tokens:
        attributes["gen_ai.usage.input_tokens"] = outcome.tokens_in
        attributes["gen_ai.usage.output_tokens"] = outcome.tokens_out
    if outcome.cache:
        attributes["gateway.cache"] = outcome.cache
    if traced.finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(traced.finish_reasons)
    if TENANT in request:
        attributes["gateway.key.name"] = request[TENANT].name
    if outcome.first_token_at is not None:
        first_token_event(span, started_ns, request[STARTED], outcome.first_token_at)
    if status >= 500:
        span.fail(f"HTTP {status}")
        attributes["error.type"] = str(status)
    span.end()


def _operation(path: str) -> str:
    return "embeddings" if path.endswith("/embeddings") else "chat"

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
from typing import TYPE_CHECKING, Any

from aiohttp import web
from attrs import define

from proxy.backends.outbound import caller_trace_context
from proxy.edge.observe import CLIENT_CLOSED, route_template
from proxy.edge.request_keys import OUTCOME, REQUEST_ID, STARTED, TENANT, Handler
from proxy.settings.tracing import TracingConfig
from proxy.tracing.setup import SCOPE_NAME, tracer_provider
from proxy.tracing.spans import RequestSpan, first_token_event

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

# The API surfaces are traced; probes, metrics and the playground's files are not.
_TRACED_PREFIXES = ("/api/v1/", "/v1/")


def _version() -> str:
    try:
        return version("octomil-gateway")
    except PackageNotFoundError:
        return "unknown"


@define
class Tracing:
    provider: TracerProvider
    tracer: Tracer
    capture_content: bool

    @classmethod
    def from_config(cls, config: TracingConfig) -> Tracing:
        provider = tracer_provider(config, _version())
        return cls(provider=provider, tracer=provider.get_tracer(SCOPE_NAME, _version()),
                   capture_content=config.capture_content)

    def shutdown(self) -> None:
        """Export what is still queued (bounded by the export timeout), then stop."""
        self.provider.shutdown()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(_TRACED_PREFIXES) or request.method == "OPTIONS":
            return await handler(request)
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        caller = caller_trace_context(request.headers.get("traceparent"), request.headers.get("tracestate"))
        parent = TraceContextTextMapPropagator().extract(caller) if caller else None
        started_ns = time.time_ns()
        span = self.tracer.start_span(
            f"{request.method} {route_template(request)}", context=parent, kind=trace.SpanKind.SERVER,
            start_time=started_ns,
            attributes={"http.request.method": request.method, "http.route": route_template(request),
                        "gateway.request_id": request[REQUEST_ID]})
        traced = RequestSpan(span=span, context=trace.set_span_in_context(span), tracer=self.tracer,
                             capture_content=self.capture_content, request_id=request[REQUEST_ID],
                             tracestate=caller.get("tracestate"))
        traced.enter()
        status = CLIENT_CLOSED
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            _finish(span, traced, request, status, started_ns)


def _finish(span: Span, traced: RequestSpan, request: web.Request, status: int, started_ns: int) -> None:
    from opentelemetry.trace import Status, StatusCode

    if not span.is_recording():  # not sampled: nothing to describe
        span.end()
        return
    outcome = request[OUTCOME]
    attributes: dict[str, Any] = {"http.response.status_code": status}
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
    span.set_attributes(attributes)
    if outcome.first_token_at is not None:
        first_token_event(span, started_ns, request[STARTED], outcome.first_token_at)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        span.set_attribute("error.type", str(status))
    span.end()


def _operation(path: str) -> str:
    return "embeddings" if path.endswith("/embeddings") else "chat"

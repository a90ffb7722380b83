"""The request's SERVER span, begun and ended by the edge (edge/chain.py) only while tracing is on.

The span takes the caller's W3C trace context as its parent (a sampled caller is traced,
per the default parent-based sampler), is current for everything the request does, and
is ended with what the request came to: status, key, public model, provider, tokens,
finish reasons and the time to first token (read from the request's Outcome, which the
serving code fills in for the access log and the metrics already). A request the sampler
leaves out gets no span: the sampler is asked first, and such a request only carries its
trace context to the upstream (tracing/spans.py, UnsampledRequest).
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from attrs import define

from proxy.backends.outbound import caller_trace_context
from proxy.edge.observe import route_template
from proxy.edge.request_keys import OUTCOME, REQUEST_ID, STARTED, TENANT
from proxy.settings.tracing import TracingConfig
from proxy.tracing.recorder import LiveSpan, Recorder
from proxy.tracing.setup import SpanExport, span_recording
from proxy.tracing.spans import RequestSpan, UnsampledRequest, first_token_event

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

    def begin(self, request: web.Request) -> RequestSpan | None:
        """The request's span, started; None when there is nothing to end (not traced, or not
        sampled: then only the upstream's trace context is set)."""
        if not request.path.startswith(_TRACED_PREFIXES) or request.method == "OPTIONS":
            return None
        traceparent = request.headers.get("traceparent")
        caller = caller_trace_context(traceparent, request.headers.get("tracestate")) if traceparent else None
        where = self.recorder.trace_of(caller)
        if not where.sampled:  # nothing to record: only the upstream's trace context
            UnsampledRequest(where.trace_id, self.recorder.new_span_id, request[REQUEST_ID],
                             caller.get("tracestate") if caller else None).enter()
            return None
        started_ns = time.time_ns()
        route = route_template(request)
        request_id = request[REQUEST_ID]
        span = self.recorder.server_span_at(
            f"{request.method} {route}", where,
            {"http.request.method": request.method, "http.route": route, "gateway.request_id": request_id},
            started_ns)
        traced = RequestSpan(span=span, recorder=self.recorder, capture_content=self.capture_content,
                             request_id=request_id, tracestate=caller.get("tracestate") if caller else None)
        traced.enter()
        return traced

    @staticmethod
    def end(traced: RequestSpan, request: web.Request, status: int) -> None:
        """The request's span, described by what it came to (`status`: its answer's, or
        499 when the client left) and ended."""
        _finish(traced.span, traced, request, status, traced.span.start_ns)


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
        # Outcome.tokens_in and tokens_out, in one pass: this runs for every sampled request.
        tokens_in = tokens_out = 0
        for counts in outcome.tokens.values():
            tokens_in += counts[0]
            tokens_out += counts[1]
        attributes["gen_ai.usage.input_tokens"] = tokens_in
        attributes["gen_ai.usage.output_tokens"] = tokens_out
    if outcome.cache:
        attributes["gateway.cache"] = outcome.cache
    if traced.finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(traced.finish_reasons)
    tenant = request.get(TENANT)
    if tenant is not None:
        attributes["gateway.key.name"] = tenant.name
    if outcome.first_token_at is not None:
        first_token_event(span, started_ns, request[STARTED], outcome.first_token_at)
    if status >= 500:
        span.fail(f"HTTP {status}")
        attributes["error.type"] = str(status)
    span.end()


def _operation(path: str) -> str:
    return "embeddings" if path.endswith("/embeddings") else "chat"

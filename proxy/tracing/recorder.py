"""Spans as the request path records them: plain objects, ended into a queue as tuples.

The SDK's own Span was most of tracing's cost on the request path (docs/tracing.md, cost):
a lock and a type check per attribute, a copy of the span at its end, a chain of span
processors and the context API around every call. The gateway's spans are few and their
attributes are known (strings, numbers, tuples of strings), so the request path keeps
each span as a small object and, at its end, appends one tuple (tracing/span_wire.py) to
the export queue. From there the official SDK takes over, in the exporter process or
thread: the tuple becomes the SDK's ReadableSpan, and its BatchSpanProcessor and OTLP
exporter encode and send it.

What stays the SDK's own on the request path: the sampler (OTEL_TRACES_SAMPLER, asked once
per request, for the server span), the random trace and span ids, and the W3C trace
context parsing of the caller's `traceparent`. An attempt's span follows the request's
decision: for each sampler the gateway offers (settings/tracing.py), the SDK would decide
the same for a child in the same trace (a sampled local parent, or the same trace id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from proxy.tracing.span_wire import WireSpan

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.sdk.trace.sampling import Sampler

# The values of the OpenTelemetry API's SpanKind and StatusCode enums, which the wire carries.
SERVER, CLIENT = 1, 2
_UNSET, _ERROR = 0, 2


class LiveSpan:
    """One span being recorded; `end` hands it to the export queue when it is sampled."""

    __slots__ = ("_end_to", "attributes", "events", "kind", "name", "parent_id", "parent_remote", "sampled",
                 "span_id", "start_ns", "status", "trace_id", "trace_state")

    def __init__(self, name: str, kind: int, trace_id: int, span_id: int, parent_id: int, *, parent_remote: bool,
                 sampled: bool, trace_state: str, attributes: dict[str, Any], start_ns: int,
                 end_to: Callable[[WireSpan], None]) -> None:
        self.name, self.kind, self.trace_id, self.span_id = name, kind, trace_id, span_id
        self.parent_id, self.parent_remote = parent_id, parent_remote
        self.sampled, self.trace_state = sampled, trace_state
        self.attributes, self.start_ns, self._end_to = attributes, start_ns, end_to
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self.status: tuple[int, str | None] = (_UNSET, None)

    @property
    def traceparent(self) -> str:
        """This span as the W3C parent of what it calls."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{'01' if self.sampled else '00'}"

    def add_event(self, name: str, attributes: dict[str, Any] | None = None, timestamp: int | None = None) -> None:
        if self.sampled:
            self.events.append((name, timestamp or time.time_ns(), attributes or {}))

    def fail(self, description: str) -> None:
        self.status = (_ERROR, description)

    def end(self) -> None:
        if self.sampled:
            self._end_to((self.name, self.trace_id, self.span_id, 1, self.trace_state, self.parent_id,
                          self.parent_remote, self.kind, self.start_ns, time.time_ns(), self.attributes,
                          tuple(self.events), *self.status))


class Recorder:
    """Starts the spans of one gateway: the SDK's sampler and ids, its own bookkeeping."""

    def __init__(self, sampler: Sampler, ids: IdGenerator, end_to: Callable[[WireSpan], None]) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace.sampling import Decision
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._sampler = sampler
        self._ids = ids
        self._end_to = end_to
        # Looked up once: this runs for every request.
        self._sampled = Decision.RECORD_AND_SAMPLE
        self._server_kind = trace.SpanKind.SERVER
        self._propagator = TraceContextTextMapPropagator()
        self._span_of = trace.get_current_span

    def server_span(self, name: str, caller: dict[str, str], attributes: dict[str, Any], start_ns: int) -> LiveSpan:
        """The request's span: a child of the caller's (a valid `traceparent`), or a new trace."""
        context = self._propagator.extract(caller) if caller else None
        parent = self._span_of(context).get_span_context() if context is not None else None
        if parent is not None and not parent.is_valid:
            context = parent = None
        trace_id = parent.trace_id if parent is not None else self._ids.generate_trace_id()
        decision = self._sampler.should_sample(context, trace_id, name, self._server_kind, attributes)
        if decision.attributes:
            attributes.update(decision.attributes)
        return LiveSpan(name, SERVER, trace_id, self._ids.generate_span_id(),
                        parent.span_id if parent is not None else 0, parent_remote=parent is not None,
                        sampled=decision.decision is self._sampled,
                        trace_state=decision.trace_state.to_header() if decision.trace_state else "",
                        attributes=attributes, start_ns=start_ns, end_to=self._end_to)

    def child_span(self, parent: LiveSpan, name: str, attributes: dict[str, Any]) -> LiveSpan:
        """A CLIENT span under `parent`, sampled as it is (see the module's doc)."""
        return LiveSpan(name, CLIENT, parent.trace_id, self._ids.generate_span_id(), parent.span_id,
                        parent_remote=False, sampled=parent.sampled, trace_state=parent.trace_state,
                        attributes=attributes, start_ns=time.time_ns(), end_to=self._end_to)

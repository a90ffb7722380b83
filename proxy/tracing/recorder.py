"""Spans as the request path records them: plain objects, ended into a queue as tuples.

The SDK's own Span was most of tracing's cost on the request path (docs/tracing.md, cost):
a lock and a type check per attribute, a copy of the span at its end, a chain of span
processors and the context API around every call. The gateway's spans are few and their
attributes are known (strings, numbers, tuples of strings), so the request path keeps
each span as a small object and, at its end, appends one tuple (tracing/span_wire.py) to
the export queue. From there, in the exporter process or the queue's thread, it is encoded
as OTLP protobuf (tracing/otlp_encoding.py) and sent by the official OTLP exporter's client.

What stays the SDK's own on the request path: the random trace and span ids, and the W3C
trace context parsing of a caller's `traceparent`. The sampler (OTEL_TRACES_SAMPLER) is the
SDK's object, but for the samplers the gateway offers (settings/tracing.py) its decision is
taken here, in one call (`_deciders`): the SDK's should_sample goes through the context API,
a SamplingResult and the parent's trace state for every request, sampled or not, and most
requests are not sampled at a low ratio. tests/observability/test_otlp_encoding.py checks that
each sampler decides as the SDK's does. An attempt's span follows the request's decision:
for each sampler the gateway offers, the SDK would decide the same for a child in the same
trace (a sampled local parent, or the same trace id).

A request that is not sampled gets no span object at all (`Recorder.trace_of` only): its
trace id (the caller's, or a new one) and, per upstream attempt, a new span id, so the
upstream gets a valid `traceparent` with the sampled flag off, as the SDK's non-recording
spans would give it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, final

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


@final
class TraceOf:
    """Where a request's span sits: its trace, its parent (the caller's span, 0 for none) and
    whether it is sampled. All an unsampled request keeps."""

    __slots__ = ("parent_id", "parent_remote", "sampled", "trace_id", "trace_state")

    def __init__(self, trace_id: int, parent_id: int, *, sampled: bool, trace_state: str) -> None:
        self.trace_id, self.parent_id, self.parent_remote = trace_id, parent_id, parent_id != 0
        self.sampled, self.trace_state = sampled, trace_state


# Decides for a trace id: a new trace's (no caller), and under a caller, given its sampled flag.
Deciders = tuple[Callable[[int], bool], Callable[[int, bool], bool]]


def _deciders(sampler: Sampler) -> Deciders | None:
    """The SDK's decisions for `sampler`, each taken in one call; None for a sampler it does
    not know (the SDK is then asked)."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

    def alone(of: Sampler | None) -> Callable[[int], bool] | None:
        if of is ALWAYS_ON:
            return lambda _trace_id: True
        if of is ALWAYS_OFF:
            return lambda _trace_id: False
        if type(of) is TraceIdRatioBased:
            limit, bound = of.TRACE_ID_LIMIT, of.bound
            return lambda trace_id: trace_id & limit < bound
        return None

    if type(sampler) is ParentBased:
        # A remote parent's flag picks one of these two; the gateway's requests have no local parent.
        root, followed, refused = (alone(getattr(sampler, name, None)) for name in (
            "_root", "_remote_parent_sampled", "_remote_parent_not_sampled"))
        if root is None or followed is None or refused is None:
            return None
        return root, lambda trace_id, caller_sampled: (followed if caller_sampled else refused)(trace_id)
    only = alone(sampler)
    return None if only is None else (only, lambda trace_id, _caller_sampled: only(trace_id))


class Recorder:
    """Starts the spans of one gateway: the SDK's sampler and ids, its own bookkeeping."""

    def __init__(self, sampler: Sampler, ids: IdGenerator, end_to: Callable[[WireSpan], None]) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace.sampling import Decision
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._sampler = sampler
        deciders = _deciders(sampler)
        self._decide_new: Callable[[int], bool] | None = deciders[0] if deciders else None
        self._decide_under: Callable[[int, bool], bool] | None = deciders[1] if deciders else None
        self._end_to = end_to
        # Looked up once: these run for every request.
        self.new_trace_id = ids.generate_trace_id
        self.new_span_id = ids.generate_span_id
        self._sampled = Decision.RECORD_AND_SAMPLE
        self._server_kind = trace.SpanKind.SERVER
        self._propagator = TraceContextTextMapPropagator()
        self._span_of = trace.get_current_span

    def trace_of(self, caller: dict[str, str] | None) -> TraceOf:
        """The request's place in a trace: under the caller's span (a valid `traceparent`), or a
        new trace; sampled or not."""
        if not caller:
            trace_id = self.new_trace_id()
            if self._decide_new is not None:
                return TraceOf(trace_id, 0, sampled=self._decide_new(trace_id), trace_state="")
            return self._asking_the_sdk(None, None, trace_id)
        context = self._propagator.extract(caller)
        parent = self._span_of(context).get_span_context()
        if not parent.is_valid:
            return self.trace_of(None)
        if self._decide_under is not None:
            sampled = self._decide_under(parent.trace_id, parent.trace_flags.sampled)
            state = parent.trace_state.to_header() if sampled and parent.trace_state else ""
            return TraceOf(parent.trace_id, parent.span_id, sampled=sampled, trace_state=state)
        return self._asking_the_sdk(context, parent.span_id, parent.trace_id)

    def _asking_the_sdk(self, context: Any, parent_id: int | None, trace_id: int) -> TraceOf:
        """A sampler `_deciders` does not know: the SDK's should_sample (the span's name, kind
        and attributes are not asked for: no sampler the SDK ships reads them)."""
        decision = self._sampler.should_sample(context, trace_id, "", self._server_kind)
        sampled = decision.decision is self._sampled
        return TraceOf(trace_id, parent_id or 0, sampled=sampled,
                       trace_state=decision.trace_state.to_header() if sampled and decision.trace_state else "")

    def server_span_at(self, name: str, where: TraceOf, attributes: dict[str, Any], start_ns: int) -> LiveSpan:
        """The request's span where `trace_of` placed it."""
        return LiveSpan(name, SERVER, where.trace_id, self.new_span_id(), where.parent_id,
                        parent_remote=where.parent_remote, sampled=where.sampled, trace_state=where.trace_state,
                        attributes=attributes, start_ns=start_ns, end_to=self._end_to)

    def child_span(self, parent: LiveSpan, name: str, attributes: dict[str, Any]) -> LiveSpan:
        """A CLIENT span under `parent`, sampled as it is (see the module's doc)."""
        return LiveSpan(name, CLIENT, parent.trace_id, self.new_span_id(), parent.span_id,
                        parent_remote=False, sampled=parent.sampled, trace_state=parent.trace_state,
                        attributes=attributes, start_ns=time.time_ns(), end_to=self._end_to)

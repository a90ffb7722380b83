"""Finished spans as plain tuples, for the pipe to the exporter process and back into SDK spans.

The request path ends each span as a tuple of numbers, strings and dicts
(tracing/recorder.py); batches of them are written with `marshal` (a C routine; a batch
of a few hundred spans takes tens of microseconds) to the exporter process
(tracing/exporter_main.py), which rebuilds the SDK's ReadableSpans and hands them to the
official OTLP exporter. So the costly part, the OTLP protobuf encoding and the HTTP
export, runs on another core and under another interpreter lock.

A span on the wire: (name, trace_id, span_id, trace_flags, tracestate header, parent span
id or 0, parent is remote, SpanKind value, start ns, end ns, attributes,
((event name, ns, attributes), ...), StatusCode value, status description).

Links are not carried: the gateway's spans have none. The resource and the
instrumentation scope are the same for every span, so they travel once, in the
exporter's configuration.
"""

from __future__ import annotations

import marshal
import struct
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

# A frame: 4 bytes of length (big-endian), then a marshalled value.
_LENGTH = struct.Struct(">I")
# Bound on one frame, so a corrupt length cannot make the reader allocate gigabytes.
MAX_FRAME = 64 * 1024 * 1024

WireSpan = tuple[Any, ...]


def from_wire(wire: WireSpan, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    (name, trace_id, span_id, flags, state, parent_id, parent_remote, kind, start, end, attributes, events,
     status_code, status_description) = wire
    trace_state = TraceState.from_header([state]) if state else None
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags), trace_state=trace_state)
    parent = (SpanContext(trace_id, parent_id, is_remote=parent_remote, trace_flags=TraceFlags(flags))
              if parent_id else None)
    return ReadableSpan(
        name=name, context=context, parent=parent, resource=resource, attributes=attributes,
        events=tuple(Event(event_name, event_attributes, timestamp)
                     for event_name, timestamp, event_attributes in events),
        kind=SpanKind(kind), status=Status(StatusCode(status_code), status_description),
        start_time=start, end_time=end, instrumentation_scope=scope)


def frame(value: Any) -> bytes:
    body = marshal.dumps(value)
    return _LENGTH.pack(len(body)) + body


def read_frame(stream: IO[bytes]) -> Any:
    """The next value on `stream`; EOFError when the writer closed it."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (length,) = _LENGTH.unpack(head)
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes is over the {MAX_FRAME} bytes allowed")
    body = stream.read(length)
    if len(body) < length:
        raise EOFError
    return marshal.loads(body)  # noqa: S302 (only ever the parent gateway writes to this pipe)

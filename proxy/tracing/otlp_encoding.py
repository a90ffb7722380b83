"""Finished spans as OTLP protobuf: the bytes the official encoder gives, for a fifteenth of its CPU.

The official encoder (opentelemetry-exporter-otlp-proto-common's `encode_spans`) builds a
protobuf message object for every span, attribute and value: on the machine of
docs/PERFORMANCE.md a request's two spans took 215 µs to encode that way, and 20 µs more to
rebuild as the SDK's ReadableSpans it takes, about a quarter of what serving the request
costs. The gateway's spans have a known, small shape (attributes that are strings, numbers,
booleans or tuples of them; events; a status; no links), so they are written here
straight to the protobuf wire format: 15 to 19 µs for the same two spans, most attributes
taken from a cache (the same key and value is the same bytes). This runs where spans are
exported: in the exporter process, or in the export queue's thread with
PROXY_TRACE_EXPORT=thread (tracing/setup.py), never on the request path.

tests/observability/test_otlp_encoding.py holds this to the official encoder: for random
spans of every shape the gateway makes, the request below is byte for byte what
`encode_spans(...).SerializeToString()` gives for the same spans as the SDK's
ReadableSpans.

The messages (opentelemetry-proto, trace/v1 and collector/trace/v1), with the field
numbers written here:
  ExportTraceServiceRequest { 1: ResourceSpans }
  ResourceSpans { 1: Resource { 1: KeyValue... }, 2: ScopeSpans }
  ScopeSpans { 1: InstrumentationScope { 1: name, 2: version }, 2: Span... }
  Span { 1: trace_id, 2: span_id, 3: trace_state, 4: parent_span_id, 5: name, 6: kind,
         7: start (fixed64), 8: end (fixed64), 9: KeyValue..., 11: Event..., 15: Status,
         16: flags (fixed32) }
  Event { 1: time (fixed64), 2: name, 3: KeyValue... }
  Status { 2: message, 3: code }
  KeyValue { 1: key, 2: AnyValue { 1: string, 2: bool, 3: int64, 4: double, 5: ArrayValue { 1: AnyValue... } } }
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from proxy.tracing.span_wire import WireSpan

_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_ONE_BYTE = [bytes((n,)) for n in range(128)]
# Span.flags: the SDK always says whether the parent is remote (SpanFlags' two masks).
_LOCAL_PARENT_FLAGS = b"\x85\x01" + struct.pack("<I", 0x100)
_REMOTE_PARENT_FLAGS = b"\x85\x01" + struct.pack("<I", 0x300)
# Attribute fields already encoded, by key then value. A key seen with more values than this
# (request ids, token counts) stops being cached: its values rarely come again.
_CACHED_PER_KEY = 64


def _varint(number: int) -> bytes:
    if number < 0x80:
        return _ONE_BYTE[number]
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    kind = type(value)
    if kind is str:
        return _length_delimited(b"\x0a", value.encode())
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        return b"\x18" + _varint(value & 0xFFFF_FFFF_FFFF_FFFF)  # int64: a negative one is ten bytes
    if kind is float:
        return b"\x21" + _DOUBLE(value)
    if kind is tuple:
        return _length_delimited(b"\x2a", b"".join([_length_delimited(b"\x0a", _any_value(v)) for v in value]))
    raise TypeError(f"a span attribute of type {kind.__name__} cannot be exported")


def _attribute(tag: bytes, key: str, value: Any) -> bytes:
    key_value = _length_delimited(b"\x0a", key.encode()) + _length_delimited(b"\x12", _any_value(value))
    return _length_delimited(tag, key_value)


class _AttributeFields:
    """Attributes as KeyValue fields numbered `tag` (a span's 9, an event's 3, a resource's 1),
    each attribute's bytes kept for the next span with the same key and value."""

    def __init__(self, tag: bytes) -> None:
        self._tag = tag
        self._cache: dict[str, dict[Any, bytes] | None] = {}

    def encode(self, attributes: Mapping[str, Any]) -> bytes:
        out = []
        tag, cache = self._tag, self._cache
        for key, value in attributes.items():
            kind = type(value)
            # Strings, ints and tuples of strings are cached. Not booleans and floats: as dict keys
            # they are equal to ints (True == 1 == 1.0), and a float is seldom seen twice.
            by_value = cache.get(key, {}) if kind is str or kind is int or kind is tuple else None
            field = by_value.get(value) if by_value is not None else None
            if field is None:
                field = _attribute(tag, key, value)
                if by_value is not None and (kind is not tuple or all(type(v) is str for v in value)):
                    if len(by_value) < _CACHED_PER_KEY:
                        by_value[value] = field
                        cache[key] = by_value
                    else:
                        cache[key] = None
            out.append(field)
        return b"".join(out)


_span_attributes = _AttributeFields(b"\x4a").encode
_event_attributes = _AttributeFields(b"\x1a").encode


def encode_span(span: WireSpan) -> bytes:
    """A finished span as the request path queued it (tracing/span_wire.py) as a field of
    ScopeSpans (its `spans`, number 2)."""
    (name, trace_id, span_id, _flags, trace_state, parent_id, parent_remote, kind, start_ns, end_ns, attributes,
     events, status_code, status_description) = span
    name_bytes = name.encode()
    parts = [b"\x0a\x10", trace_id.to_bytes(16, "big"), b"\x12\x08", span_id.to_bytes(8, "big")]
    if trace_state:
        parts.append(_length_delimited(b"\x1a", trace_state.encode()))
    if parent_id:
        parts += (b"\x22\x08", parent_id.to_bytes(8, "big"))
    # SpanKind: the API's SERVER (1) and CLIENT (2) are the protobuf's 2 and 3.
    parts += (b"\x2a", _varint(len(name_bytes)), name_bytes, b"\x30", _ONE_BYTE[kind + 1],
              b"\x39", _FIXED64(start_ns), b"\x41", _FIXED64(end_ns), _span_attributes(attributes))
    for event_name, at_ns, event_attributes in events:
        event = b"\x09" + _FIXED64(at_ns) + _length_delimited(b"\x12", event_name.encode())
        parts.append(_length_delimited(b"\x5a", event + _event_attributes(event_attributes)))
    status = _length_delimited(b"\x12", status_description.encode()) if status_description else b""
    if status_code:
        status += b"\x18" + _ONE_BYTE[status_code]
    remote = parent_remote and parent_id
    parts += (_length_delimited(b"\x7a", status), _REMOTE_PARENT_FLAGS if remote else _LOCAL_PARENT_FLAGS)
    return _length_delimited(b"\x12", b"".join(parts))


class ExportRequest:
    """The ExportTraceServiceRequest around encoded spans, for one resource and one
    instrumentation scope (a gateway's are the same for every span)."""

    def __init__(self, resource: Mapping[str, Any], scope_name: str, scope_version: str) -> None:
        self._resource = _length_delimited(b"\x0a", _AttributeFields(b"\x0a").encode(resource))
        scope = _length_delimited(b"\x0a", scope_name.encode()) + _length_delimited(b"\x12", scope_version.encode())
        self._scope = _length_delimited(b"\x0a", scope)

    def of(self, spans: Iterable[bytes]) -> bytes:
        scope_spans = _length_delimited(b"\x12", self._scope + b"".join(spans))
        return _length_delimited(b"\x0a", self._resource + scope_spans)

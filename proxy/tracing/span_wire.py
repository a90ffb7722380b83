"""Finished spans as plain tuples, for the pipe to the exporter process.

The request path ends each span as a tuple of numbers, strings and dicts
(tracing/recorder.py); batches of them are written with `marshal` (a C routine; a batch
of a few hundred spans takes tens of microseconds) to the exporter process
(tracing/exporter_main.py), which encodes them as OTLP protobuf (tracing/otlp_encoding.py)
and exports them. So the costly part, the encoding and the HTTP export, runs on another
core and under another interpreter lock.

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
from typing import IO, Any

# A frame: 4 bytes of length (big-endian), then a marshalled value.
_LENGTH = struct.Struct(">I")
FRAME_HEAD = _LENGTH.size
# Bound on one frame, so a corrupt length cannot make the reader allocate gigabytes.
MAX_FRAME = 64 * 1024 * 1024

WireSpan = tuple[Any, ...]


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

"""Incremental readers for the two chunked formats upstreams stream in.

Both read line by line from aiohttp's StreamReader, so each message is handed on as
soon as its last byte arrives; nothing waits for the whole answer. Each wait for a line
is bounded by the stream's idle budget here, on the gateway's own timer: aiohttp's
socket timer does not fire in every case (after a broken chunked framing it waits for
bytes that never come). A line longer than
MAX_LINE raises aiohttp's LineTooLong, which backends report as a bad upstream: an
upstream that never sends a newline cannot make the gateway buffer without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import StreamReader

# Far above any real token chunk, far below what would hurt with many streams.
MAX_LINE = 1 << 20


class StreamSilent(TimeoutError):
    """No complete line within the stream's idle budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no line within {seconds:g} s")
        self.seconds = seconds


async def _lines(content: StreamReader, idle: float) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(idle):
                line = await content.readline(max_line_length=MAX_LINE)
        except TimeoutError:
            raise StreamSilent(idle) from None
        if not line:
            return
        yield line


async def chunks(content: StreamReader, idle: float) -> AsyncIterator[bytes]:
    """The body in chunks as they arrive, for a relay that need not see its lines."""
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await content.readany()
        except TimeoutError:
            raise StreamSilent(idle) from None
        if not chunk:
            return
        yield chunk


async def ndjson_lines(content: StreamReader, idle: float) -> AsyncIterator[bytes]:
    """Ollama's NDJSON as raw lines, each ending with a newline; blank lines are skipped."""
    async for line in _lines(content, idle):
        if line.strip():
            yield line if line.endswith(b"\n") else line + b"\n"


async def ndjson_objects(content: StreamReader, idle: float) -> AsyncIterator[Any]:
    """Ollama's NDJSON: one JSON value per line; blank lines are skipped."""
    async for line in _lines(content, idle):
        if line.strip():
            yield orjson.loads(line)


async def sse_events(content: StreamReader, idle: float) -> AsyncIterator[tuple[bytes, bytes]]:
    """(event name, data) of each Server-Sent Event; the name is b"" when none was given.

    Multi-line data is joined with newlines; comments and id/retry fields are skipped. An
    event whose data outgrows MAX_LINE is refused (ValueError), so an upstream that never
    ends an event cannot make the gateway buffer without end. An event cut off by the end
    of the stream is still yielded, so a truncated JSON payload is reported as such.
    """
    data: list[bytes] = []
    size = 0
    event = b""
    async for raw in _lines(content, idle):
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield event, b"\n".join(data)
            data, size, event = [], 0, b""
            continue
        field, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field == b"data":
            size += len(value)
            if size > MAX_LINE:
                raise ValueError(f"a server-sent event larger than {MAX_LINE} bytes")
            data.append(value)
        elif field == b"event":
            event = value
    if data:
        yield event, b"\n".join(data)

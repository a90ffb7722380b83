"""Incremental readers for the two chunked formats upstreams stream in.

Both read line by line from aiohttp's StreamReader, so each message is handed on as
soon as its last byte arrives; nothing waits for the whole answer. A line longer than
MAX_LINE raises aiohttp's LineTooLong, which backends report as a bad upstream: an
upstream that never sends a newline cannot make the gateway buffer without end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import StreamReader

# Far above any real token chunk, far below what would hurt with many streams.
MAX_LINE = 1 << 20


async def _lines(content: StreamReader) -> AsyncIterator[bytes]:
    while line := await content.readline(max_line_length=MAX_LINE):
        yield line


async def ndjson_objects(content: StreamReader) -> AsyncIterator[Any]:
    """Ollama's NDJSON: one JSON value per line; blank lines are skipped."""
    async for line in _lines(content):
        if line.strip():
            yield orjson.loads(line)


async def sse_data(content: StreamReader) -> AsyncIterator[bytes]:
    """The `data` of each Server-Sent Event (multi-line data joined with newlines).

    Comments and the event/id/retry fields are skipped: OpenAI-compatible servers put
    everything in `data`. An event cut off by the end of the stream is still yielded, so
    that a truncated JSON payload is reported as such rather than silently dropped.
    """
    data: list[bytes] = []
    async for raw in _lines(content):
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield b"\n".join(data)
                data = []
            continue
        field, _, value = line.partition(b":")
        if field == b"data":
            data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data)

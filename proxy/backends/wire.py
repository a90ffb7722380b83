"""Incremental readers for the two chunked formats upstreams stream in.

Both read line by line from aiohttp's StreamReader, so each message is handed on as
soon as its last byte arrives; nothing waits for the whole answer. Each wait for a line
is bounded by the stream's idle budget here, on the gateway's own timer (IdleTimer): aiohttp's
socket timer does not fire in every case (after a broken chunked framing it waits for
bytes that never come). A line longer than
MAX_LINE is refused (aiohttp's LineTooLong, or a ValueError where the lines are split
here), which backends report as a bad upstream: an upstream that never sends a newline
cannot make the gateway buffer without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import orjson
from aiohttp import StreamReader

T = TypeVar("T")

# Far above any real token chunk, far below what would hurt with many streams.
MAX_LINE = 1 << 20


class StreamSilent(TimeoutError):
    """No complete line within the stream's idle budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no line within {seconds:g} s")
        self.seconds = seconds


class IdleTimer:
    """The idle budget of one stream's reads, on one timer for the whole stream.

    A timer armed and cancelled around every read (asyncio.timeout) made and dropped an
    event-loop timer per token: a seventh of a stream's CPU. Here a read only notes when it
    began; the one timer, when it fires, checks whether the read in progress has waited the
    whole budget, and otherwise moves itself to where that read's budget ends. When it has,
    the reading task is cancelled and the read raises StreamSilent, as asyncio.timeout
    would have raised TimeoutError. One stream's reads are made by one task (the request's).

    `first`, when given, is the budget of the first read only (a model being loaded sends
    nothing for as long as the load takes); once anything has come, `idle` applies.
    """

    def __init__(self, idle: float, first: float | None = None) -> None:
        self.idle = idle if first is None else first
        self._then = None if first is None else idle  # the budget after the first read
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0  # the task's cancel requests before the timer's own
        self._read_since: float | None = None  # when the read in progress began
        self._expired = False

    async def read(self, wait: Awaitable[T], since: float | None = None) -> T:
        """`wait`'s result, within the idle budget counted from now, or from `since` (the
        loop's time) for a wait that continues an earlier one: the rest of a line whose
        first bytes came then."""
        began = self._read_since = self._loop.time() if since is None else since
        if self._handle is None:
            self._task = asyncio.current_task()
            self._arm(began + self.idle)
        try:
            result = await wait
        except asyncio.CancelledError:
            if self._expired and self._task is not None and self._task.uncancel() <= self._cancelling:
                raise StreamSilent(self.idle) from None
            raise
        finally:
            self._read_since = None
        if self._then is not None:  # the first read is over
            self.idle, self._then = self._then, None
        return result

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, when: float) -> None:
        # The reading task is taken in read(), never here: moved by _check, the timer runs
        # in a loop callback, where there is no current task.
        self._handle = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._handle = None
        since = self._read_since
        if since is None or self._task is None:
            return  # between reads: the next read arms the timer again
        due = since + self.idle
        if self._loop.time() < due:  # this read began after the timer was armed
            self._arm(due)
            return
        self._expired = True
        self._cancelling = self._task.cancelling()
        self._task.cancel()


async def _lines(content: StreamReader, idle: float, first: float | None = None) -> AsyncIterator[bytes]:
    timer = IdleTimer(idle, first)
    try:
        while line := await timer.read(content.readline(max_line_length=MAX_LINE)):
            yield line
    finally:
        timer.close()


async def chunks(content: StreamReader, idle: float, first: float | None = None) -> AsyncIterator[bytes]:
    """The body in chunks as they arrive, for a relay that need not see its lines."""
    timer = IdleTimer(idle, first)
    try:
        while chunk := await timer.read(content.readany()):
            yield chunk
    finally:
        timer.close()


async def ndjson_lines(content: StreamReader, idle: float, first: float | None = None) -> AsyncIterator[bytes]:
    """Ollama's NDJSON as raw lines, each ending with a newline; blank lines are skipped."""
    async for line in _lines(content, idle, first):
        if line.strip():
            yield line if line.endswith(b"\n") else line + b"\n"


async def ndjson_objects(content: StreamReader, idle: float, first: float | None = None) -> AsyncIterator[Any]:
    """Ollama's NDJSON: one JSON value per line; blank lines are skipped.

    Read as whatever has arrived (readany), then split into lines here: when the upstream
    writes faster than a client reads, one read takes many lines at once, where
    readline() went through aiohttp's line search and a wait per line. Every token of a
    translated stream, and of a single shot, passes through this loop. A line is held to
    MAX_LINE as with readline: its start is kept while it has no end, and refused past it.
    """
    timer = IdleTimer(idle, first)
    loop = asyncio.get_running_loop()
    start: list[bytes] = []  # the pieces of a line whose end has not arrived yet
    started = 0
    line_began: float | None = None  # when the first of those pieces came
    try:
        # A line's rest is waited for within the budget counted from its first piece: bytes
        # dripped without a newline are a silence, as they are for readline().
        while chunk := await timer.read(content.readany(), line_began):
            lines = chunk.split(b"\n")
            if len(lines) == 1:  # no line ends in this piece
                start.append(chunk)
                started += len(chunk)
                line_began = line_began if line_began is not None else loop.time()
                _check_line(started)
                continue
            if start:
                start.append(lines[0])
                lines[0] = b"".join(start)
                start, started, line_began = [], 0, None
            rest = lines.pop()
            if rest:
                start, started = [rest], len(rest)
            for line in lines:
                if len(line) > MAX_LINE:
                    _check_line(len(line))
                if line and not line.isspace():
                    yield orjson.loads(line)
            _check_line(started)
            if rest:  # its clock starts once the lines before it are handed on, however slowly
                line_began = loop.time()
        last = b"".join(start)
        if last and not last.isspace():  # the body's last line, without its newline
            yield orjson.loads(last)
    finally:
        timer.close()


def _check_line(size: int) -> None:
    if size > MAX_LINE:
        raise ValueError(f"a line longer than {MAX_LINE} bytes")


async def sse_events(
    content: StreamReader, idle: float, first: float | None = None,
) -> AsyncIterator[tuple[bytes, bytes]]:
    """(event name, data) of each Server-Sent Event; the name is b"" when none was given.

    Multi-line data is joined with newlines; comments and id/retry fields are skipped. An
    event whose data outgrows MAX_LINE is refused (ValueError), so an upstream that never
    ends an event cannot make the gateway buffer without end. An event cut off by the end
    of the stream is still yielded, so a truncated JSON payload is reported as such.
    """
    data: list[bytes] = []
    size = 0
    event = b""
    async for raw in _lines(content, idle, first):
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

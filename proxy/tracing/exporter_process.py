"""Spans leave the gateway's process: a span processor that pipes them to a supervised exporter.

Encoding spans as OTLP protobuf costs more CPU than making them (docs/tracing.md, cost):
inside the gateway it would run on the event loop's core and under its interpreter lock.
So the gateway only queues each finished, sampled span (the SDK's `on_end`: one append to
a bounded deque); a background thread turns batches of them into plain tuples and writes
them to the standard input of a child process (tracing/exporter_main.py) where the
official BatchSpanProcessor and OTLP/HTTP exporter do the rest.

The child is supervised, and can never hold a request up:
- it is started with the first spans, and again after it dies (1 s later, then doubling
  up to 30 s while it keeps dying); meanwhile spans are dropped and counted
  (`gateway_trace_spans_dropped_total{reason="exporter_down"}`), spans already in the
  pipe when it died are lost uncounted;
- when it falls behind, the pipe fills, the writing thread waits, the queue fills, and
  further spans are dropped and counted (`reason="queue_full"`);
- it ends with the gateway: at shutdown the pipe is closed and it exports what it holds
  (bounded by the export timeout; killed if it overruns); if the gateway dies, the
  kernel closes the pipe and the child does the same on its own.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import SpanProcessor

from proxy.observability.trace_metrics import EXPORTER_RESTARTS, SPANS_DROPPED
from proxy.tracing.span_wire import frame, to_wire

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

log = logging.getLogger("proxy")

_FIRST_RETRY = 1.0  # seconds before starting a dead exporter again
_LONGEST_RETRY = 30.0
_HEALTHY_AFTER = 60.0  # an exporter that lived this long starts the backoff over
_SHIP_EVERY = 0.2  # seconds: how long a span may wait in the gateway before it is piped
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ExporterProcess:
    """The child process, started on demand and again after it dies. Used by one thread only."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = frame(config)
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._retry_at = 0.0
        self._backoff = _FIRST_RETRY
        self._starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def send(self, data: bytes) -> bool:
        """Write `data` to the exporter; False (nothing written) when it is dead or waiting to restart."""
        process = self._running()
        if process is None or process.stdin is None:
            return False
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except OSError:  # BrokenPipeError: it died
            self._died()
            return False
        return True

    def close(self, timeout: float) -> None:
        """Close its input (it exports what it holds and exits); kill it after `timeout` seconds."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass  # it was already gone
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _running(self) -> subprocess.Popen[bytes] | None:
        if self._process is not None and self._process.poll() is None:
            return self._process
        if self._process is not None:
            self._died()
        if time.monotonic() < self._retry_at:
            return None
        self._start()
        return self._process

    def _start(self) -> None:
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": _PACKAGE_ROOT + (os.pathsep + path if path else "")}
        process = subprocess.Popen([sys.executable, "-m", "proxy.tracing.exporter_main"], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, env=env)
        assert process.stdin is not None
        process.stdin.write(self._config)  # into the pipe's buffer: the child reads it once it runs
        self._process, self._started_at = process, time.monotonic()
        if self._starts:
            EXPORTER_RESTARTS.inc()
        self._starts += 1

    def _died(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()  # a broken pipe can come before the exit: make sure, then reap it
        status = process.wait()
        now = time.monotonic()
        if now - self._started_at > _HEALTHY_AFTER:
            self._backoff = _FIRST_RETRY
        self._retry_at = now + self._backoff
        log.warning("the trace exporter process exited (status %s); starting it again in %.0f s", status, self._backoff)
        self._backoff = min(self._backoff * 2, _LONGEST_RETRY)


class SpanPipe(SpanProcessor):
    """The SDK's span processor interface: `on_end` queues, a thread pipes batches to the exporter."""

    def __init__(self, exporter: ExporterProcess, *, queue_size: int, batch_size: int, close_timeout: float) -> None:
        self.exporter = exporter
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._close_timeout = close_timeout
        self._wake = threading.Event()
        self._stopping = False
        self._dropped_full = SPANS_DROPPED.labels("queue_full")
        self._dropped_down = SPANS_DROPPED.labels("exporter_down")
        self._thread = threading.Thread(target=self._run, name="trace-span-pipe", daemon=True)
        self._thread.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        if len(self._queue) >= self._queue_size:
            self._dropped_full.inc()
            return
        self._queue.append(span)
        if len(self._queue) == self._batch_size:
            self._wake.set()

    def shutdown(self) -> None:
        """Pipe what is queued, then close the exporter (it exports what it holds and exits)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(self._close_timeout)
        self.exporter.close(self._close_timeout)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._wake.set()
        return True

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(_SHIP_EVERY)
            self._wake.clear()
            self._ship_queued()
        self._ship_queued()

    def _ship_queued(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_size))]
            if not self.exporter.send(frame([to_wire(span) for span in batch])):
                self._dropped_down.inc(len(batch))

"""Spans leave the gateway's process: batches piped to a supervised exporter process.

Encoding and sending spans costs about as much CPU as recording them (docs/tracing.md,
cost): inside the gateway it would run on the event loop's core and under its interpreter
lock. So the export queue's thread (tracing/span_queue.py) writes batches of finished
spans, as plain tuples, to the standard input of a child process (tracing/exporter_main.py)
which encodes and exports them.

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

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from proxy.observability.trace_metrics import EXPORTER_RESTARTS
from proxy.tracing.span_wire import FRAME_HEAD, MAX_FRAME, WireSpan, frame

log = logging.getLogger("proxy")

_FIRST_RETRY = 1.0  # seconds before starting a dead exporter again
_LONGEST_RETRY = 30.0
_HEALTHY_AFTER = 60.0  # an exporter that lived this long starts the backoff over
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ExporterProcess:
    """The child process, started on demand and again after it dies. Used by one thread only."""

    def __init__(self, config: dict[str, Any], dropped: Callable[[str, int], None]) -> None:
        self._config = frame(config)
        self._dropped = dropped
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._retry_at = 0.0
        self._backoff = _FIRST_RETRY
        self._starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def deliver(self, batch: list[WireSpan]) -> bool:
        """Pipe `batch` to the exporter; False (not sent) when it is dead or waiting to restart.

        A batch over the pipe's frame limit (long prompts, with content capture on) goes in
        parts, each part's spans counted if it could not be sent; a span over it alone is
        dropped and counted."""
        data = frame(batch)
        if len(data) <= MAX_FRAME + FRAME_HEAD:
            return self._send(data)
        if len(batch) == 1:
            self._dropped("too_large", 1)
            return True
        half = len(batch) // 2
        for part in (batch[:half], batch[half:]):
            if not self.deliver(part):
                self._dropped("exporter_down", len(part))
        return True

    def _send(self, data: bytes) -> bool:
        process = self._running()
        if process is None or process.stdin is None:
            return False
        try:
            _write_all(process.stdin, data)
        except OSError:  # BrokenPipeError: it died
            self._died()
            return False
        return True

    def shutdown(self, timeout: float) -> None:
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
        # Unbuffered: shutdown() from the stopping thread must not wait for a lock held by a write
        # blocked on a stuck child (it kills the child instead, which ends the write).
        process = subprocess.Popen([sys.executable, "-m", "proxy.tracing.exporter_main"], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, env=env, bufsize=0)
        assert process.stdin is not None
        _write_all(process.stdin, self._config)  # into the pipe's buffer: the child reads it once it runs
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


def _write_all(pipe: IO[bytes], data: bytes) -> None:
    """A raw pipe may take part of a large write: write the rest."""
    view = memoryview(data)
    while view:
        written = pipe.write(view)
        view = view[written or 0:]

"""The export queue: the request path appends a finished span, a thread hands batches on.

Appending is all a request ever does (one bounded deque append: no lock, no encoding, no
I/O). Every 0.2 s, or as soon as a batch is full, the queue's thread hands what is queued,
in batches, to where spans are exported: the exporter process (tracing/exporter_process.py)
or the SDK's exporter in this process (tracing/setup.py). When the queue is full (the
exporter fell behind), a span is dropped and counted; so is a batch the exporter could not
take (it had died).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

from proxy.observability.trace_metrics import SPANS_DROPPED
from proxy.tracing.span_wire import WireSpan

_HAND_ON_EVERY = 0.2  # seconds a span may wait here before it moves on


class SpanQueue:
    def __init__(self, deliver: Callable[[list[WireSpan]], bool], close: Callable[[float], None], *,
                 queue_size: int, batch_size: int, close_timeout: float) -> None:
        self._deliver = deliver
        self._close = close
        self._queue: collections.deque[WireSpan] = collections.deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._close_timeout = close_timeout
        self._wake = threading.Event()
        self._stopping = False
        self._dropped_full = SPANS_DROPPED.labels("queue_full")
        self._dropped_down = SPANS_DROPPED.labels("exporter_down")
        self._thread = threading.Thread(target=self._run, name="trace-export-queue", daemon=True)
        self._thread.start()

    def put(self, span: WireSpan) -> None:
        """A finished span (from the request path)."""
        queued = len(self._queue)
        if queued >= self._queue_size:
            self._dropped_full.inc()
            return
        self._queue.append(span)
        if queued + 1 == self._batch_size:
            self._wake.set()

    def shutdown(self) -> None:
        """Hand on what is queued, then close the exporter (it exports what it holds)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(self._close_timeout)
        self._close(self._close_timeout)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(_HAND_ON_EVERY)
            self._wake.clear()
            self._hand_on()
        self._hand_on()

    def _hand_on(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_size))]
            if not self._deliver(batch):
                self._dropped_down.inc(len(batch))

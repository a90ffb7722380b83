"""The export queue: finished spans are appended, a thread hands batches on.

Appending is all a request ever does (one bounded deque append: no lock, no encoding, no
I/O). The queue's thread hands what is queued, in batches of at most `batch_size` spans,
to where spans go next: in the gateway, the pipe to the exporter process
(tracing/exporter_process.py), or with PROXY_TRACE_EXPORT=thread the OTLP export itself
(tracing/otlp_export.py); in the exporter process, the OTLP export. It hands on every
`hand_on_every` seconds, and as soon as a batch is full. Woken by a full batch, it hands on
full batches only: spans that came in meanwhile wait for the next one, rather than each
export (which costs about the same CPU for 5 spans as for 500) carrying a few.

Nothing waits for room: when the queue is full (what is after it fell behind) a span is
dropped, and so is a batch that could not be handed on; both are counted by reason.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Span = TypeVar("Span")

log = logging.getLogger(__name__)


class SpanQueue(Generic[Span]):
    """`put` is called from one thread (the event loop's, or the exporter process's reader)."""

    def __init__(self, deliver: Callable[[list[Span]], bool], close: Callable[[float], None], *,
                 queue_size: int, batch_size: int, hand_on_every: float, close_timeout: float,
                 dropped: Callable[[str, int], None], undelivered: str) -> None:
        """`dropped(reason, spans)` counts spans lost: "queue_full", or `undelivered` for a
        batch `deliver` did not take (returned False)."""
        self._deliver = deliver
        self._close = close
        self._queue: collections.deque[Span] = collections.deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._hand_on_every = hand_on_every
        self._close_timeout = close_timeout
        self._dropped = dropped
        self._undelivered = undelivered
        self._wake = threading.Event()
        self._stopping = False
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        self._thread = threading.Thread(target=self._run, name="trace-export-queue", daemon=True)
        self._thread.start()

    def put(self, span: Span) -> None:
        """A finished span."""
        queued = len(self._queue)
        if queued >= self._queue_size:
            self._dropped("queue_full", 1)
            return
        self._queue.append(span)
        if queued + 1 == self._batch_size:
            self._wake.set()

    def shutdown(self) -> None:
        """Hand on what is queued (for at most `close_timeout`: what is left then is counted),
        then close what is after the queue (it exports what it holds). Once; a second call
        returns when the first is done."""
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._stopping = True
            self._wake.set()
            self._thread.join(self._close_timeout)
            left = len(self._queue)
            self._queue.clear()
            if left:
                self._dropped(self._undelivered, left)
            self._close(self._close_timeout)
            self._shut_down = True

    def _run(self) -> None:
        while not self._stopping:
            on_time = not self._wake.wait(self._hand_on_every)
            self._wake.clear()
            self._hand_on(everything=on_time or self._stopping)
        self._hand_on(everything=True)

    def _hand_on(self, *, everything: bool) -> None:
        while self._queue and (everything or len(self._queue) >= self._batch_size):
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_size))]
            try:
                delivered = self._deliver(batch)
            except Exception:  # a bug there must not end the thread: every later span would be lost
                log.exception("handing on %d finished spans failed", len(batch))
                delivered = False
            if not delivered:
                self._dropped(self._undelivered, len(batch))

"""The trace exporter process: `python -m proxy.tracing.exporter_main`, started by the gateway.

It reads from its standard input, first its configuration (endpoint, headers, timeouts,
resource, instrumentation scope: never on the command line, where `ps` would show an
API key in a header), then batches of finished spans (tracing/span_wire.py). They wait in an export queue
(tracing/span_queue.py, bounded by OTEL_BSP_MAX_QUEUE_SIZE) whose thread, every
OTEL_BSP_SCHEDULE_DELAY or as soon as OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans are waiting,
encodes them as OTLP protobuf and sends them with the official OTLP/HTTP exporter's client
(tracing/otlp_export.py). Spans it drops (the collector slower than the traffic, refusing
them, or one span too large) are logged on the gateway's standard error, with their count,
at most once a minute.

It ends when its input ends, which is when the gateway closes it at shutdown or the
gateway dies (the kernel closes its end): what is queued is then exported (bounded by the
export timeout) and the process exits. It also ends if it is orphaned (its parent
changed), in case another process holds the pipe open. Interrupts and SIGTERM sent to
the whole process group are ignored: the gateway decides when it stops, so the spans of
the requests it is still draining are not lost.

It runs at a lower scheduling priority (nice +10): where it shares a core with the gateway,
the requests come first, and an exporter that falls behind drops spans (counted by the
gateway) rather than taking time from answers.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from proxy.tracing.otlp_export import OtlpExport
from proxy.tracing.span_queue import SpanQueue
from proxy.tracing.span_wire import WireSpan, read_frame

_ORPHAN_CHECK_SECONDS = 1.0
NICENESS = 10  # added to the gateway's: exporting yields to serving
_LOG_DROPS_EVERY = 60.0  # seconds

log = logging.getLogger("octomil-gateway trace exporter")


class _LoggedDrops:
    """Spans dropped here, counted and logged: the gateway's metrics cannot see this process's."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._logged_at = -_LOG_DROPS_EVERY
        self._lock = threading.Lock()  # the reading thread and the queue's thread both drop

    def __call__(self, reason: str, spans: int) -> None:
        with self._lock:
            self._counts[reason] += spans
            now = time.monotonic()
            if now - self._logged_at < _LOG_DROPS_EVERY:
                return
            counts, self._counts, self._logged_at = self._counts, collections.Counter(), now
        self._log(counts)

    def flush(self) -> None:
        """What is counted and not yet logged (at the exit)."""
        with self._lock:
            counts, self._counts = self._counts, collections.Counter()
        if counts:
            self._log(counts)

    @staticmethod
    def _log(counts: collections.Counter[str]) -> None:
        log.warning("spans dropped since the last report: %s (see docs/tracing.md)",
                    ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())))


def _queue(config: dict[str, Any], dropped: _LoggedDrops) -> SpanQueue[WireSpan]:
    export = OtlpExport(config["endpoint"], dict(config["headers"]), config["export_timeout"],
                        dict(config["resource"]), config["version"], dropped)
    return SpanQueue(export.deliver, export.close, queue_size=config["queue_size"], batch_size=config["batch_size"],
                     hand_on_every=config["export_every"], close_timeout=config["export_timeout"], dropped=dropped,
                     undelivered="export_failed")


def _exit_when_orphaned(parent: int, queue: SpanQueue[WireSpan], dropped: _LoggedDrops) -> None:
    """A daemon thread: the gateway is gone but the pipe stayed open elsewhere, so the
    reading loop may never see its end. Export what is queued and exit."""
    while os.getppid() == parent:
        time.sleep(_ORPHAN_CHECK_SECONDS)
    queue.shutdown()
    dropped.flush()
    os._exit(0)


def main() -> None:
    os.nice(NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s %(message)s")
    stream = sys.stdin.buffer
    parent = os.getppid()
    try:
        config = read_frame(stream)
    except (EOFError, OSError, ValueError):
        return  # the gateway was gone before it could say anything
    dropped = _LoggedDrops()
    queue = _queue(config, dropped)
    threading.Thread(target=_exit_when_orphaned, args=(parent, queue, dropped), daemon=True).start()
    try:
        while True:
            for wire in read_frame(stream):
                queue.put(wire)
    except (EOFError, OSError, ValueError):
        pass  # the gateway closed the pipe (or is gone): export what is queued and stop
    finally:
        queue.shutdown()
        dropped.flush()


if __name__ == "__main__":
    main()

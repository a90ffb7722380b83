"""The trace exporter process: `python -m proxy.tracing.exporter_main`, started by the gateway.

It reads from its standard input, first its configuration (endpoint, headers, timeouts,
resource, instrumentation scope: never on the command line, where `ps` would show an
API key in a header), then batches of finished spans (tracing/span_wire.py). Each span
is rebuilt as the SDK's ReadableSpan and handed to the official BatchSpanProcessor and
OTLPSpanExporter, which encode and export them in the background as they would inside
the gateway.

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

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from proxy.tracing.setup import batch_processor
from proxy.tracing.span_wire import from_wire, read_frame

_ORPHAN_CHECK_SECONDS = 1.0
NICENESS = 10  # added to the gateway's: exporting yields to serving


def _processor(config: dict[str, Any]) -> Any:
    return batch_processor(config["endpoint"], dict(config["headers"]), export_timeout=config["export_timeout"],
                           export_every=config["export_every"], queue_size=config["queue_size"],
                           batch_size=config["batch_size"])


def _exit_when_orphaned(parent: int, processor: Any) -> None:
    """A daemon thread: the gateway is gone but the pipe stayed open elsewhere, so the
    reading loop may never see its end. Export what is queued and exit."""
    while os.getppid() == parent:
        time.sleep(_ORPHAN_CHECK_SECONDS)
    processor.shutdown()
    os._exit(0)


def main() -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    os.nice(NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="octomil-gateway trace exporter: %(levelname)s %(message)s")
    stream = sys.stdin.buffer
    parent = os.getppid()
    try:
        config = read_frame(stream)
    except (EOFError, OSError, ValueError):
        return  # the gateway was gone before it could say anything
    resource = Resource(dict(config["resource"]))
    scope = InstrumentationScope(config["scope_name"], config["scope_version"])
    processor = _processor(config)
    threading.Thread(target=_exit_when_orphaned, args=(parent, processor), daemon=True).start()
    try:
        while True:
            for wire in read_frame(stream):
                processor.on_end(from_wire(wire, resource, scope))
    except (EOFError, OSError, ValueError):
        pass  # the gateway closed the pipe (or is gone): export what is queued and stop
    finally:
        processor.shutdown()


if __name__ == "__main__":
    main()

"""Tracing's Prometheus metrics: the spans the gateway dropped, and its exporter process's
restarts (tracing/exporter_process.py)."""

from __future__ import annotations

from prometheus_client import Counter

SPANS_DROPPED = Counter(
    "gateway_trace_spans_dropped",
    "Finished spans the gateway dropped, by reason: queue_full (what is after the queue fell behind and "
    "the queue, OTEL_BSP_MAX_QUEUE_SIZE spans, was full), exporter_down (the exporter process had died), "
    "too_large (one span over the 64 MiB of the pipe to the exporter process, or with "
    "PROXY_TRACE_EXPORT=thread over the 4 MiB of an export request), and with PROXY_TRACE_EXPORT=thread "
    "export_failed (the collector refused the spans or did not answer) and unencodable (a span name that is "
    "not valid Unicode). The exporter process logs its own.",
    ["reason"],
)
EXPORTER_RESTARTS = Counter(
    "gateway_trace_exporter_restarts", "Times the trace exporter process was started again after it died.",
)


def count_dropped(reason: str, spans: int) -> None:
    SPANS_DROPPED.labels(reason).inc(spans)

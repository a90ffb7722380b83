"""Tracing's Prometheus metrics: the spans the gateway could not hand to its exporter process,
and that process's restarts (tracing/exporter_process.py)."""

from __future__ import annotations

from prometheus_client import Counter

SPANS_DROPPED = Counter(
    "gateway_trace_spans_dropped",
    "Finished spans never handed to the trace exporter process, by reason: queue_full (the exporter "
    "fell behind and the queue to it, OTEL_BSP_MAX_QUEUE_SIZE spans, was full) or exporter_down (it had died).",
    ["reason"],
)
EXPORTER_RESTARTS = Counter(
    "gateway_trace_exporter_restarts", "Times the trace exporter process was started again after it died.",
)

"""Tracing's parts, built from `TracingConfig` alone.

The request path records spans with tracing/recorder.py, using the SDK's sampler (from
OTEL_TRACES_SAMPLER) and id generator, and ends them into the export queue
(tracing/span_queue.py). Past the queue, spans are encoded as OTLP protobuf
(tracing/otlp_encoding.py) and sent by the official OTLP/HTTP exporter's client
(tracing/otlp_export.py), under a resource naming the service: by default in a child
process fed through a pipe (tracing/exporter_process.py), so that the encoding costs the
gateway's core nothing; with PROXY_TRACE_EXPORT=thread, in the queue's thread. Either way the
request path only ever appends to a bounded queue: a collector that is down or slow loses
spans, never requests. The SDK is imported here only, so a gateway without tracing never
loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from proxy.observability.trace_metrics import count_dropped
from proxy.settings.tracing import TracingConfig
from proxy.tracing.otlp_export import OtlpExport
from proxy.tracing.recorder import Recorder
from proxy.tracing.span_queue import SpanQueue
from proxy.tracing.span_wire import WireSpan

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.sampling import Sampler

SpanExport = SpanQueue[WireSpan]
# Spans reach the exporter process this often at most, in batches; it exports them every
# OTEL_BSP_SCHEDULE_DELAY. A short wait keeps each pipe write small.
_TO_THE_PROCESS_EVERY = 0.2


def _sampler(config: TracingConfig) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    ratio = sampling.TraceIdRatioBased(config.sampler_ratio)
    roots: dict[str, Sampler] = {"always_on": sampling.ALWAYS_ON, "always_off": sampling.ALWAYS_OFF,
                                 "traceidratio": ratio}
    kind = config.sampler.removeprefix("parentbased_")
    root = roots[kind]
    return sampling.ParentBased(root) if config.sampler.startswith("parentbased_") else root


def span_recording(config: TracingConfig, version: str) -> tuple[Recorder, SpanExport]:
    """The request path's recorder, and the queue it ends spans into; shut the queue down to
    export what it holds."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    # The exporter gets the export timeout to flush at shutdown, and a second to exit.
    close_timeout = config.export_timeout + 1
    queue: SpanExport
    if config.export_process:
        exporter = _exporter_process(config, version, count_dropped)
        queue = SpanQueue(exporter.deliver, exporter.shutdown, queue_size=config.queue_size,
                          batch_size=config.batch_size, hand_on_every=_TO_THE_PROCESS_EVERY,
                          close_timeout=close_timeout, dropped=count_dropped, undelivered="exporter_down")
    else:
        export = OtlpExport(str(config.endpoint), dict(config.headers), config.export_timeout,
                            resource_attributes(config, version), version, count_dropped)
        queue = SpanQueue(export.deliver, export.close, queue_size=config.queue_size, batch_size=config.batch_size,
                          hand_on_every=config.export_every, close_timeout=close_timeout, dropped=count_dropped,
                          undelivered="export_failed")
    return Recorder(_sampler(config), RandomIdGenerator(), queue.put), queue


def resource_attributes(config: TracingConfig, version: str) -> dict[str, Any]:
    """The resource every span is exported under."""
    return {
        **dict(config.resource_attributes),
        "service.name": config.service_name,
        "service.version": version,
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    }


def _exporter_process(config: TracingConfig, version: str, dropped: Callable[[str, int], None]) -> Any:
    from proxy.tracing.exporter_process import ExporterProcess

    return ExporterProcess({
        "endpoint": str(config.endpoint), "headers": config.headers, "export_timeout": config.export_timeout,
        "export_every": config.export_every, "queue_size": config.queue_size, "batch_size": config.batch_size,
        "resource": tuple(resource_attributes(config, version).items()), "version": version,
    }, dropped)

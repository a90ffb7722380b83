"""Tracing's parts, built from `TracingConfig` alone.

The request path records spans with tracing/recorder.py, using the SDK's sampler (from
OTEL_TRACES_SAMPLER) and id generator, and ends them into the export queue
(tracing/span_queue.py). Past the queue, the official SDK exports them: a BatchSpanProcessor
and the OTLP/HTTP exporter, under a resource naming the service. By default they run in a
child process fed through a pipe (tracing/exporter_process.py), so their protobuf encoding
costs the gateway's core nothing; with PROXY_TRACE_EXPORT=thread, in a thread of the
gateway. Either way the request path only ever appends to a bounded queue: a collector
that is down or slow loses spans, never requests. The SDK is imported here only, so a
gateway without tracing never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxy.settings.tracing import TracingConfig
from proxy.tracing.recorder import Recorder
from proxy.tracing.span_queue import SpanQueue
from proxy.tracing.span_wire import WireSpan, from_wire

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.sampling import Sampler

SCOPE_NAME = "octomil-gateway"
SpanExport = SpanQueue


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

    exporter = _exporter_process(config, version) if config.export_process else _InThread(config, version)
    # The exporter gets the export timeout to flush at shutdown, and a second to exit.
    queue = SpanQueue(exporter.deliver, exporter.shutdown, queue_size=config.queue_size,
                      batch_size=config.batch_size, close_timeout=config.export_timeout + 1)
    return Recorder(_sampler(config), RandomIdGenerator(), queue.put), queue


def resource(config: TracingConfig, version: str) -> Resource:
    from opentelemetry.sdk.resources import Resource

    return Resource({
        **dict(config.resource_attributes),
        "service.name": config.service_name,
        "service.version": version,
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    })


def _exporter_process(config: TracingConfig, version: str) -> Any:
    from proxy.tracing.exporter_process import ExporterProcess

    return ExporterProcess({
        "endpoint": str(config.endpoint), "headers": config.headers, "export_timeout": config.export_timeout,
        "export_every": config.export_every, "queue_size": config.queue_size, "batch_size": config.batch_size,
        "resource": tuple(resource(config, version).attributes.items()),
        "scope_name": SCOPE_NAME, "scope_version": version,
    })


def batch_processor(endpoint: str, headers: dict[str, str], *, export_timeout: float, export_every: float,
                    queue_size: int, batch_size: int) -> Any:
    """The official BatchSpanProcessor and OTLP/HTTP exporter, every setting passed explicitly
    (left unset, the SDK would read the environment itself)."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=export_timeout,
                                compression=Compression.NoCompression)
    return BatchSpanProcessor(
        exporter, max_queue_size=queue_size, schedule_delay_millis=export_every * 1000,
        max_export_batch_size=batch_size, export_timeout_millis=export_timeout * 1000)


class _InThread:
    """PROXY_TRACE_EXPORT=thread: the SDK's processor and exporter in the gateway's process."""

    def __init__(self, config: TracingConfig, version: str) -> None:
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        self._resource = resource(config, version)
        self._scope = InstrumentationScope(SCOPE_NAME, version)
        self._processor = batch_processor(str(config.endpoint), dict(config.headers),
                                          export_timeout=config.export_timeout, export_every=config.export_every,
                                          queue_size=config.queue_size, batch_size=config.batch_size)

    def deliver(self, batch: list[WireSpan]) -> bool:
        for wire in batch:
            self._processor.on_end(from_wire(wire, self._resource, self._scope))
        return True

    def shutdown(self, timeout: float) -> None:
        self._processor.shutdown()

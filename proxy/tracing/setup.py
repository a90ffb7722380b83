"""The OpenTelemetry SDK, built from `TracingConfig` alone.

One TracerProvider per app (not the process-global one, which can be set only once):
a sampler from OTEL_TRACES_SAMPLER, a resource naming the service, and the official
OTLP/HTTP exporter behind a BatchSpanProcessor. The processor queues finished spans and
exports them from its own thread every few seconds, so the request path only ever
appends to a queue; a collector that is down or slow loses spans (the queue is bounded),
never requests. The SDK is imported here only, so a gateway without tracing never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.settings.tracing import TracingConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

# The SDK's defaults, passed explicitly: left unset, the SDK would read the environment itself.
_QUEUE_SIZE = 2048
_BATCH_SIZE = 512


def _sampler(config: TracingConfig) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    ratio = sampling.TraceIdRatioBased(config.sampler_ratio)
    roots: dict[str, Sampler] = {"always_on": sampling.ALWAYS_ON, "always_off": sampling.ALWAYS_OFF,
                                 "traceidratio": ratio}
    kind = config.sampler.removeprefix("parentbased_")
    root = roots[kind]
    return sampling.ParentBased(root) if config.sampler.startswith("parentbased_") else root


def tracer_provider(config: TracingConfig, version: str) -> TracerProvider:
    """A provider exporting to `config.endpoint`; shut it down to flush what is queued."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource({
        **dict(config.resource_attributes),
        "service.name": config.service_name,
        "service.version": version,
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    })
    provider = TracerProvider(sampler=_sampler(config), resource=resource, shutdown_on_exit=False)
    exporter = OTLPSpanExporter(endpoint=str(config.endpoint), headers=dict(config.headers),
                                timeout=config.export_timeout, compression=Compression.NoCompression)
    provider.add_span_processor(BatchSpanProcessor(
        exporter, max_queue_size=_QUEUE_SIZE, schedule_delay_millis=config.export_every * 1000,
        max_export_batch_size=_BATCH_SIZE, export_timeout_millis=config.export_timeout * 1000))
    return provider


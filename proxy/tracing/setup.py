"""The OpenTelemetry SDK, built from `TracingConfig` alone.

One TracerProvider per app (not the process-global one, which can be set only once):
a sampler from OTEL_TRACES_SAMPLER, a resource naming the service, and the official
OTLP/HTTP exporter behind a BatchSpanProcessor, which exports batches every few seconds.
By default the exporter runs in a child process fed through a pipe
(tracing/exporter_process.py), so its protobuf encoding costs the gateway's core nothing;
with PROXY_TRACE_EXPORT=thread it runs in a thread of the gateway. Either way the request
path only ever appends to a bounded queue: a collector that is down or slow loses spans,
never requests. The SDK is imported here only, so a gateway without tracing never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.settings.tracing import TracingConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

# The SDK's defaults, passed explicitly: left unset, the SDK would read the environment itself.
_QUEUE_SIZE = 2048
_BATCH_SIZE = 512
SCOPE_NAME = "octomil-gateway"


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
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(sampler=_sampler(config), resource=_resource(config, version), shutdown_on_exit=False)
    provider.add_span_processor(_exporting_processor(config, version) if config.export_process
                                else _batch_processor(config, version))
    return provider


def _resource(config: TracingConfig, version: str) -> Resource:
    from opentelemetry.sdk.resources import Resource

    return Resource({
        **dict(config.resource_attributes),
        "service.name": config.service_name,
        "service.version": version,
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    })


def _exporting_processor(config: TracingConfig, version: str) -> SpanProcessor:
    """Spans piped to the exporter process (tracing/exporter_process.py), the default."""
    from proxy.tracing.exporter_process import ExporterProcess, SpanPipe

    exporter = ExporterProcess({
        "endpoint": str(config.endpoint), "headers": config.headers, "export_timeout": config.export_timeout,
        "export_every": config.export_every, "queue_size": _QUEUE_SIZE, "batch_size": _BATCH_SIZE,
        "resource": tuple(_resource(config, version).attributes.items()),
        "scope_name": SCOPE_NAME, "scope_version": version,
    })
    # The exporter gets the export timeout to flush at shutdown, and a second to exit.
    return SpanPipe(exporter, queue_size=_QUEUE_SIZE, batch_size=_BATCH_SIZE,
                    close_timeout=config.export_timeout + 1)


def _batch_processor(config: TracingConfig, version: str) -> SpanProcessor:
    """The SDK's batch processor and exporter in a thread of the gateway (PROXY_TRACE_EXPORT=thread)."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = OTLPSpanExporter(endpoint=str(config.endpoint), headers=dict(config.headers),
                                timeout=config.export_timeout, compression=Compression.NoCompression)
    return BatchSpanProcessor(
        exporter, max_queue_size=_QUEUE_SIZE, schedule_delay_millis=config.export_every * 1000,
        max_export_batch_size=_BATCH_SIZE, export_timeout_millis=config.export_timeout * 1000)

"""Finished spans encoded (tracing/otlp_encoding.py) and sent by the official OTLP/HTTP exporter's client.

Of the official `OTLPSpanExporter` this uses what comes after its encoder: the HTTP client
that posts an export request and retries it (on 429, 502, 503 and 504, with jittered
exponential backoff and the collector's Retry-After, and at once after a dropped
connection, all within the export timeout), the endpoint and headers, and the TLS settings
it reads itself (OTEL_EXPORTER_OTLP_CERTIFICATE and the client certificate variables). That
client is the exporter's `_client`, not a public name: the exporter's version is pinned to
the minor release this was written against (pyproject.toml), and the tests in
tests/observability/ export through it to a receiver.

A batch is sent as one export request, or several when its spans add up to more than
MAX_REQUEST_BYTES; a span over that alone (a very long prompt, with content capture on) is
dropped and counted ("too_large"), as are the spans of a request the collector refused or
never answered ("export_failed") and a span that cannot be encoded ("unencodable": a name
that is not valid Unicode; an attribute that cannot be is left out, the span kept).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from proxy.tracing.otlp_encoding import ExportRequest, encode_span
from proxy.tracing.span_wire import WireSpan

# One export request at most: the 4 MiB a gRPC-based collector takes by default, well under
# the OpenTelemetry Collector's 20 MiB for OTLP/HTTP.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
SCOPE_NAME = "octomil-gateway"  # the instrumentation scope of every span, with the gateway's version

log = logging.getLogger(__name__)


class OtlpExport:
    """Encodes and sends batches of finished spans. Used by one thread."""

    def __init__(self, endpoint: str, headers: Mapping[str, str], timeout: float, resource: Mapping[str, Any],
                 version: str, dropped: Callable[[str, int], None]) -> None:
        """Every setting passed explicitly (left unset, the exporter would read the environment itself)."""
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self._exporter: Any = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers), timeout=timeout,
                                               compression=Compression.NoCompression)
        self._client: Any = self._exporter._client  # a private name: see the module's doc
        self._request = ExportRequest(resource, SCOPE_NAME, version)
        self._dropped = dropped

    def deliver(self, batch: list[WireSpan]) -> bool:
        """Sends `batch`, counting what the collector did not take; True: nothing is left to count."""
        request: list[bytes] = []
        size = 0
        for wire in batch:
            try:
                span = encode_span(wire)
            except (TypeError, ValueError):  # a name that is not valid Unicode: the span alone is lost
                log.warning("a span could not be encoded and is dropped", exc_info=True)
                self._dropped("unencodable", 1)
                continue
            if len(span) > MAX_REQUEST_BYTES:
                self._dropped("too_large", 1)
                continue
            if size + len(span) > MAX_REQUEST_BYTES:
                self._send(request)
                request, size = [], 0
            request.append(span)
            size += len(span)
        if request:
            self._send(request)
        return True

    def _send(self, spans: list[bytes]) -> None:
        if not self._client.export(self._request.of(spans)).success:
            self._dropped("export_failed", len(spans))

    def close(self, _timeout: float) -> None:
        """Ends any retry still waiting, and closes the connections."""
        self._exporter.shutdown()

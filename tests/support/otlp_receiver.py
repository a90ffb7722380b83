"""An OTLP/HTTP trace receiver for tests: POST /v1/traces, decoded with OpenTelemetry's own
protobuf messages (opentelemetry-proto), as a collector would.

Spans are kept flattened (ids as hex, attributes as plain values) so tests can read the
trace as an operator's tool would show it.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Callable
from typing import Any

from aiohttp import web
from attrs import define, field
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

KINDS = {Span.SPAN_KIND_SERVER: "SERVER", Span.SPAN_KIND_CLIENT: "CLIENT", Span.SPAN_KIND_INTERNAL: "INTERNAL"}


@define
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status: str
    status_message: str
    resource: dict[str, Any]
    start_ns: int
    end_ns: int


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


@define
class OtlpReceiver:
    """A collector. `unavailable` makes it answer 503 (a collector restarting); `stuck` makes it
    read each export and never answer until `stuck` is set again (a collector hung on its disk)."""

    spans: list[ReceivedSpan] = field(factory=list)
    requests: list[dict[str, str]] = field(factory=list)  # the headers of each export
    spans_per_request: list[int] = field(factory=list)
    unavailable: bool = False
    stuck: asyncio.Event | None = None
    _changed: asyncio.Event = field(factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=20 * 1024 * 1024)  # the OpenTelemetry Collector's default
        app.router.add_post("/v1/traces", self._export)
        return app

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.stuck is not None:
            await self.stuck.wait()
        if self.unavailable:
            return web.Response(status=503, text="collector unavailable")
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415, text="expected application/x-protobuf")
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.requests.append(dict(request.headers))
        self.spans_per_request.append(sum(len(s.spans) for r in message.resource_spans for s in r.scope_spans))
        for resource_spans in message.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(self._flat(span, resource) for span in scope_spans.spans)
        self._changed.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    @staticmethod
    def _flat(span: Span, resource: dict[str, Any]) -> ReceivedSpan:
        return ReceivedSpan(
            name=span.name, kind=KINDS.get(span.kind, str(span.kind)), trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(), parent_span_id=span.parent_span_id.hex(),
            attributes=_attributes(span.attributes),
            events=[(event.name, _attributes(event.attributes)) for event in span.events],
            status={Status.STATUS_CODE_ERROR: "ERROR", Status.STATUS_CODE_OK: "OK"}.get(span.status.code, "UNSET"),
            status_message=span.status.message, resource=resource,
            start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
        )

    async def wait_until(self, done: Callable[[list[ReceivedSpan]], bool], limit: float = 15.0) -> list[ReceivedSpan]:
        """The spans, once `done(spans)` holds; bounded so a broken exporter fails the test."""
        async with asyncio.timeout(limit):
            while not done(self.spans):
                self._changed.clear()
                await self._changed.wait()
        return self.spans

    async def trace_of(self, request_id: str, spans: int) -> list[ReceivedSpan]:
        """The `spans` spans of the trace whose server span has this request id, server span first."""

        def whole(received: list[ReceivedSpan]) -> list[ReceivedSpan]:
            roots = [s for s in received if s.attributes.get("gateway.request_id") == request_id]
            if not roots:
                return []
            return [roots[0], *(s for s in received if s.trace_id == roots[0].trace_id and s is not roots[0])]

        await self.wait_until(lambda received: len(whole(received)) >= spans)
        return whole(self.spans)


def main() -> None:
    """`python -m tests.support.otlp_receiver [PORT]`: print each span as it arrives (docs/tracing.md)."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318

    class Printing(OtlpReceiver):
        async def _export(self, request: web.Request) -> web.Response:
            before = len(self.spans)
            response = await super()._export(request)
            for span in self.spans[before:]:
                parent = span.parent_span_id or "-"
                print(f"{span.kind:<6} {span.name!r} trace={span.trace_id} span={span.span_id} parent={parent}")
                for key, value in sorted(span.attributes.items()):
                    print(f"         {key} = {value!r}")
                for name, attributes in span.events:
                    print(f"         event {name} {attributes}")
            sys.stdout.flush()
            return response

    web.run_app(Printing().app(), host="127.0.0.1", port=port, print=lambda *_: None)


if __name__ == "__main__":
    main()

"""Sending encoded spans (proxy/tracing/otlp_export.py) with the official exporter's client to a
receiver: export requests kept under their size bound, and what could not be sent counted."""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp.test_utils import TestServer

from proxy.tracing.otlp_export import MAX_REQUEST_BYTES, OtlpExport
from proxy.tracing.recorder import SERVER
from proxy.tracing.span_wire import WireSpan
from tests.support.otlp_receiver import OtlpReceiver


def span(number: int, prompt_bytes: int = 0) -> WireSpan:
    attributes = {"gateway.request_id": f"req-{number}"}
    if prompt_bytes:
        attributes["gen_ai.input.messages"] = "p" * prompt_bytes
    return ("POST /v1/chat/completions", number + 1, number + 1, 1, "", 0, False, SERVER, 1_000, 2_000, attributes,
            (), 0, None)


def export_to(server: TestServer, dropped: Counter[str], timeout: float = 5.0) -> OtlpExport:
    return OtlpExport(str(server.make_url("/v1/traces")), {"x-api-key": "k"}, timeout,
                      {"service.name": "gateway-under-test"}, "1.2.3",
                      lambda reason, spans: dropped.update({reason: spans}))


async def test_a_batch_over_the_request_size_goes_as_several_requests(
    receiver: tuple[OtlpReceiver, TestServer],
) -> None:
    spans, server = receiver
    dropped: Counter[str] = Counter()
    export = export_to(server, dropped)
    third = MAX_REQUEST_BYTES // 3
    batch = [span(n, third) for n in range(5)] + [span(5, MAX_REQUEST_BYTES + 1), span(6)]
    assert await asyncio.to_thread(export.deliver, batch)
    export.close(1)
    assert dropped == {"too_large": 1}
    assert [s.attributes["gateway.request_id"] for s in spans.spans] == [f"req-{n}" for n in (0, 1, 2, 3, 4, 6)]
    assert len(spans.requests) == 3  # two spans of a third fit with the envelope, not three; then the rest
    assert all(request["x-api-key"] == "k" for request in spans.requests)
    assert spans.spans[0].resource["service.name"] == "gateway-under-test"


async def test_spans_the_collector_refused_are_counted(receiver: tuple[OtlpReceiver, TestServer]) -> None:
    spans, server = receiver
    spans.unavailable = True
    dropped: Counter[str] = Counter()
    export = export_to(server, dropped, timeout=0.5)  # the client's backoff is longer: no retry
    await asyncio.to_thread(export.deliver, [span(n) for n in range(3)])
    export.close(1)
    assert dropped == {"export_failed": 3}


async def test_a_span_that_cannot_be_encoded_is_counted_and_the_rest_sent(
    receiver: tuple[OtlpReceiver, TestServer],
) -> None:
    spans, server = receiver
    dropped: Counter[str] = Counter()
    export = export_to(server, dropped)
    unencodable = ("lone \ud800 surrogate", *span(1)[1:])
    await asyncio.to_thread(export.deliver, [span(0), unencodable, span(2)])
    export.close(1)
    assert dropped == {"unencodable": 1}
    assert [s.attributes["gateway.request_id"] for s in spans.spans] == ["req-0", "req-2"]

"""The request path's spans (proxy/tracing/recorder.py), through the pipe to the exporter
process (proxy/tracing/span_wire.py), and their encoding there (proxy/tracing/otlp_encoding.py)
against the SDK's own: the same calls must give the same OTLP protobuf as the SDK's Tracer
and official encoder would (byte for byte for the same span values), and the same sampling
decisions."""

from __future__ import annotations

import enum
import io
import itertools
import logging
import random
import string
import tracemalloc
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from proxy.tracing.otlp_encoding import ExportRequest, encode_span
from proxy.tracing.recorder import CLIENT, SERVER, Recorder
from proxy.tracing.span_wire import MAX_FRAME, WireSpan, frame, read_frame

RESOURCE = Resource({"service.name": "gateway-under-test", "service.version": "1.2.3"})
SCOPE_NAME, SCOPE_VERSION = "octomil-gateway", "1.2.3"
SCOPE = InstrumentationScope(SCOPE_NAME, SCOPE_VERSION)
REQUEST = ExportRequest(dict(RESOURCE.attributes), SCOPE_NAME, SCOPE_VERSION)
SAMPLED_CALLER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=abc"}
UNSAMPLED_CALLER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
START = {"http.request.method": "POST", "http.route": "/v1/chat/completions"}
ATTEMPT = {"gen_ai.request.model": "gemma3:1b", "server.port": 11434}
ANSWERED = {"gen_ai.response.finish_reasons": ("stop",), "gen_ai.usage.input_tokens": 128}
FINISHED = {"http.response.status_code": 200, "ratio": 0.5, "gateway.cached": False}


class CountingIds(IdGenerator):
    """The same ids, in the same order, for both tracers."""

    def __init__(self) -> None:
        self._next = itertools.count(0x1000)

    def generate_span_id(self) -> int:
        return next(self._next)

    def generate_trace_id(self) -> int:
        return 0x5B8EFFF798038103D269B633813FC60C

    def is_trace_id_random(self) -> bool:
        return False


class Ended(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:  # what the batch processor exports
            self.spans.append(span)


def through_the_sdk(sampler: Sampler, caller: dict[str, str]) -> list[ReadableSpan]:
    provider = TracerProvider(sampler=sampler, resource=RESOURCE, id_generator=CountingIds(), shutdown_on_exit=False)
    ended = Ended()
    provider.add_span_processor(ended)
    tracer = provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)
    server = tracer.start_span("POST /v1/chat/completions", context=TraceContextTextMapPropagator().extract(caller),
                               kind=trace.SpanKind.SERVER, attributes=dict(START), start_time=1_000)
    attempt = tracer.start_span("chat gemma3:1b", context=trace.set_span_in_context(server),
                                kind=trace.SpanKind.CLIENT, attributes=dict(ATTEMPT))
    attempt.add_event("gen_ai.first_token")
    attempt.set_attributes({**ANSWERED, "error.type": "upstream_unavailable"})
    attempt.set_status(Status(StatusCode.ERROR, "upstream_unavailable"))
    attempt.end()
    server.set_attributes(FINISHED)
    server.add_event("gen_ai.first_token", {"gen_ai.server.time_to_first_token": 0.0123}, timestamp=2_000)
    server.end()
    return ended.spans


def through_the_gateway(sampler: Sampler, caller: dict[str, str]) -> list[bytes]:
    """Recorded, piped to the exporter process, encoded there."""
    ended: list[WireSpan] = []
    recorder = Recorder(sampler, CountingIds(), ended.append)
    server = recorder.server_span_at("POST /v1/chat/completions", recorder.trace_of(caller), dict(START), 1_000)
    attempt = recorder.child_span(server, "chat gemma3:1b", dict(ATTEMPT))
    attempt.add_event("gen_ai.first_token")
    attempt.attributes.update({**ANSWERED, "error.type": "upstream_unavailable"})
    attempt.fail("upstream_unavailable")
    attempt.end()
    server.attributes.update(FINISHED)
    server.add_event("gen_ai.first_token", {"gen_ai.server.time_to_first_token": 0.0123}, timestamp=2_000)
    server.end()
    return [encode_span(wire) for wire in read_frame(io.BytesIO(frame(ended)))]


def otlp(spans: list[ReadableSpan] | list[bytes]) -> ExportTraceServiceRequest:
    """The export request (the gateway's, or the official encoder's for the SDK's spans), with
    the clock's readings left out (the two runs differ)."""
    message = ExportTraceServiceRequest()
    ours = all(isinstance(span, bytes) for span in spans)
    message.ParseFromString(REQUEST.of(spans) if ours else encode_spans(spans).SerializeToString())  # type: ignore[arg-type]
    for resource_spans in message.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.end_time_unix_nano = 0
                if span.kind == span.SPAN_KIND_CLIENT:
                    span.start_time_unix_nano = 0
                    for event in span.events:
                        event.time_unix_nano = 0
    return message


@pytest.mark.parametrize("caller", [SAMPLED_CALLER, {}], ids=["under a caller", "a new trace"])
def test_the_gateways_spans_encode_exactly_as_the_sdks(caller: dict[str, str]) -> None:
    sampler = ParentBased(ALWAYS_ON)
    ours, sdks = through_the_gateway(sampler, caller), through_the_sdk(sampler, caller)
    assert len(ours) == 2
    assert otlp(ours) == otlp(sdks)
    attempt, server = otlp(ours).resource_spans[0].scope_spans[0].spans
    assert attempt.parent_span_id == server.span_id
    if caller:
        assert server.parent_span_id == bytes.fromhex("b7ad6b7169203331")
        assert server.trace_state == "vendor=abc"


@pytest.mark.parametrize(("sampler", "caller"), [
    (ParentBased(ALWAYS_ON), UNSAMPLED_CALLER), (ParentBased(ALWAYS_OFF), SAMPLED_CALLER),
    (ParentBased(ALWAYS_OFF), {}), (ALWAYS_OFF, SAMPLED_CALLER), (ALWAYS_ON, UNSAMPLED_CALLER),
    (TraceIdRatioBased(0.0), {}), (TraceIdRatioBased(1.0), {}), (ParentBased(TraceIdRatioBased(0.0)), SAMPLED_CALLER),
])
def test_sampling_decides_as_the_sdk_does(sampler: Sampler, caller: dict[str, Any]) -> None:
    ours, sdks = through_the_gateway(sampler, caller), through_the_sdk(sampler, caller)
    assert len(ours) == len(sdks)
    assert otlp(ours) == otlp(sdks)


class Colour(enum.Enum):
    RED = "red"


class Named(str, enum.Enum):  # noqa: UP042 (str() gives its name, not its value: the case to get right)
    MODEL = "gemma3:1b"


class Count(enum.IntEnum):
    TWO = 2


def a_value(rng: random.Random) -> Any:
    """Any attribute value: the gateway's own (strings, ints, floats, booleans, tuples of
    strings), edge cases, and what the official encoder also takes or leaves out."""
    kind = rng.randrange(11)
    if kind == 0:
        return "".join(rng.choices(string.printable + "é漢🙂", k=rng.choice([0, 1, 20, 127, 128, 300, 20000])))
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, 127, 128, 200, 11434, 2**31, 2**63 - 1, -1, -(2**63)])
    if kind == 3:
        return rng.choice([0.0, 0.0123, -1.5, 1e300, 1.0, float("nan"), float("inf"), -0.0])
    if kind == 4:
        return tuple(rng.choice(["stop", "length", "tool_calls", ""]) for _ in range(rng.randrange(4)))
    if kind == 5:
        return tuple(rng.randrange(-5, 300) for _ in range(rng.randrange(1, 4)))
    if kind == 6:  # one key's values keep coming back: the cache's path
        return rng.choice(["gemma3:1b", "llama3.2", 200, 1, True, 1.0, ("stop",), "x" * 300, ("y" * 300,)])
    if kind == 7:  # what the official encoder takes besides
        return rng.choice([None, b"\x00\xffbytes", ["a", 1, True], ("a", 1.5, False), {"k": "v", "n": 2},
                           Named.MODEL, Count.TWO, []])
    if kind == 8:  # what it leaves out: the attribute is dropped
        return rng.choice([2**63, -(2**63) - 1, 2**64 + 5, "lone \ud800 surrogate", ("ok", None), Colour.RED])
    if kind == 9:
        return ("unhashable", ["list"])
    return f"req-{rng.getrandbits(48):012x}"


def a_span(rng: random.Random) -> WireSpan:
    """A finished span of any shape the recorder makes, as the exporter process gets it."""
    keys = [f"gen_ai.key.{n}" for n in range(12)] + [""]  # few keys: they come back with other values and types
    parent_id = rng.choice([0, rng.getrandbits(64) or 1])
    events = tuple((rng.choice(["gen_ai.first_token", ""]), rng.choice([0, rng.getrandbits(63) or 1]),
                    {rng.choice(keys): a_value(rng) for _ in range(rng.randrange(3))}) for _ in range(rng.randrange(3)))
    failed = rng.random() < 0.3
    return (rng.choice(["POST /v1/chat/completions", "chat gemma3:1b", "é" * 200, ""]), rng.getrandbits(128) or 1,
            rng.getrandbits(64) or 1, 1, rng.choice(["", "vendor=abc", "a=1,b=2"]), parent_id,
            bool(parent_id) and rng.random() < 0.5, rng.choice([SERVER, CLIENT]), rng.choice([0, rng.getrandbits(63)]),
            rng.getrandbits(63) or 1, {rng.choice(keys): a_value(rng) for _ in range(rng.randrange(0, 16))}, events,
            2 if failed else 0, rng.choice(["upstream_unavailable", "HTTP 502", "x" * 200]) if failed else None)


def as_the_sdks(wire: WireSpan) -> ReadableSpan:
    """The same span as the SDK's own ReadableSpan, which its Tracer would have made."""
    (name, trace_id, span_id, flags, state, parent_id, parent_remote, kind, start, end, attributes, events,
     status_code, status_description) = wire
    trace_state = TraceState.from_header([state]) if state else None
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags), trace_state=trace_state)
    parent = (SpanContext(trace_id, parent_id, is_remote=parent_remote, trace_flags=TraceFlags(flags))
              if parent_id else None)
    return ReadableSpan(
        name=name, context=context, parent=parent, resource=RESOURCE, attributes=dict(attributes),
        events=tuple(Event(event_name, dict(event_attributes), at) for event_name, at, event_attributes in events),
        kind=SpanKind(kind), status=Status(StatusCode(status_code), status_description),
        start_time=start, end_time=end, instrumentation_scope=SCOPE)


def test_every_shape_of_span_encodes_to_the_official_encoders_bytes() -> None:
    """Byte for byte, one span at a time and in batches: strings of every length (one- and
    two-byte length prefixes, multi-byte UTF-8), every int64, doubles, booleans, arrays, the
    same key with values of different types (True, 1 and 1.0 are equal as dict keys), the
    types the official encoder also takes (None, bytes, lists, mappings, enums) and those it
    leaves out (ints beyond int64, invalid Unicode, None in an array), empty names and keys,
    zero timestamps, events, error statuses, trace states, remote, local and no parents."""
    rng = random.Random(20261201)
    logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal").disabled = True  # its refusals, logged
    for size in [1] * 1000 + [2, 7, 50]:
        spans = [a_span(rng) for _ in range(size)]
        ours = REQUEST.of([encode_span(span) for span in spans])
        assert ours == encode_spans([as_the_sdks(span) for span in spans]).SerializeToString()


def test_an_attribute_the_protocol_cannot_carry_is_left_out_and_named_once(caplog: pytest.LogCaptureFixture) -> None:
    span = a_span(random.Random(1))
    kept = {"gateway.request_id": "req-1"}
    for count in (2**64, 2**65):  # the second is not logged again
        encoded = encode_span((*span[:10], {**kept, "gateway.refused": count}, (), 0, None))
        assert encoded == encode_span((*span[:10], kept, (), 0, None))
    assert [r.getMessage() for r in caplog.records if "gateway.refused" in r.getMessage()] == [
        "span attribute 'gateway.refused' left out (and from now on when it cannot be exported): ValueError"]


def test_a_captured_prompt_is_not_kept_by_the_encoder() -> None:
    """Content capture puts whole prompts in attributes; the attribute cache keeps short values only."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(40):
            wire = a_span(random.Random(number))
            encode_span((*wire[:10], {"gen_ai.input.messages": f"{number}" + "p" * 1024 * 1024}, (), 0, None))
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1024 * 1024  # 40 MiB went through


def test_a_frame_cut_short_or_claiming_too_much_is_refused() -> None:
    whole = frame([("a",)])
    with pytest.raises(EOFError):
        read_frame(io.BytesIO(whole[:-1]))
    with pytest.raises(EOFError):  # the writer closed the pipe
        read_frame(io.BytesIO(b""))
    with pytest.raises(ValueError, match="over the"):
        read_frame(io.BytesIO((MAX_FRAME + 1).to_bytes(4, "big") + b"x"))


class EveryOtherTrace(Sampler):
    """A sampler the recorder does not know: it must ask the SDK's should_sample."""

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None, attributes: Any = None,
                      links: Any = None, trace_state: Any = None) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if trace_id % 2 else Decision.DROP
        return SamplingResult(decision, None, trace.get_current_span(parent_context).get_span_context().trace_state)

    def get_description(self) -> str:
        return "EveryOtherTrace"


class SeededIds(RandomIdGenerator):
    def __init__(self) -> None:
        self._random = random.Random(17)

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128)


CALLERS = [{}, SAMPLED_CALLER, UNSAMPLED_CALLER, {"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"},
           {"traceparent": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
           {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=1,b=2"}]


@pytest.mark.parametrize("sampler", [
    ALWAYS_ON, ALWAYS_OFF, TraceIdRatioBased(0.3), ParentBased(ALWAYS_ON), ParentBased(ALWAYS_OFF),
    ParentBased(TraceIdRatioBased(0.05)), ParentBased(TraceIdRatioBased(0.5)), EveryOtherTrace(),
    ParentBased(ALWAYS_ON, remote_parent_not_sampled=TraceIdRatioBased(0.5)),
], ids=lambda sampler: sampler.get_description())
def test_the_recorders_decision_is_the_sdks_for_every_trace(sampler: Sampler) -> None:
    """The recorder decides without asking the SDK for the samplers it knows: for many trace ids,
    with and without a caller (valid or not), the decision and trace state are the SDK's."""
    propagator = TraceContextTextMapPropagator()
    for caller in CALLERS:
        ids = SeededIds()
        recorder = Recorder(sampler, SeededIds(), lambda _span: None)
        for _ in range(200):
            ours = recorder.trace_of(caller)
            context = propagator.extract(caller)
            parent = trace.get_current_span(context).get_span_context()
            trace_id = parent.trace_id if parent.is_valid else ids.generate_trace_id()
            sdks = sampler.should_sample(context if parent.is_valid else None, trace_id, "POST /v1/chat/completions",
                                         trace.SpanKind.SERVER)
            assert ours.trace_id == trace_id
            assert ours.parent_id == (parent.span_id if parent.is_valid else 0)
            assert ours.sampled == sdks.decision.is_sampled()
            assert ours.trace_state == (sdks.trace_state.to_header() if ours.sampled and sdks.trace_state else "")

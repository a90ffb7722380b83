"""Spans: one SERVER span per request, one CLIENT span per upstream attempt.

Named and attributed by the OpenTelemetry GenAI semantic conventions: an attempt is
`{gen_ai.operation.name} {gen_ai.request.model}` with `gen_ai.provider.name`,
`gen_ai.request.model` (the name the backend knows), `gen_ai.response.model`,
`gen_ai.usage.input_tokens` / `output_tokens` and `gen_ai.response.finish_reasons`; one
that failed carries `error.type` (the gateway's error code, e.g. `upstream_unavailable`)
and an ERROR status, and the next attempt follows it. The request's span (`POST
/v1/chat/completions`) adds the caller's key name (`gateway.key.name`), the public model
(`gateway.model`, also its `gen_ai.request.model`), the totals, and the time to first
token as an event (`gen_ai.first_token`).

No prompt or answer text is recorded unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
is true (the conventions' opt-in): then `gen_ai.input.messages` and, for single-shot
answers, `gen_ai.output.messages`. Error messages are left out too, since an upstream's
message can quote the prompt: the code says what went wrong.

Nothing here runs while tracing is off: the middleware is not installed, and `current()`
is None for the router, which then creates nothing. A request that is not sampled is an
`UnsampledRequest`: no span, only the trace context its upstream calls carry. Spans are recorded by
tracing/recorder.py and exported by the official SDK outside the request path.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, final

import orjson
from attrs import define, field

from proxy.backends.outbound import OUTBOUND
from proxy.tracing.recorder import LiveSpan, Recorder

if TYPE_CHECKING:
    from proxy.llm import Message, Usage

_CURRENT: ContextVar[RequestSpan | UnsampledRequest | None] = ContextVar("request_span", default=None)


def current() -> RequestSpan | UnsampledRequest | None:
    """The span of the request being served in this task, None while tracing is off."""
    return _CURRENT.get()


@final
class UnsampledRequest:
    """A traced request the sampler left out: nothing is recorded, but each upstream attempt
    still gets a `traceparent` of its own (the trace's id, a new span id, the sampled flag
    off), as the SDK's non-recording spans would send, so the upstream can follow the
    caller's decision."""

    __slots__ = ("new_span_id", "outbound", "prefix")

    def __init__(self, trace_id: int, new_span_id: Callable[[], int], request_id: str, tracestate: str | None
                 ) -> None:
        self.prefix = f"00-{trace_id:032x}-"
        self.new_span_id = new_span_id
        self.outbound = {"X-Request-ID": request_id}
        if tracestate:
            self.outbound["tracestate"] = tracestate

    def enter(self) -> None:
        _CURRENT.set(self)

    def attempt(self) -> None:
        """An upstream attempt starts: its trace context, for the upstream."""
        OUTBOUND.set({**self.outbound, "traceparent": f"{self.prefix}{self.new_span_id():016x}-00"})


@define
class RequestSpan:
    span: LiveSpan
    recorder: Recorder
    capture_content: bool
    request_id: str
    tracestate: str | None = None
    finish_reasons: list[str] = field(factory=list)
    response_model: str | None = None
    operation: str | None = None

    def enter(self) -> None:
        _CURRENT.set(self)

    def attempt(self, operation: str, provider: str, backend: str, model: str, server: Any) -> AttemptSpan:
        """A CLIENT span for one upstream attempt; the upstream gets it as its parent."""
        self.operation = self.operation or operation
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gateway.backend": backend,
        }
        if server is not None and server.host:
            attributes["server.address"] = server.host
            attributes["server.port"] = server.port
        span = self.recorder.child_span(self.span, f"{operation} {model}", attributes)
        outbound = {"X-Request-ID": self.request_id, "traceparent": span.traceparent}
        if self.tracestate:
            outbound["tracestate"] = self.tracestate
        OUTBOUND.set(outbound)
        return AttemptSpan(span=span, owner=self, model=model)


@define
class AttemptSpan:
    span: LiveSpan
    owner: RequestSpan
    model: str

    def first_token(self) -> None:
        self.span.add_event("gen_ai.first_token")

    def prompt(self, messages: tuple[Message, ...] | tuple[str, ...]) -> None:
        if self.owner.capture_content and self.span.sampled:
            self.span.attributes["gen_ai.input.messages"] = _messages_json(messages)

    def succeeded(self, usage: Usage | None, finish_reason: str | None = None, output: str | None = None) -> None:
        if finish_reason:
            self.owner.finish_reasons.append(finish_reason)
        self.owner.response_model = self.model
        if not self.span.sampled:
            return
        attributes = self.span.attributes
        attributes["gen_ai.response.model"] = self.model
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
        if finish_reason:
            attributes["gen_ai.response.finish_reasons"] = (finish_reason,)
        if output is not None and self.owner.capture_content:
            attributes["gen_ai.output.messages"] = orjson.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": output}]}]).decode()
        self.span.end()

    def failed(self, code: str) -> None:
        self.span.attributes["error.type"] = code
        self.span.fail(code)
        self.span.end()


def _messages_json(messages: tuple[Message, ...] | tuple[str, ...]) -> str:
    return orjson.dumps([
        {"role": "user", "parts": [{"type": "text", "content": m}]} if isinstance(m, str)
        else {"role": m.role, "parts": [{"type": "text", "content": m.content}]}
        for m in messages
    ]).decode()


def first_token_event(span: LiveSpan, started_ns: int, started: float, first_token_at: float) -> None:
    """The time to first token as an event at the moment it left, with its seconds."""
    seconds = first_token_at - started
    span.add_event("gen_ai.first_token", {"gen_ai.server.time_to_first_token": round(seconds, 6)},
                   timestamp=started_ns + int(seconds * 1e9))


"""Each upstream attempt as a CLIENT span (proxy/tracing/spans.py), while tracing is on.

The router asks `Asked.span` when it starts an attempt and `end_span` when the attempt
ends: with the answer (usage, finish reason) or with the error that moved the request on.
While tracing is off, `span` returns None after one context-variable read; for a request
that is not sampled, after setting the upstream's trace context.
"""

from __future__ import annotations

import asyncio
import functools

from attrs import frozen
from yarl import URL

from proxy.backends.base import Backend
from proxy.errors import UpstreamError
from proxy.llm import ChatResult, EmbedResult, Message, StreamEnd, Usage
from proxy.tracing.spans import AttemptSpan, UnsampledRequest, current


def end_span(span: AttemptSpan, error: BaseException | None, answer: object) -> None:
    if isinstance(error, UpstreamError):
        span.failed(error.code)
    elif error is not None:
        span.failed("cancelled" if isinstance(error, asyncio.CancelledError) else type(error).__name__)
    elif isinstance(answer, ChatResult):
        span.succeeded(answer.usage, answer.finish_reason, answer.output)
    elif isinstance(answer, StreamEnd):
        span.succeeded(answer.usage, answer.finish_reason)
    elif isinstance(answer, EmbedResult):
        span.succeeded(Usage(prompt_tokens=answer.prompt_tokens, completion_tokens=0))
    else:
        span.succeeded(None)


@frozen
class Asked:
    """What a request asks, as its attempts' spans name it."""

    operation: str
    model: str
    prompt: tuple[Message, ...] | tuple[str, ...]

    def span(self, backend: Backend, model: str | None) -> AttemptSpan | None:
        """A CLIENT span for asking `backend` (for `model`); None while tracing is off."""
        traced = current()
        if traced is None:
            return None
        if isinstance(traced, UnsampledRequest):
            traced.attempt()
            return None
        span = traced.attempt(self.operation, backend.provider, backend.name, model or self.model,
                              _server(backend.display_url))
        if traced.capture_content:
            span.prompt(self.prompt)
        return span


@functools.lru_cache(maxsize=256)
def _server(display_url: str) -> URL | None:
    """The backend's URL, parsed once per backend rather than once per attempt."""
    try:
        return URL(display_url)
    except ValueError:
        return None

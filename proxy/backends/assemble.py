"""A single-shot chat answer assembled from the upstream's stream.

An upstream asked for one JSON answer (Ollama's and OpenAI's `"stream": false`) sends
nothing until the model has finished: a long answer is indistinguishable from a dead
upstream until then, and could only be bounded by a cap on the whole call. Read as a
stream, the same answer shows its progress, so a single-shot call is bounded like a
stream (connect, headers, first token, silence between chunks) and capped as a whole only
by PROXY_MAX_REQUEST_SECONDS, far above any silence.

`collect` takes any backend's stream of items and a collector that adds them up (the
chat answer here, Ollama's own single answer in ollama_single.py), so thinking and tool
calls are joined the same way for every backend; the backends' readers split a network
read into its lines themselves (wire.py), so a short answer costs few reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any, Protocol, TypeVar

import orjson

from proxy.backends.bounded_reads import MAX_ANSWER_BODY
from proxy.errors import BadUpstreamResponse, UpstreamTimeout
from proxy.llm import ChatResult, LoggedText, ReasoningDelta, StreamEnd, StreamItem, ToolCall, ToolCallDelta
from proxy.settings.config import Timeouts

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)


class _Timers:
    """The first-token deadline, then the whole call's, on one asyncio timer."""

    def __init__(self, timeouts: Timeouts, backend: str, *, cold: bool, started: float) -> None:
        self.timeouts, self.backend, self.started = timeouts, backend, started
        self.first_within = timeouts.cold_start if cold else timeouts.first_token
        self.first_setting = "PROXY_COLD_START_TIMEOUT" if cold else "PROXY_FIRST_TOKEN_TIMEOUT"
        self.timer = asyncio.timeout_at(started + min(self.first_within, timeouts.total))

    def first_token_arrived(self) -> None:
        self.timer.reschedule(self.started + self.timeouts.total)

    def expired(self, exc: TimeoutError, *, any_token: bool) -> UpstreamTimeout:
        total = self.timeouts.total
        if any_token or total <= self.first_within:
            return UpstreamTimeout(f"no complete answer within {total:g} s (PROXY_MAX_REQUEST_SECONDS)",
                                   backend=self.backend)
        return UpstreamTimeout(f"no first token within {self.first_within:g} s ({self.first_setting})",
                               backend=self.backend)


def now() -> float:
    return asyncio.get_running_loop().time()


# A collector's answer past this many characters is refused: each line of a stream is
# capped (wire.MAX_LINE), the lines' sum here, as a body read whole is (read_capped).
TOO_LARGE = f"answer larger than {MAX_ANSWER_BODY} characters"


def within_cap(size: int) -> int:
    """`size`, the characters a collector holds so far, unless it is over the cap."""
    if size > MAX_ANSWER_BODY:
        raise BadUpstreamResponse(TOO_LARGE)  # the backend is named by collect(), which knows it
    return size


class Collector(Protocol[In, Out]):
    """What a stream's items add up to, item by item."""

    def empty(self) -> bool:
        """Whether nothing that counts as a token has arrived yet."""

    def add(self, item: In) -> Out | None:
        """Takes one item; the whole answer once `item` ended the stream, else None."""


async def collect(
    items: AsyncGenerator[In, None], collector: Collector[In, Out], timeouts: Timeouts, backend: str, *, cold: bool,
) -> Out:
    """The stream's items added up by `collector`, within the first-token budget and the
    whole-call cap. The silences in between are the stream's own idle timer (wire.py),
    translated where the stream is read."""
    timers = _Timers(timeouts, backend, cold=cold, started=now())
    waiting = True  # for the first token
    try:
        async with contextlib.aclosing(items), timers.timer:
            async for item in items:
                whole = collector.add(item)
                if whole is not None:
                    return whole
                # Asked only until the first token: after that, one call per item.
                if waiting and not collector.empty():
                    timers.first_token_arrived()
                    waiting = False
    except TimeoutError as exc:
        if not timers.timer.expired():
            raise  # the stream's own timers (connect, silence): translated where the body is read
        raise timers.expired(exc, any_token=not collector.empty()) from exc
    except BadUpstreamResponse as exc:
        exc.backend = exc.backend or backend  # a collector's own refusal (within_cap) names none
        raise
    raise BadUpstreamResponse("the answer ended without its final message", backend=backend)


async def assemble(
    items: AsyncGenerator[StreamItem, None], timeouts: Timeouts, backend: str, *, cold: bool,
) -> ChatResult:
    """The stream's items joined into one answer (text, thinking, tool calls)."""
    return await collect(items, Answer(), timeouts, backend, cold=cold)


class Answer:
    """What the items of one stream add up to (a Collector). A tool call comes as deltas sharing an
    index: the first names it (id, name), the rest carry pieces of its arguments."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.thinking: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, argument pieces...]
        self.logprobs: list[Any] = []  # the entries of every LoggedText, in order
        self.size = 0  # characters held, held to MAX_ANSWER_BODY

    def empty(self) -> bool:
        return not (self.tokens or self.thinking or self.calls)

    def add(self, item: StreamItem) -> ChatResult | None:
        if isinstance(item, str):  # the usual item: text
            self.tokens.append(item)
            self.size += len(item)
            if self.size > MAX_ANSWER_BODY:  # within_cap's check, without its call on every token
                within_cap(self.size)
        elif isinstance(item, StreamEnd):
            return self.result(item)
        elif isinstance(item, LoggedText):
            self.tokens.append(item.text)
            self.logprobs += item.logprobs
            # Asked for only now and then: its entries measured as the JSON they came as.
            self.size = within_cap(self.size + len(item.text) + len(orjson.dumps(item.logprobs)))
        elif isinstance(item, ReasoningDelta):
            self.thinking.append(item.text)
            self.size = within_cap(self.size + len(item.text))
        elif isinstance(item, ToolCallDelta):
            call = self.calls.setdefault(item.index, ["", ""])
            call[0] = call[0] or (item.id or "")
            call[1] = call[1] or (item.name or "")
            call.append(item.arguments)
            self.size = within_cap(self.size + len(item.arguments) + len(call[0]) + len(call[1]))
        return None

    def result(self, end: StreamEnd) -> ChatResult:
        calls = tuple(ToolCall(id=call[0], name=call[1], arguments="".join(call[2:]))
                      for _, call in sorted(self.calls.items()))
        return ChatResult(output="".join(self.tokens), usage=end.usage, finish_reason=end.finish_reason,
                          tool_calls=calls, reasoning="".join(self.thinking),
                          logprobs={"content": self.logprobs, "refusal": None} if self.logprobs else None)

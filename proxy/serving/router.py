"""Fallback and balancing: each request goes to the best backend that can take it, then the next.

Order: tiers in configuration order (Ollama, then OpenAI-compatible); inside a tier, the
backend with the fewest requests in flight first (ties rotate). Backends whose breaker is
open go last, soonest-to-reopen first: they are skipped while anything else can serve, but
a request is never refused just because every backend is cooling down.

A backend that cannot serve (unreachable, timed out, 5xx, 429, no such model, at its
in-flight limit, or lacking what the request asks for: tools, vision, an image URL it
cannot fetch... which it says before anything is sent) hands the request to the next one;
a backend that finds the request itself invalid (a 400) ends it, since the next would refuse it too. For a stream,
"serving" means producing its first token within the first-token timer: until then nothing
has reached the client and moving on is invisible.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Generic, TypeVar

import attrs
from attrs import define, frozen

from proxy.backends.base import Backend
from proxy.backends.breaker import Breaker
from proxy.errors import AllBackendsFailed, UpstreamError, UpstreamSaturated
from proxy.llm import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    GenerationRequest,
    ModelQuery,
    NativeAnswer,
    NativeItem,
    NativeRequest,
    StreamItem,
    stream_end,
)
from proxy.observability import metrics
from proxy.serving import native
from proxy.serving.attempt_spans import Asked, end_span
from proxy.serving.model_table import Route
from proxy.settings.config import Settings
from proxy.tracing.spans import AttemptSpan

T = TypeVar("T")
# Why a backend cannot serve a request, asked before anything is sent (None: it may).
Refusal = Callable[[Backend, str | None], Awaitable[UpstreamError | None]]
Items = TypeVar("Items", StreamItem, NativeItem)


@define
class Member:
    """A backend as the router sees it: its breaker and its load."""

    backend: Backend
    breaker: Breaker
    max_in_flight: int
    # Shared by all members of a router: set whenever any of them frees a slot.
    slot_freed: asyncio.Event
    in_flight: int = 0


@define
class Attempt:
    """One request on one member: counted in flight until finished, then fed to the breaker."""

    member: Member
    # Its CLIENT span while tracing is on.
    span: AttemptSpan | None = None
    _finished: bool = False

    @classmethod
    def start(cls, member: Member, span: AttemptSpan | None = None) -> Attempt:
        member.in_flight += 1
        member.breaker.attempt_started()
        return cls(member, span)

    def finish(self, error: BaseException | None, answer: object = None) -> None:
        """Done: `error` None for an answer (`answer`: a result or a stream's end, for the span)."""
        if self._finished:
            return
        self._finished = True
        if self.span is not None:
            end_span(self.span, error, answer)
        self.member.in_flight -= 1
        self.member.slot_freed.set()
        breaker = self.member.breaker
        if error is None:
            breaker.succeeded()
        elif isinstance(error, UpstreamError):
            # An answer such as "no such model" or "invalid request" proves the backend is up.
            breaker.failed() if error.backend_down else breaker.succeeded()
        else:  # cancelled: the client left; nothing learned about the backend
            breaker.released()


@frozen
class OpenStream(Generic[Items]):
    """A stream that has produced its first item: from here on it is the answer."""

    attempt: Attempt
    first: Items
    rest: AsyncGenerator[Items, None]

    @property
    def backend(self) -> Backend:
        return self.attempt.member.backend

    @asynccontextmanager
    async def closing(self) -> AsyncIterator[AsyncGenerator[Items, None]]:
        """The items; on leaving, the upstream stream is closed and the attempt finished,
        even if the items were never iterated (e.g. the client left before headers went out)."""
        items = self.items()
        error: BaseException | None = None
        try:
            yield items
        except BaseException as exc:
            error = exc
            raise
        finally:
            await items.aclose()
            await self.rest.aclose()
            self.attempt.finish(error)
            # The error's traceback holds this frame: without this, a reference cycle.
            error = None

    async def items(self) -> AsyncGenerator[Items, None]:
        """Every item, the first included; closing this closes the upstream stream."""
        error: BaseException | None = None
        try:
            async with aclosing(self.rest):
                item = self.first
                while True:
                    # A token (a str, nearly every item) never ends the stream: no call for it.
                    if not isinstance(item, str) and (end := stream_end(item)) is not None:
                        self.attempt.finish(None, end)
                    yield item
                    item = await anext(self.rest)
        except StopAsyncIteration:
            pass
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.attempt.finish(error)
            error = None  # the error's traceback holds this frame: without this, a reference cycle


def _load(member: Member) -> int:
    return member.in_flight


@define
class Router:
    tiers: Sequence[Sequence[Member]]
    # How long a request may wait for a slot when every backend is at its in-flight limit.
    queue_timeout: float
    _slot_freed: asyncio.Event
    _by_name: dict[str, Member]
    _turn: int = 0

    @classmethod
    def from_tiers(cls, tiers: Sequence[Sequence[Backend]], settings: Settings) -> Router:
        slot_freed = asyncio.Event()

        def member(backend: Backend) -> Member:
            breaker = Breaker(failure_threshold=settings.breaker_failures, cooldown=settings.breaker_cooldown)
            return Member(backend=backend, breaker=breaker, max_in_flight=settings.upstream_max_in_flight,
                          slot_freed=slot_freed)

        members = [[member(backend) for backend in tier] for tier in tiers]
        return cls(
            tiers=members,
            queue_timeout=settings.queue_timeout,
            slot_freed=slot_freed,
            by_name={m.backend.name: m for tier in members for m in tier},
        )

    @property
    def members(self) -> list[Member]:
        return [member for tier in self.tiers for member in tier]

    def candidates(self) -> list[Member]:
        """Every member, in the order this request should try them."""
        self._turn += 1
        ready: list[Member] = []
        resting: list[Member] = []
        for tier in self.tiers:
            if len(tier) > 1:
                start = self._turn % len(tier)
                tier = sorted([*tier[start:], *tier[:start]], key=_load)  # stable: ties keep the rotation
            for member in tier:
                (ready if member.breaker.available() else resting).append(member)
        if resting:
            resting.sort(key=lambda m: m.breaker.reopens_in())
            ready += resting
        return ready

    def plan(self, route: Route | None) -> list[tuple[Member, str | None]]:
        """(member, the model name to ask it for) in the order to try; None keeps the name.

        A route fixes the order (its backends as listed); resting ones still go last.
        """
        if route is None:
            return [(member, None) for member in self.candidates()]
        ready: list[tuple[Member, str | None]] = []
        resting: list[tuple[Member, str | None]] = []
        for target in route.backends:
            member = self._by_name[target.backend]
            (ready if member.breaker.available() else resting).append((member, target.model))
        resting.sort(key=lambda pair: pair[0].breaker.reopens_in())
        return ready + resting

    async def _first_that_serves(
        self, call: Callable[[Backend, str | None], Awaitable[T]], route: Route | None, asked: Asked, *,
        hold: bool = False, refusal: Refusal | None = None,
    ) -> tuple[Attempt, T]:
        """The first candidate's answer; with `hold`, its attempt stays open for the caller.

        When every backend is at its in-flight limit, waits up to `queue_timeout` for one
        to free a slot before giving up with 503 `overloaded`.
        """
        deadline = asyncio.get_running_loop().time() + self.queue_timeout
        while True:
            failures: list[UpstreamError] = []
            plan = self.plan(route)
            for position, (member, model) in enumerate(plan, start=1):
                refused = None if refusal is None else await refusal(member.backend, model)
                if refused is not None:
                    failures.append(refused)  # nothing was sent: the backend is not charged with it
                    continue
                if member.in_flight >= member.max_in_flight:
                    failures.append(UpstreamSaturated(
                        f"{member.max_in_flight} requests already in flight", backend=member.backend.name))
                    continue
                attempt = Attempt.start(member, asked.span(member.backend, model))
                try:
                    result = await call(member.backend, model)
                except UpstreamError as exc:
                    attempt.finish(exc)
                    metrics.upstream_failed(exc.backend, exc.code, passed_on=exc.fallthrough and position < len(plan))
                    if not exc.fallthrough:
                        raise
                    failures.append(exc)
                    continue
                except BaseException as exc:
                    attempt.finish(exc)
                    raise
                if not hold:
                    attempt.finish(None, result)
                elif attempt.span is not None:
                    attempt.span.first_token()
                return attempt, result
            if not all(isinstance(f, UpstreamSaturated) for f in failures) or not await self._slot_within(deadline):
                try:
                    raise AllBackendsFailed(failures)
                finally:
                    # Each failure's traceback holds this frame, which holds the list: a
                    # reference cycle that would keep every failure's frames alive.
                    failures.clear()

    async def _slot_within(self, deadline: float) -> bool:
        """Whether some backend frees a slot before `deadline`."""
        self._slot_freed.clear()
        try:
            async with asyncio.timeout_at(deadline):
                await self._slot_freed.wait()
        except TimeoutError:
            return False
        return True

    async def serve_chat(self, request: ChatRequest, route: Route | None = None) -> tuple[Backend, ChatResult]:
        attempt, result = await self._first_that_serves(
            lambda backend, model: backend.chat(_renamed(request, model)), route,
            Asked("chat", request.model, request.messages),
            refusal=lambda backend, model: backend.refusal(_renamed(request, model)))
        return attempt.member.backend, result

    async def serve_completion(
        self, request: CompletionRequest, route: Route | None = None,
    ) -> tuple[Backend, ChatResult]:
        attempt, result = await self._first_that_serves(
            lambda backend, model: backend.complete(_renamed(request, model)), route, _asked(request))
        return attempt.member.backend, result

    async def serve_embed(self, request: EmbedRequest, route: Route | None = None) -> tuple[Backend, EmbedResult]:
        attempt, result = await self._first_that_serves(
            lambda backend, model: backend.embed(_renamed(request, model)), route,
            Asked("embeddings", request.model, request.inputs),
            refusal=lambda backend, model: backend.embed_refusal(_renamed(request, model)))
        return attempt.member.backend, result

    async def open_stream(self, request: GenerationRequest, route: Route | None = None) -> OpenStream[StreamItem]:
        """The first backend whose stream (a chat's or a text completion's) yields a token in
        time (each backend keeps its own first-token timer); the others never show."""
        attempt, (first, rest) = await self._first_that_serves(
            lambda backend, model: backend.open_stream(_renamed(request, model)), route, _asked(request), hold=True,
            refusal=_refusal_of(request))
        return OpenStream(attempt=attempt, first=first, rest=rest)

    async def serve_native(
        self, request: NativeRequest, route: Route | None = None,
    ) -> tuple[Backend, NativeAnswer | ChatResult | EmbedResult | ModelQuery]:
        """A request in an upstream's own API: passed as it is to a backend that speaks it,
        translated for one that does not, skipped by one that cannot serve it at all."""

        attempt, result = await self._first_that_serves(
            lambda backend, model: native.serve(backend, _renamed(request, model)), route, _asked(request))
        return attempt.member.backend, result

    async def open_native_stream(self, request: NativeRequest, route: Route | None = None) -> OpenStream[NativeItem]:
        """As `open_stream`, for a stream in an upstream's own API: its own lines from a
        backend that speaks it, normalized tokens from one that does not."""

        attempt, (first, rest) = await self._first_that_serves(
            lambda backend, model: native.open_stream(backend, _renamed(request, model)), route, _asked(request),
            hold=True)
        return OpenStream(attempt=attempt, first=first, rest=rest)


R = TypeVar("R", ChatRequest, CompletionRequest, GenerationRequest, EmbedRequest, NativeRequest)


def _refusal_of(request: GenerationRequest) -> Refusal | None:
    """A chat may ask what a backend lacks (tools, image URLs...); a text completion asks
    only for text, which every backend generates."""
    if not isinstance(request, ChatRequest):
        return None
    return lambda backend, model: backend.refusal(_renamed(request, model))


def _asked(request: GenerationRequest | NativeRequest) -> Asked:
    """What a request asks, as its attempts' spans name it (the OpenTelemetry GenAI operation
    names: "chat", "text_completion", "embeddings")."""
    translated = request if isinstance(request, ChatRequest | CompletionRequest) else request.translated
    if isinstance(translated, CompletionRequest):
        return Asked("text_completion", request.model, (translated.prompt,))
    if isinstance(translated, EmbedRequest):
        return Asked("embeddings", request.model, translated.inputs)
    if isinstance(translated, ChatRequest):
        return Asked("chat", request.model, translated.messages)
    return Asked("show", request.model, ())


def _renamed(request: R, model: str | None) -> R:
    """The request under the name this backend knows the model by."""
    return request if model is None else attrs.evolve(request, model=model)

"""The backend interface, and what the two HTTP backends share.

A backend is built once from settings and owns its `Upstream` (sessions and timers). What
an upstream sends is read through `Fields`: a value of the wrong type is a
`BadUpstreamResponse`, never a crash and never passed on to a client (the SDKs
type-check `token` and `output`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Protocol, TypeVar

import orjson
from attrs import define, field

from proxy.backends.assemble import assemble
from proxy.backends.upstream import Upstream
from proxy.errors import BadUpstreamResponse, CapabilityMissing, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from proxy.llm import (
    ChatRequest,
    ChatResult,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    GenerationRequest,
    NativeAnswer,
    NativeLine,
    NativeRequest,
    Probe,
    Relayed,
    StreamItem,
)

Item = TypeVar("Item")


class Backend(Protocol):
    @property
    def name(self) -> str:
        """Unique among the configured backends, e.g. "ollama"."""

    @property
    def provider(self) -> str:
        """What clients see in `provider`: "ollama" or "openai"."""

    @property
    def display_url(self) -> str:
        """The upstream URL without credentials, for health and errors."""

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    async def refusal(self, request: ChatRequest) -> CapabilityMissing | None:
        """Why this backend cannot serve what `request` asks (tools, image URLs, logprobs...),
        known before sending it; None when it may. The router then skips it."""

    async def embed_refusal(self, request: EmbedRequest) -> CapabilityMissing | None: ...

    async def complete(self, request: CompletionRequest) -> ChatResult:
        """A text completion of `request.prompt` (and `suffix`), as one answer."""

    async def open_stream(
        self, request: GenerationRequest,
    ) -> tuple[StreamItem, AsyncGenerator[StreamItem, None]]:
        """A chat's or a text completion's stream: its first item, within the first-token
        timer (the cold-start budget when the model must be loaded first), and the rest:
        tokens, then one StreamEnd.
        UpstreamTimeout when the first item is late; the stream is closed then."""

    async def embed(self, request: EmbedRequest) -> EmbedResult: ...

    def speaks(self, api: str) -> bool:
        """Whether requests in `api` ("ollama") pass to this backend as they are."""

    async def forward(self, request: NativeRequest) -> NativeAnswer:
        """A request in this backend's own API, answered as the upstream sent it."""

    async def open_forward(self, request: NativeRequest) -> tuple[NativeLine, AsyncGenerator[NativeLine, None]]:
        """A stream in this backend's own API: its first line within the first-token timer
        (as `open_stream`), and the rest, the final line carrying the usage."""

    async def native_get(self, path: str) -> Any:
        """GET one of the upstream's own read-only endpoints, as JSON."""

    def relay(
        self, method: str, path: str, data: bytes | AsyncIterator[bytes] | None, content_type: str | None,
    ) -> AbstractAsyncContextManager[Relayed]:
        """The upstream's own answer to a request in its API, status and all, body in chunks."""

    async def ping(self) -> Probe: ...

    async def models(self) -> list[str]:
        """The model names the upstream reports having now."""

    async def aclose(self) -> None: ...


@define
class Fields:
    """Typed reads of an upstream's JSON, for one backend."""

    backend: str

    def bad(self, what: str) -> BadUpstreamResponse:
        # Never quotes the value: it may be model output, which stays out of logs.
        return BadUpstreamResponse(f"unexpected answer: {what}", backend=self.backend)

    def object(self, value: Any, what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.bad(f"{what} is not an object")
        return value

    def items(self, value: Any, what: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.bad(f"{what} is not a list")
        return value

    def text(self, value: Any, what: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.bad(f"{what} is not a string")
        return value

    def optional_text(self, value: Any, what: str) -> str | None:
        return None if value is None else self.text(value, what)

    def count(self, value: Any, what: str) -> int:
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.bad(f"{what} is not a count")
        return value

    def vectors(self, values: list[Any], expected: int) -> tuple[list[float], ...]:
        if len(values) != expected:
            raise self.bad(f"{len(values)} embeddings for {expected} inputs")
        for vector in values:
            if not isinstance(vector, list) or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in vector
            ):
                raise self.bad("an embedding is not a list of numbers")
        return tuple(values)


def call_id(index: int, name: str, arguments: str) -> str:
    """A stable id for a tool call an upstream sent without one: the same call, the same id."""
    digest = hashlib.sha256(f"{index}\0{name}\0{arguments}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def classify_common(status: int, message: str, backend: str) -> UpstreamError:
    """What any HTTP upstream's status means, once the kind-specific cases are handled."""
    if status in (401, 403):
        # The upstream's text is not repeated: it may quote the key it refused.
        return UpstreamUnavailable(
            f"upstream refused the gateway's key (HTTP {status}): check OPENAI_API_KEY or the URL's credentials",
            backend=backend)
    if status in (408, 429) or status >= 500:
        return UpstreamUnavailable(message, backend=backend)
    return BadUpstreamResponse(f"unexpected HTTP {status}: {message}", backend=backend)


def error_json(body: bytes) -> dict[str, Any]:
    """An error body as JSON, {} when it is not a JSON object."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


# The longest upstream error message passed on to a client.
MAX_RELAYED_MESSAGE = 300


def relayed_message(message: str, status: int) -> str:
    """The part of an upstream's error a client may see: the message from the error's known
    field, bounded and on one line. Anything else an error body holds stays in the server
    log (bounded_reads.log_error_body): it may be an HTML page, a stack trace, or a secret."""
    text = " ".join(message.split())
    if not text:
        return f"HTTP {status}"
    return text if len(text) <= MAX_RELAYED_MESSAGE else text[:MAX_RELAYED_MESSAGE] + "..."


@define
class HttpBackend:
    """What both HTTP backends share: their upstream, health probe, and message list."""

    name: str
    _upstream: Upstream
    provider: ClassVar[str]
    health_path: ClassVar[str]
    # Built once: it is read for every line of every answer.
    _fields: Fields = field(init=False)

    @_fields.default
    def _named_fields(self) -> Fields:
        return Fields(self.name)

    @property
    def display_url(self) -> str:
        return self._upstream.display_url

    @property
    def fields(self) -> Fields:
        return self._fields

    async def chat(self, request: ChatRequest) -> ChatResult:
        """One answer, read from the upstream as a stream: bounded by its silences, not its
        length (see assemble.py). A model the upstream must load first gets the cold-start
        budget for its first token, as a stream does."""
        cold = await self.must_load(request.model)
        return await assemble(self.stream(request, cold=cold), self._upstream.timeouts, self.name, cold=cold)

    async def complete(self, request: CompletionRequest) -> ChatResult:
        """A text completion, read as a stream and assembled like a chat's answer."""
        cold = await self.must_load(request.model)
        return await assemble(
            self.stream_completion(request, cold=cold), self._upstream.timeouts, self.name, cold=cold)

    async def get_json(self, path: str) -> Any:
        async with self._upstream.request("GET", path) as response:
            return await self._upstream.read_json(response)

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST and read the whole JSON answer; every failure typed, the parsing included."""
        async with self._upstream.request("POST", path, json=body) as response:
            return await self._upstream.read_json(response)

    async def ping(self) -> Probe:
        return await self._upstream.probe(self.health_path)

    def stream(self, request: ChatRequest, *, cold: bool = False) -> AsyncGenerator[StreamItem, None]:
        """Tokens, then one StreamEnd. `cold`: the model is loaded first, so the silence
        before the first token may last the cold-start budget."""
        raise NotImplementedError

    def stream_completion(
        self, request: CompletionRequest, *, cold: bool = False,
    ) -> AsyncGenerator[StreamItem, None]:
        """A text completion's tokens, then one StreamEnd; `cold` as for `stream`."""
        raise NotImplementedError

    async def must_load(self, model: str) -> bool:
        """Whether the upstream has to load `model` before its first token (a cold start)."""
        return False  # only an upstream that says what it has loaded can tell

    def speaks(self, api: str) -> bool:
        return False

    async def forward(self, request: NativeRequest) -> NativeAnswer:
        raise NotImplementedError  # the router asks only a backend that speaks the request's API

    async def open_forward(self, request: NativeRequest) -> tuple[NativeLine, AsyncGenerator[NativeLine, None]]:
        raise NotImplementedError

    async def native_get(self, path: str) -> Any:
        raise NotImplementedError

    def relay(
        self, method: str, path: str, data: bytes | AsyncIterator[bytes] | None, content_type: str | None,
    ) -> AbstractAsyncContextManager[Relayed]:
        raise NotImplementedError

    async def open_stream(
        self, request: GenerationRequest,
    ) -> tuple[StreamItem, AsyncGenerator[StreamItem, None]]:
        if isinstance(request, ChatRequest):
            return await self.first_in_time(request.model, lambda cold: self.stream(request, cold=cold))
        return await self.first_in_time(request.model, lambda cold: self.stream_completion(request, cold=cold))

    async def first_in_time(
        self, model: str, open_items: Callable[[bool], AsyncGenerator[Item, None]],
    ) -> tuple[Item, AsyncGenerator[Item, None]]:
        """The first item of `open_items(cold)` within the first-token budget, and the rest."""
        # Every upstream timer lives in this layer: connect, headers, idle and total in
        # Upstream, the first-token and cold-start budgets here. A model the upstream must
        # load first gets the cold-start budget: a load is not a dead upstream.
        cold = await self.must_load(model)
        budget = self._upstream.first_token_budget(cold=cold)
        stream = open_items(cold)
        try:
            async with asyncio.timeout(budget):
                return await anext(stream), stream
        except TimeoutError as exc:
            await stream.aclose()
            phase = "first token (the model had to be loaded)" if cold else "first token"
            setting = "PROXY_COLD_START_TIMEOUT" if cold else "PROXY_FIRST_TOKEN_TIMEOUT"
            raise UpstreamTimeout(f"no {phase} within {budget:g} s ({setting})", backend=self.name) from exc
        except BaseException:
            await stream.aclose()
            raise

    async def aclose(self) -> None:
        await self._upstream.aclose()

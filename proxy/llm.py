"""Normalized requests and results: what handlers give backends and get back.

These types know nothing about HTTP or about any upstream's wire format; backends map
them to Ollama's or OpenAI's JSON, handlers map them to the client contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import attrs
from attrs import frozen

Role = Literal["system", "user", "assistant", "tool"]


@frozen
class Message:
    role: Role
    content: str


@frozen
class Parameters:
    """Sampling parameters every backend understands; None means the upstream's default."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None

    def merged_over(self, base: Parameters) -> Parameters:
        """These parameters, with `base` filling in the ones not set here."""
        ours = {name: value for name, value in attrs.asdict(self, recurse=False).items() if value is not None}
        return attrs.evolve(base, **ours)


@frozen
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    parameters: Parameters = Parameters()


@frozen
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@frozen
class ChatResult:
    output: str
    usage: Usage | None = None
    finish_reason: str | None = None


@frozen
class StreamEnd:
    """The upstream's own final message: the answer is complete."""

    usage: Usage | None = None
    finish_reason: str | None = None
    # Replayed from the answer cache, not produced now (proxy/cache/serving.py).
    cached: bool = False


# A stream yields tokens (str) as they come, then exactly one StreamEnd; anything
# else (a cut, an error event) surfaces as an UpstreamError raised by the iterator.
StreamItem = str | StreamEnd


@frozen
class EmbedRequest:
    model: str
    inputs: tuple[str, ...]
    # The client sent one string, not a list: upstreams get the same form.
    single: bool = False

    @property
    def wire_input(self) -> str | list[str]:
        return self.inputs[0] if self.single else list(self.inputs)


@frozen
class EmbedResult:
    vectors: tuple[list[float], ...]
    prompt_tokens: int


@frozen
class Probe:
    """One health probe of one backend."""

    healthy: bool
    latency_ms: float
    error: str | None = None


# --- requests in an upstream's own API (the Ollama surface) ---------------------------


@frozen
class ModelQuery:
    """What a backend knows of one model (Ollama's /api/show): a backend that does not speak
    the request's API answers it with the model being in its list."""

    model: str


@frozen
class NativeRequest:
    """A request in an upstream's own API (`api`, e.g. "ollama"), passed as it is to the
    backends that speak that API and, translated, to the others.

    `body` is the client's JSON, every field kept; `model` is the name to ask the upstream
    for (the routing table may rename it) and `public_model` the one the client knows.
    `translated` is the same request in the normalized types (also what the limiter
    estimates), and `untranslatable` says why the other backends cannot serve it, when
    they cannot (Ollama's `suffix`, `context`, `raw`...).
    """

    api: str
    path: str
    body: Mapping[str, Any]
    model: str
    public_model: str
    stream: bool
    translated: ChatRequest | EmbedRequest | ModelQuery
    untranslatable: str = ""

    @property
    def max_tokens(self) -> int | None:
        translated = self.translated
        return translated.parameters.max_tokens if isinstance(translated, ChatRequest) else None


@frozen
class NativeAnswer:
    """A whole answer as the upstream sent it (its model renamed back to the public name)."""

    body: bytes
    usage: Usage | None = None


@frozen
class NativeLine:
    """One line of an upstream's own stream, newline included; `end` is set on its final line."""

    data: bytes
    end: StreamEnd | None = None


# What a native stream yields: its upstream's own lines when a backend speaks its API, or
# the normalized items of one that does not (the surface translates those).
NativeItem = NativeLine | str | StreamEnd


def stream_end(item: NativeItem) -> StreamEnd | None:
    """The StreamEnd that `item` is or carries: the stream's final item."""
    if isinstance(item, StreamEnd):
        return item
    return item.end if isinstance(item, NativeLine) else None


@frozen
class Relayed:
    """An upstream's answer to be relayed as it is, body in chunks as they arrive."""

    status: int
    content_type: str
    chunks: AsyncIterator[bytes]

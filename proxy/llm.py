"""Normalized requests and results: what handlers give backends and get back.

These types know nothing about HTTP or about any upstream's wire format; backends map
them to Ollama's or OpenAI's JSON, handlers map them to the client contract.
"""

from __future__ import annotations

from typing import Literal

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
class CompletionRequest:
    """A plain text completion: the model continues `prompt` (and, for fill-in-the-middle
    code models, writes what goes between it and `suffix`)."""

    model: str
    prompt: str
    suffix: str | None = None
    parameters: Parameters = Parameters()


# What a backend can generate from: a conversation or a prompt to continue. Both are
# answered as a ChatResult, or streamed as StreamItems.
GenerationRequest = ChatRequest | CompletionRequest


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

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
class Image:
    """An image part. A `data:` URL arrives decoded-and-checked (`base64` is its payload);
    an http(s) URL is kept as is: the gateway never fetches it, only some backends can."""

    url: str
    base64: str | None = None
    detail: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.base64 is None


@frozen
class ToolCall:
    """A call the model asked for. `arguments` is JSON text (an object), as OpenAI carries it."""

    id: str
    name: str
    arguments: str


@frozen
class Message:
    role: Role
    content: str
    images: tuple[Image, ...] = ()
    # An assistant turn's calls; a tool turn's `tool_call_id`, and the name of the tool it
    # answers (found from the earlier call, for upstreams such as Ollama that want it).
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None


@frozen
class Tool:
    name: str
    parameters: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


@frozen
class ToolChoice:
    """"auto", "none", "required", or "function" with the one tool's `name`."""

    mode: Literal["auto", "none", "required", "function"]
    name: str | None = None


@frozen
class ResponseFormat:
    """A JSON answer: any object (`json_object`) or one matching `schema` (`json_schema`).
    `original` is the client's own `response_format`, for upstreams that take it as is."""

    kind: Literal["json_object", "json_schema"]
    original: dict[str, Any]
    schema: dict[str, Any] | None = None
    strict: bool | None = None


@frozen
class Parameters:
    """Sampling parameters every backend understands; None means the upstream's default."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    def merged_over(self, base: Parameters) -> Parameters:
        """These parameters, with `base` filling in the ones not set here."""
        ours = {name: value for name, value in attrs.asdict(self, recurse=False).items() if value is not None}
        return attrs.evolve(base, **ours)


@frozen
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    parameters: Parameters = Parameters()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    # "none", "minimal", "low", "medium", "high": how hard a reasoning model thinks.
    reasoning_effort: str | None = None
    # Only OpenAI-compatible backends honour these; others are skipped (see needs()).
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(image for m in self.messages for image in m.images)

    def features(self) -> list[str]:
        """What this request uses beyond plain text, by name (for logs: never the content)."""
        # One pass over the messages, without a generator per question: every request asks.
        # (Not self.images: that builds the tuple of every image.)
        tool_results = images = False
        for message in self.messages:
            tool_results = tool_results or message.role == "tool"
            images = images or bool(message.images)
        used = {
            "tools": bool(self.tools),
            "tool_results": tool_results,
            self.response_format.kind if self.response_format else "": True,
            "images": images,
            "reasoning": self.reasoning_effort is not None,
            "logprobs": bool(self.logprobs),
            "logit_bias": bool(self.logit_bias),
        }
        return [name for name, on in used.items() if name and on]


@frozen
class CompletionRequest:
    """A plain text completion: the model continues `prompt` (and, for fill-in-the-middle
    code models, writes what goes between it and `suffix`)."""

    model: str
    prompt: str
    suffix: str | None = None
    parameters: Parameters = Parameters()

    def features(self) -> list[str]:
        """As ChatRequest.features(), for logs: a fill-in-the-middle asks for a suffix."""
        return ["suffix"] if self.suffix is not None else []


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
    # "tool_calls" whenever the answer carries calls, whatever the upstream called it.
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    # The model's thinking, never part of `output`.
    reasoning: str = ""
    # An OpenAI-compatible upstream's `logprobs` object, passed on as it came.
    logprobs: Any = None

    @property
    def text_only(self) -> bool:
        """Whether the answer is its text alone (what the answer cache can keep)."""
        return not self.tool_calls and not self.reasoning and self.logprobs is None

    @property
    def generated_text(self) -> str:
        """Everything the model generated, for estimating output tokens without usage."""
        return self.reasoning + self.output + "".join(c.name + c.arguments for c in self.tool_calls)


@frozen
class StreamEnd:
    """The upstream's own final message: the answer is complete."""

    usage: Usage | None = None
    finish_reason: str | None = None
    # Replayed from the answer cache, not produced now (proxy/serving/answer_cache.py).
    cached: bool = False


@frozen
class ReasoningDelta:
    """A piece of the model's thinking, streamed apart from the answer's text."""

    text: str


@frozen
class LoggedText:
    """A piece of the answer's text with the log probabilities of its tokens, when the
    request asked for logprobs: OpenAI's `logprobs.content` entries of one chunk (`token`,
    `logprob`, `bytes`, `top_logprobs`), as the upstream sent them. Ollama's own `logprobs`
    entries have the same fields."""

    text: str
    logprobs: tuple[Any, ...]


@frozen
class ToolCallDelta:
    """A piece of tool call `index`: its id and name come first (once), then pieces of
    its arguments' JSON text. An upstream that sends a call whole sends one delta."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


# A stream yields tokens (str, or LoggedText when logprobs were asked for), reasoning and
# tool-call pieces as they come, then exactly one StreamEnd; anything else (a cut, an error
# event) surfaces as an UpstreamError raised by the iterator.
StreamItem = str | LoggedText | ReasoningDelta | ToolCallDelta | StreamEnd


@frozen
class EmbedRequest:
    model: str
    inputs: tuple[str, ...]
    # The client sent one string, not a list: upstreams get the same form.
    single: bool = False
    # Inputs already tokenized (OpenAI's token arrays, LangChain's default); `inputs` is
    # then empty. Only OpenAI-compatible backends take them.
    token_arrays: tuple[tuple[int, ...], ...] = ()

    @property
    def wire_input(self) -> str | list[str] | list[int] | list[list[int]]:
        if self.token_arrays:
            return list(self.token_arrays[0]) if self.single else [list(a) for a in self.token_arrays]
        return self.inputs[0] if self.single else list(self.inputs)

    @property
    def count(self) -> int:
        return len(self.token_arrays) or len(self.inputs)


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
    estimates): a chat, or a text completion for Ollama's fill-in-the-middle. And
    `untranslatable` says why the other backends cannot serve it, when they cannot
    (Ollama's `context`, `raw`...), `untranslatable_at` the field.
    """

    api: str
    path: str
    body: Mapping[str, Any]
    model: str
    public_model: str
    stream: bool
    translated: ChatRequest | CompletionRequest | EmbedRequest | ModelQuery
    untranslatable: str = ""
    untranslatable_at: str = "$"

    @property
    def max_tokens(self) -> int | None:
        translated = self.translated
        return translated.parameters.max_tokens if isinstance(translated, ChatRequest | CompletionRequest) else None


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
NativeItem = NativeLine | StreamItem


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

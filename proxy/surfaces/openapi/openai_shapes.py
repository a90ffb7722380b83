"""The shapes of `/v1`'s chat completions, embeddings, models and errors (OpenAI's), as
attrs classes, for the OpenAPI description; /v1/completions' and /v1/responses' are in
generation_shapes.py.

The conventions of contract_shapes.py hold: a field without a default is always present;
`X | None = None` may be absent or null. Usage and attempts have the contract's shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import frozen

from proxy.surfaces.openapi.contract_shapes import AttemptAnswer, EmbeddingUsage, LimitName, UsageAnswer


@frozen
class OpenAIErrorDetail:
    message: str
    type: str
    param: None
    code: str
    request_id: str | None = None
    errors: list[str] | None = None
    attempts: list[AttemptAnswer] | None = None
    limit: LimitName | None = None
    limit_value: int | None = None
    retry_after: int | None = None


@frozen
class OpenAIError:
    error: OpenAIErrorDetail


@frozen
class CalledFunction:
    name: str
    arguments: str  # a JSON object, as a string


@frozen
class AnsweredToolCall:
    id: str
    type: Literal["function"]
    function: CalledFunction


@frozen
class AssistantMessage:
    role: Literal["assistant"]
    content: str | None  # None when the turn only calls tools
    tool_calls: list[AnsweredToolCall] | None = None
    reasoning_content: str | None = None  # a reasoning model's thinking, never in `content`


@frozen
class CompletionChoice:
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]
    logprobs: dict[str, Any] | None


@frozen
class ChatCompletion:
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    system_fingerprint: None
    usage: UsageAnswer | None = None


@frozen
class FunctionPiece:
    name: str | None = None
    arguments: str | None = None


@frozen
class ToolCallPiece:
    """A piece of tool call `index`: its id, type and name first, then its arguments' text."""

    index: int
    function: FunctionPiece
    id: str | None = None
    type: Literal["function"] | None = None


@frozen
class ChunkDelta:
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallPiece] | None = None


@frozen
class ChunkChoice:
    index: int
    delta: ChunkDelta
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None
    logprobs: dict[str, Any] | None  # this chunk's entries (`content`), when logprobs were asked for


@frozen
class ChatCompletionChunk:
    """One `data:` event of a /v1 stream; the stream ends with `data: [DONE]`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: None
    choices: list[ChunkChoice]
    usage: UsageAnswer | None = None


@frozen
class OpenAIEmbedding:
    object: Literal["embedding"]
    index: int
    # A list of floats, or base64 of little-endian float32 with encoding_format "base64".
    embedding: list[float] | str


@frozen
class OpenAIEmbeddings:
    object: Literal["list"]
    data: list[OpenAIEmbedding]
    model: str
    usage: EmbeddingUsage


@frozen
class OpenAIModel:
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


@frozen
class OpenAIModelList:
    object: Literal["list"]
    data: list[OpenAIModel]

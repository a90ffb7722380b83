"""The shapes of /v1/completions' and /v1/responses' answers and stream events, for the
OpenAPI description (the conventions of contract_shapes.py: a field without a default is
always present; `X | None = None` may be absent or null)."""

from __future__ import annotations

from typing import Any, Literal

from attrs import frozen

from proxy.surfaces.openapi.contract_shapes import UsageAnswer

# --- /v1/completions ----------------------------------------------------------------


@frozen
class TextCompletionChoice:
    index: int
    text: str
    # null in the chunks before the last one of a stream
    finish_reason: Literal["stop", "length"] | None
    logprobs: None


@frozen
class TextCompletion:
    """The answer, and each `data:` chunk of a stream (which ends with `data: [DONE]`; with
    `stream_options.include_usage` the last chunk has no choices and carries the usage)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextCompletionChoice]
    system_fingerprint: None
    usage: UsageAnswer | None = None


# --- /v1/responses ------------------------------------------------------------------


@frozen
class OutputText:
    type: Literal["output_text"]
    text: str
    annotations: list[Any]
    logprobs: list[Any]


@frozen
class OutputMessage:
    type: Literal["message"]
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"]
    content: list[OutputText]


@frozen
class FunctionCallItem:
    type: Literal["function_call"]
    id: str
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"]


@frozen
class InputTokensDetails:
    cached_tokens: int


@frozen
class OutputTokensDetails:
    reasoning_tokens: int


@frozen
class ResponseUsage:
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


@frozen
class ResponseErrorDetail:
    code: str
    message: str


@frozen
class IncompleteDetails:
    reason: Literal["max_output_tokens"]


@frozen
class ReasoningSettings:
    effort: str | None
    summary: None


@frozen
class TextFormatSetting:
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


@frozen
class ChosenFunction:
    type: Literal["function"]
    name: str


@frozen
class TextSettings:
    format: TextFormatSetting


@frozen
class ResponseObject:
    """A response; `incomplete` when the answer reached max_output_tokens, `failed` when it was cut."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    background: bool
    error: ResponseErrorDetail | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    model: str
    output: list[OutputMessage | FunctionCallItem]
    parallel_tool_calls: bool
    previous_response_id: None
    reasoning: ReasoningSettings
    store: bool
    temperature: float | None
    text: TextSettings
    tool_choice: Literal["auto", "none", "required"] | ChosenFunction
    tools: list[Any]
    top_p: float | None
    truncation: Literal["auto", "disabled"]
    usage: ResponseUsage | None
    metadata: dict[str, str]


@frozen
class ResponseStreamEvent:
    """One event of a /v1/responses stream, sent as `event: {type}` with this object as its
    `data:`. Which fields an event has depends on its type, as in OpenAI's API reference."""

    type: Literal[
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.completed", "response.incomplete", "response.failed",
        "error",
    ]
    sequence_number: int
    response: ResponseObject | None = None
    output_index: int | None = None
    item: OutputMessage | FunctionCallItem | None = None
    item_id: str | None = None
    content_index: int | None = None
    part: OutputText | None = None
    delta: str | None = None
    text: str | None = None
    name: str | None = None
    arguments: str | None = None
    logprobs: list[Any] | None = None
    code: str | None = None
    message: str | None = None
    param: None = None

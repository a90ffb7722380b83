"""The request body of `POST /v1/responses`, checked by the one strict converter, and its
mapping to a normalized `ChatRequest` (its `input` items are read by response_input.py, its
tools, `text.format` and `reasoning` by response_tools.py). `instructions` become the
first, system message. What the gateway cannot honour is refused with a 400 naming the
field: `previous_response_id` and `store: true` (answers are not stored: see
docs/openai-api.md), built-in tools, `background`, `conversation`, `include`, `top_logprobs`.
"""

from __future__ import annotations

from typing import Literal, NewType

from attrs import frozen

from proxy.llm import ChatRequest, Message, Parameters
from proxy.surfaces.openai.request_models import NotSupported
from proxy.surfaces.openai.response_tools import (
    FunctionToolBody,
    ReasoningBody,
    ResponseTextFormat,
    ResponseToolChoice,
)
from proxy.surfaces.request_bodies import CONVERTER, FieldError, ModelId, Temperature, TokenCount, TopP

ResponseInput = NewType("ResponseInput", object)
NotStored = NewType("NotStored", bool)
NoPreviousResponse = NewType("NoPreviousResponse", object)


@frozen
class TextBody:
    format: ResponseTextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


@frozen
class ResponsesBody:
    model: ModelId
    input: ResponseInput
    instructions: str | None = None
    max_output_tokens: TokenCount | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: bool | None = None
    stream_options: dict[str, bool] | None = None
    tools: list[FunctionToolBody] | None = None
    tool_choice: ResponseToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: NotSupported | None = None
    text: TextBody | None = None
    reasoning: ReasoningBody | None = None
    store: NotStored | None = None
    previous_response_id: NoPreviousResponse | None = None
    conversation: NotSupported | None = None
    background: NotSupported | None = None
    include: NotSupported | None = None
    top_logprobs: NotSupported | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None


def _response_input(v: object, _: object) -> object:
    # The items are read by input_messages, which names the path of each problem.
    if isinstance(v, str | list):
        return v
    raise FieldError("expected a string or a list of input items")


def _not_stored(v: object, _: object) -> bool:
    if v is False:
        return False
    if v is True:
        raise FieldError("answers are not stored by this gateway; send store: false or leave it out")
    raise FieldError("expected true or false")


def _no_previous_response(v: object, _: object) -> None:
    raise FieldError("answers are not stored by this gateway; send the conversation in `input` instead")


for _type, _hook in [(ResponseInput, _response_input), (NotStored, _not_stored),
                     (NoPreviousResponse, _no_previous_response)]:
    CONVERTER.register_structure_hook(_type, _hook)


def responses_chat_request(body: ResponsesBody, messages: list[Message]) -> ChatRequest:
    system = [Message(role="system", content=body.instructions)] if body.instructions else []
    parameters = Parameters(temperature=body.temperature, max_tokens=body.max_output_tokens, top_p=body.top_p)
    return ChatRequest(
        model=body.model, messages=(*system, *messages), parameters=parameters,
        tools=tuple(tool.normalized() for tool in body.tools or ()),
        tool_choice=body.tool_choice,  # type: ignore[arg-type]  # the hook made it a ToolChoice
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=body.text.format if body.text else None,  # type: ignore[arg-type]  # a ResponseFormat
        reasoning_effort=body.reasoning.effort if body.reasoning else None,
    )

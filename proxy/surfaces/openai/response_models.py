"""The request body of `POST /v1/responses`, checked by the one strict converter, and its
`input` read into the normalized messages of a `ChatRequest`.

`input` is a string (one user message) or a list of items: messages whose content is a
string or a list of `input_text` / `output_text` parts (an earlier answer sent back as
history). `instructions` become the first, system message. What the gateway cannot honour
on both backend kinds is refused with a 400 naming the field: tools and function-call
items, `text.format` other than text, `input_image`, `reasoning`, `previous_response_id`
and `store: true` (answers are not stored: see docs/openai-api.md).
"""

from __future__ import annotations

from typing import Any, Literal, NewType

from attrs import frozen

from proxy.llm import ChatRequest, Message, Parameters, Role
from proxy.surfaces.openai.request_models import NotSupported
from proxy.surfaces.request_bodies import CONVERTER, FieldError, ModelId, Temperature, TokenCount, TopP

ResponseInput = NewType("ResponseInput", object)
NotStored = NewType("NotStored", bool)
NoPreviousResponse = NewType("NoPreviousResponse", object)
ResponseTextFormat = NewType("ResponseTextFormat", object)
ResponseToolChoice = NewType("ResponseToolChoice", str)

_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = {"input_text", "output_text"}


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
    tools: NotSupported | None = None
    tool_choice: ResponseToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: NotSupported | None = None
    text: TextBody | None = None
    reasoning: NotSupported | None = None
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


def _text_format(v: object, _: object) -> None:
    if v == {"type": "text"}:
        return
    raise FieldError('only {"type": "text"} is supported')


def _tool_choice(v: object, _: object) -> str:
    if v in ("none", "auto"):
        return str(v)
    raise FieldError("tools are not supported by this gateway yet; only \"none\" or \"auto\"")


for _type, _hook in [(ResponseInput, _response_input), (NotStored, _not_stored),
                     (NoPreviousResponse, _no_previous_response), (ResponseTextFormat, _text_format),
                     (ResponseToolChoice, _tool_choice)]:
    CONVERTER.register_structure_hook(_type, _hook)


def input_messages(data: object, *, max_messages: int) -> tuple[list[Message], list[str]]:
    """The messages of `data["input"]`, and every problem found in its items, each with its path."""
    if not isinstance(data, dict):
        return [], []
    value = data.get("input")
    if isinstance(value, str):
        return [Message(role="user", content=value)], []
    if not isinstance(value, list):
        return [], []  # missing or of the wrong type: the field check says so
    problems: list[str] = []
    if not value:
        problems.append("must not be empty @ $.input")
    if len(value) > max_messages:
        problems.append(f"at most {max_messages} items are accepted @ $.input")
    messages = []
    for i, item in enumerate(value):
        message = _item_message(item, f"$.input[{i}]", problems)
        if message is not None:
            messages.append(message)
    return messages, problems


def _item_message(item: Any, path: str, problems: list[str]) -> Message | None:
    if not isinstance(item, dict):
        problems.append(f"expected an object @ {path}")
        return None
    kind = item.get("type", "message")
    if kind in ("function_call", "function_call_output"):
        problems.append(f"{kind} items need tools, which this gateway does not support yet @ {path}.type")
        return None
    if kind == "item_reference":
        problems.append("answers are not stored by this gateway, so items cannot be referenced: send the item "
                        f"itself (the AI SDK does with providerOptions.openai.store = false) @ {path}.type")
        return None
    if kind != "message":
        problems.append(f"items of type {kind!r} are not supported; only messages @ {path}.type")
        return None
    role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        problems.append(f"must be one of {', '.join(_ROLES)} @ {path}.role")
    unknown = set(item) - {"type", "role", "content", "id", "status", "phase"}
    if unknown:
        problems.append(f"unknown field(s): {', '.join(sorted(unknown))} @ {path}")
    content = _content(item.get("content"), f"{path}.content", problems)
    return None if role is None or content is None else Message(role=role, content=content)


def _content(content: Any, path: str, problems: list[str]) -> str | None:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        problems.append(f"expected a string or a list of content parts @ {path}")
        return None
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _TEXT_PARTS:
            described = repr(kind) if isinstance(kind, str) else "without a type"
            problems.append(f"content parts {described} are not supported; only input_text and output_text "
                            f"@ {path}[{j}].type")
        elif not isinstance(part.get("text"), str):
            problems.append(f"expected a string @ {path}[{j}].text")
        else:
            texts.append(part["text"])
    return "\n".join(texts) if len(texts) == len(content) else None


def responses_chat_request(body: ResponsesBody, messages: list[Message]) -> ChatRequest:
    system = [Message(role="system", content=body.instructions)] if body.instructions else []
    parameters = Parameters(temperature=body.temperature, max_tokens=body.max_output_tokens, top_p=body.top_p)
    return ChatRequest(model=body.model, messages=(*system, *messages), parameters=parameters)

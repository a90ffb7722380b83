"""Request bodies of the OpenAI-compatible surface (`/v1`), checked by the same strict
converter as `/api/v1` and mapped to the same normalized requests.

What the gateway can honour is accepted; what would change the answer and cannot be
honoured by both backend kinds (tools, penalties, logprobs, JSON mode, n > 1) is refused
with a 400 naming the field, rather than silently ignored. Fields that do not change the
answer (`user`, `metadata`, `store`, `service_tier`) are accepted and dropped; `user` is
never logged.
"""

from __future__ import annotations

from typing import Any, Literal, NewType

from attrs import frozen

from proxy.llm import ChatRequest, EmbedRequest, Message, Parameters
from proxy.surfaces.request_bodies import (
    CONVERTER,
    FieldError,
    ModelId,
    Seed,
    StopSequences,
    Temperature,
    TokenCount,
    TopP,
    invalid,
)

OpenAIRole = Literal["system", "developer", "user", "assistant", "tool"]
MessageContent = NewType("MessageContent", str)
EmbeddingInput = NewType("EmbeddingInput", tuple[str, ...])
# Accepted only with a value that asks for nothing the gateway cannot do.
NotSupported = NewType("NotSupported", object)
OnlyOne = NewType("OnlyOne", int)
TextFormat = NewType("TextFormat", object)
ToolChoice = NewType("ToolChoice", object)


@frozen
class ChatMessageBody:
    role: OpenAIRole
    content: MessageContent | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: NotSupported | None = None
    refusal: str | None = None


@frozen
class StreamOptionsBody:
    include_usage: bool | None = None


@frozen
class ChatCompletionBody:
    model: ModelId
    messages: list[ChatMessageBody]
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    stop: StopSequences | None = None
    seed: Seed | None = None
    stream: bool | None = None
    stream_options: StreamOptionsBody | None = None
    n: OnlyOne | None = None
    response_format: TextFormat | None = None
    frequency_penalty: NotSupported | None = None
    presence_penalty: NotSupported | None = None
    logprobs: NotSupported | None = None
    top_logprobs: NotSupported | None = None
    logit_bias: NotSupported | None = None
    tools: NotSupported | None = None
    functions: NotSupported | None = None
    tool_choice: ToolChoice | None = None
    function_call: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None


@frozen
class EmbeddingsV1Body:
    model: ModelId
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: NotSupported | None = None
    user: str | None = None


def _message_content(v: object, _: object) -> str:
    """A string, or a list of text parts (joined by newlines); images and audio are refused."""
    if isinstance(v, str):
        return v
    if not isinstance(v, list):
        raise FieldError("expected a string or a list of content parts")
    texts = []
    for part in v:
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise FieldError("expected content parts like {\"type\": \"text\", \"text\": \"...\"}")
        if part["type"] != "text":
            raise FieldError(f"content parts of type {part['type']!r} are not supported; only text")
        if not isinstance(part.get("text"), str):
            raise FieldError("a text part needs a string 'text'")
        texts.append(part["text"])
    return "\n".join(texts)


def _embedding_input(v: object, _: object) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and v and all(isinstance(s, str) for s in v):
        return tuple(v)
    if isinstance(v, list) and not v:
        raise FieldError("must not be empty")
    if isinstance(v, list) and all(isinstance(s, int | list) for s in v):
        raise FieldError("token arrays are not supported; send the text")
    raise FieldError("expected a string or a list of strings")


def _not_supported(v: object, _: object) -> None:
    if v in (False, 0, [], {}):
        return
    raise FieldError("is not supported by this gateway")


def _only_one(v: object, _: object) -> int:
    if v != 1 or isinstance(v, bool):
        raise FieldError("only n=1 is supported")
    return 1


def _text_format(v: object, _: object) -> None:
    if v == {"type": "text"}:
        return
    raise FieldError("only {\"type\": \"text\"} is supported")


def _tool_choice(v: object, _: object) -> None:
    if v in ("none", "auto"):
        return
    raise FieldError("tools are not supported by this gateway")


for _type, _hook in [
    (MessageContent, _message_content),
    (EmbeddingInput, _embedding_input),
    (NotSupported, _not_supported),
    (OnlyOne, _only_one),
    (TextFormat, _text_format),
    (ToolChoice, _tool_choice),
]:
    CONVERTER.register_structure_hook(_type, _hook)


def chat_messages_problems(data: object, *, max_messages: int) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        return []
    messages: list[Any] = data["messages"]
    problems = []
    if not messages:
        problems.append("must not be empty @ $.messages")
    if len(messages) > max_messages:
        problems.append(f"at most {max_messages} messages are accepted @ $.messages")
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("content") is None and "role" in message:
            problems.append(f"required field missing @ $.messages[{i}].content")
    return problems


def openai_chat_request(body: ChatCompletionBody) -> ChatRequest:
    # OpenAI's "developer" role is its newer name for "system"; upstreams know the old one.
    messages = tuple(
        Message(role="system" if m.role == "developer" else m.role, content=m.content or "") for m in body.messages)
    parameters = Parameters(
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        top_p=body.top_p,
        stop=body.stop,
        seed=body.seed,
    )
    return ChatRequest(model=body.model, messages=messages, parameters=parameters)


def openai_embed_request(body: EmbeddingsV1Body, *, max_inputs: int, single: bool) -> EmbedRequest:
    if len(body.input) > max_inputs:
        raise invalid([f"at most {max_inputs} texts are accepted @ $.input"])
    return EmbedRequest(model=body.model, inputs=body.input, single=single)

"""Request bodies of the OpenAI-compatible surface (`/v1`), checked by the same strict
converter as `/api/v1` and mapped to the same normalized requests.

The whole of a modern chat request is carried: tools and tool results, JSON output,
images, reasoning effort, penalties, logprobs and logit bias (docs/capabilities.md). What
a backend cannot do is not refused here: that backend is skipped when the request is
routed. What no backend could ever honour (n > 1, the deprecated `functions`) is refused
with a 400 naming the field. Fields that do not change the answer (`user`, `metadata`,
`store`, `service_tier`) are accepted and dropped; `user` is never logged.
"""

from __future__ import annotations

from typing import Any, Literal, NewType

from attrs import frozen

from proxy.llm import ChatRequest, EmbedRequest, Message, Parameters
from proxy.surfaces.openai.content_parts import Content, message_content
from proxy.surfaces.openai.tools import (
    LogitBias,
    ReasoningEffort,
    ResponseFormatSpec,
    ToolBody,
    ToolCallBody,
    ToolChoiceSpec,
    TopLogprobs,
    tool_problems,
)
from proxy.surfaces.request_bodies import (
    CONVERTER,
    FieldError,
    ModelId,
    Penalty,
    Seed,
    StopSequences,
    Temperature,
    TokenCount,
    TopP,
    invalid,
)

OpenAIRole = Literal["system", "developer", "user", "assistant", "tool"]
MessageContent = NewType("MessageContent", object)
EmbeddingInput = NewType("EmbeddingInput", object)
# Accepted only with a value that asks for nothing the gateway cannot do.
NotSupported = NewType("NotSupported", object)
OnlyOne = NewType("OnlyOne", int)
LegacyFunctionCall = NewType("LegacyFunctionCall", object)


@frozen
class ChatMessageBody:
    role: OpenAIRole
    content: MessageContent | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCallBody] | None = None
    refusal: str | None = None
    # What reasoning servers send back in earlier assistant turns; not passed on again.
    reasoning_content: str | None = None


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
    response_format: ResponseFormatSpec | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs | None = None
    logit_bias: LogitBias | None = None
    tools: list[ToolBody] | None = None
    functions: NotSupported | None = None
    tool_choice: ToolChoiceSpec | None = None
    function_call: LegacyFunctionCall | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: ReasoningEffort | None = None
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


def _embedding_input(v: object, _: object) -> tuple[str, ...] | tuple[tuple[int, ...], ...]:
    """Texts, or token arrays (one list of ints, or a list of them) as LangChain sends."""
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and not v:
        raise FieldError("must not be empty")
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return tuple(v)
    if isinstance(v, list) and all(_is_token(t) for t in v):
        return (tuple(v),)
    if isinstance(v, list) and all(isinstance(a, list) and a and all(_is_token(t) for t in a) for a in v):
        return tuple(tuple(a) for a in v)
    raise FieldError("expected a string, a list of strings, or token arrays (lists of non-negative integers)")


def _is_token(t: object) -> bool:
    return isinstance(t, int) and not isinstance(t, bool) and t >= 0


def _not_supported(v: object, _: object) -> None:
    if v in (False, 0, [], {}):
        return
    raise FieldError("is not supported by this gateway")


def _only_one(v: object, _: object) -> int:
    if v != 1 or isinstance(v, bool):
        raise FieldError("only n=1 is supported")
    return 1


def _legacy_function_call(v: object, _: object) -> None:
    if v in ("none", "auto"):
        return
    raise FieldError("the deprecated function_call is not supported; send tools and tool_choice")


for _type, _hook in [
    (MessageContent, message_content),
    (EmbeddingInput, _embedding_input),
    (NotSupported, _not_supported),
    (OnlyOne, _only_one),
    (LegacyFunctionCall, _legacy_function_call),
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
        # An assistant turn that only calls tools may have no content, as OpenAI allows.
        if (isinstance(message, dict) and message.get("content") is None and "role" in message
                and not (message.get("role") == "assistant" and message.get("tool_calls"))):
            problems.append(f"required field missing @ $.messages[{i}].content")
    return [*problems, *tool_problems(data)]


def openai_chat_request(body: ChatCompletionBody) -> ChatRequest:
    parameters = Parameters(
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        top_p=body.top_p,
        stop=body.stop,
        seed=body.seed,
        frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty,
    )
    return ChatRequest(
        model=body.model, messages=_messages(body.messages), parameters=parameters,
        tools=tuple(tool.normalized() for tool in body.tools or ()),
        tool_choice=body.tool_choice,  # type: ignore[arg-type]  # the hook made it a ToolChoice
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=body.response_format,  # type: ignore[arg-type]  # the hook made it a ResponseFormat
        reasoning_effort=body.reasoning_effort,
        logit_bias=body.logit_bias,
        logprobs=body.logprobs,
        top_logprobs=body.top_logprobs,
    )


def _messages(bodies: list[ChatMessageBody]) -> tuple[Message, ...]:
    messages: list[Message] = []
    tool_names: dict[str, str] = {}  # call id -> function name, for the tool turns that answer them
    for m in bodies:
        content = m.content if isinstance(m.content, Content) else Content("")
        calls = tuple(call.normalized() for call in m.tool_calls or ())
        tool_names.update((call.id, call.name) for call in calls)
        messages.append(Message(
            # OpenAI's "developer" role is its newer name for "system"; upstreams know the old one.
            role="system" if m.role == "developer" else m.role,
            content=content.text, images=content.images, tool_calls=calls, tool_call_id=m.tool_call_id,
            tool_name=tool_names.get(m.tool_call_id or "") if m.role == "tool" else None,
        ))
    return tuple(messages)


def openai_embed_request(body: EmbeddingsV1Body, *, max_inputs: int, single: bool) -> EmbedRequest:
    inputs: Any = body.input
    if len(inputs) > max_inputs:
        raise invalid([f"at most {max_inputs} inputs are accepted @ $.input"])
    if inputs and isinstance(inputs[0], tuple):
        return EmbedRequest(model=body.model, inputs=(), single=single, token_arrays=inputs)
    return EmbedRequest(model=body.model, inputs=inputs, single=single)

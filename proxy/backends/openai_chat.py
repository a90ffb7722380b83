"""Translation between the normalized chat and OpenAI's `/chat/completions` wire, both ways
(and the request of a text completion, `/completions`).

The request is OpenAI's own shape, so most of it goes out as the client sent it: tools,
`tool_choice`, `parallel_tool_calls`, `response_format` (unchanged, `strict` included),
`reasoning_effort`, penalties, `logit_bias`, `logprobs`. Images go back into content parts
(text first, then the images), an http(s) URL untouched for the upstream to fetch.

Answers: `message.tool_calls` (arguments as JSON text), and reasoning in
`reasoning_content` (vLLM, llama.cpp, DeepSeek) or `reasoning` (newer vLLM), kept apart
from `content`. A stream sends tool calls in pieces: the id and name first, then the
arguments' text in chunks, each tagged with the call's `index`.
"""

from __future__ import annotations

from typing import Any

from proxy.backends.base import Fields, call_id
from proxy.llm import (
    ChatRequest,
    CompletionRequest,
    LoggedText,
    Message,
    Parameters,
    ReasoningDelta,
    StreamItem,
    ToolCall,
    ToolCallDelta,
)

_PASSED_AS_IS = ("temperature", "max_tokens", "top_p", "top_k", "seed", "frequency_penalty", "presence_penalty")
_REQUEST_AS_IS = ("parallel_tool_calls", "reasoning_effort", "logit_bias", "logprobs", "top_logprobs")


def chat_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body = _with_parameters({"model": request.model, "messages": [_message(m) for m in request.messages]},
                            request.parameters, stream=stream)
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
    if request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}} if choice.mode == "function" else choice.mode)
    if request.response_format is not None:
        body["response_format"] = request.response_format.original
    for name in _REQUEST_AS_IS:
        if (value := getattr(request, name)) is not None:
            body[name] = value
    return body


def completion_body(request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
    """`/completions`: the prompt (and a fill-in-the-middle `suffix`) with the same parameters."""
    body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
    if request.suffix is not None:
        body["suffix"] = request.suffix
    return _with_parameters(body, request.parameters, stream=stream)


def _with_parameters(body: dict[str, Any], p: Parameters, *, stream: bool) -> dict[str, Any]:
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    for name in _PASSED_AS_IS:
        if (value := getattr(p, name)) is not None:
            body[name] = value
    if p.stop is not None:
        body["stop"] = list(p.stop)
    return body


def _tool(tool: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _message(m: Message) -> dict[str, Any]:
    content: Any = m.content
    if m.images:
        content = [*([{"type": "text", "text": m.content}] if m.content else []), *(
            {"type": "image_url", "image_url": {"url": image.url, **({"detail": image.detail} if image.detail else {})}}
            for image in m.images)]
    wire: dict[str, Any] = {"role": m.role, "content": content}
    if m.tool_calls:
        wire["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                              for c in m.tool_calls]
        if not m.content:
            wire["content"] = None
    if m.tool_call_id is not None:
        wire["tool_call_id"] = m.tool_call_id
    return wire


def tool_calls(message: dict[str, Any], fields: Fields) -> list[ToolCall]:
    calls = []
    for index, raw in enumerate(fields.items(message.get("tool_calls"), "tool_calls")):
        call = fields.object(raw, "a tool call")
        function = fields.object(call.get("function"), "a tool call's function")
        name = fields.text(function.get("name"), "a tool call's name")
        arguments = fields.text(function.get("arguments"), "a tool call's arguments")
        given = fields.text(call.get("id"), "a tool call's id")
        calls.append(ToolCall(id=given or call_id(index, name, arguments), name=name, arguments=arguments))
    return calls


def reasoning(message: dict[str, Any], fields: Fields) -> str:
    return fields.text(message.get("reasoning_content") or message.get("reasoning"), "reasoning_content")


def delta_items(delta: dict[str, Any], fields: Fields, started: set[int], logprobs: Any = None) -> list[StreamItem]:
    """What one chunk's delta carries: thinking, text (with the chunk's `logprobs`, when it
    has them), pieces of tool calls.

    A call's id and name are passed on with its first piece only (`started` holds the
    indexes seen): some servers repeat them on every piece, which clients that concatenate
    pieces would turn into a doubled name."""
    items: list[StreamItem] = []
    thought = reasoning(delta, fields)
    if thought:
        items.append(ReasoningDelta(thought))
    token = fields.text(delta.get("content"), "content")
    logged = token_logprobs(logprobs, fields) if logprobs is not None else ()  # None: not asked for
    if logged:
        items.append(LoggedText(token, logged))
    elif token:
        items.append(token)
    for raw in fields.items(delta.get("tool_calls"), "tool_calls"):
        piece = fields.object(raw, "a tool call")
        function = fields.object(piece.get("function"), "a tool call's function")
        index = fields.count(piece.get("index"), "a tool call's index")
        arguments = fields.text(function.get("arguments"), "a tool call's arguments")
        if index in started:
            items.append(ToolCallDelta(index=index, arguments=arguments))
            continue
        started.add(index)
        name = fields.text(function.get("name"), "a tool call's name")
        given = fields.optional_text(piece.get("id"), "a tool call's id")
        items.append(ToolCallDelta(index=index, id=given or call_id(index, name, ""), name=name, arguments=arguments))
    return items


def token_logprobs(logprobs: Any, fields: Fields) -> tuple[dict[str, Any], ...]:
    """The entries of a choice's `logprobs` object (`content`), each an object as the
    upstream sent it."""
    content = fields.object(logprobs, "logprobs").get("content")
    return tuple(fields.object(entry, "a logprobs entry") for entry in fields.items(content, "logprobs.content"))

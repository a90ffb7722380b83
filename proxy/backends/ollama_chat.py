"""Translation between the normalized chat and Ollama's `/api/chat` wire, both ways.

Ollama differs from OpenAI where it matters here (its docs/api.md):
- a tool call's `arguments` is a JSON object, not a string, and may come without an id:
  ids are made here, stable for the same call (a hash of its position, name and arguments);
- a stream delivers each tool call whole, in one line;
- a tool result is a plain `{"role": "tool", "content", "tool_name"}` message;
- images are base64 payloads in the message's `images` (never URLs: the gateway fetches none);
- JSON output is `format`: "json" or the schema object itself;
- reasoning is `think` (true/false, or "low"/"medium"/"high" for gpt-oss) and comes back in
  `message.thinking`, apart from `content`;
- penalties and the other sampling parameters are `options`.
Ollama has no `tool_choice`: "none" sends no tools, a named function sends only that one,
"required" sends them all (the model may still answer in text; docs/capabilities.md).
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.backends.base import Fields, call_id
from proxy.llm import (
    ChatRequest,
    Message,
    Parameters,
    ReasoningDelta,
    StreamItem,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# gateway parameter -> Ollama option
OPTION_NAMES = {
    "temperature": "temperature",
    "max_tokens": "num_predict",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop": "stop",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}

def wire_options(parameters: Parameters) -> dict[str, Any]:
    """The sampling parameters as Ollama's `options` (shared with /api/generate)."""
    return {
        option: list(value) if isinstance(value, tuple) else value
        for param, option in OPTION_NAMES.items()
        if (value := getattr(parameters, param)) is not None
    }


# Models whose `think` takes a level rather than true/false (Ollama's docs: gpt-oss).
_LEVELLED_THINKERS = ("gpt-oss",)


def chat_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": [_message(m) for m in request.messages],
                            "stream": stream}
    if options := wire_options(request.parameters):
        body["options"] = options
    tools = _offered_tools(request)
    if tools:
        body["tools"] = [_tool(t) for t in tools]
    if request.response_format is not None:
        body["format"] = request.response_format.schema if request.response_format.kind == "json_schema" else "json"
    if request.reasoning_effort is not None:
        body["think"] = think_value(request.model, request.reasoning_effort)
    if request.logprobs:
        body["logprobs"] = True
        if request.top_logprobs:
            body["top_logprobs"] = request.top_logprobs
    return body


def think_value(model: str, effort: str) -> bool | str:
    if effort == "none":
        return False
    if model.startswith(_LEVELLED_THINKERS):
        return "low" if effort == "minimal" else effort
    return True


def _offered_tools(request: ChatRequest) -> tuple[Tool, ...]:
    choice = request.tool_choice
    if choice is None or choice.mode in ("auto", "required"):
        return request.tools
    if choice.mode == "none":
        return ()
    return tuple(t for t in request.tools if t.name == choice.name)


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _message(m: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.images:
        wire["images"] = [image.base64 for image in m.images]
    if m.tool_calls:
        wire["tool_calls"] = [
            {"function": {"name": c.name, "arguments": orjson.loads(c.arguments) if c.arguments.strip() else {}}}
            for c in m.tool_calls]
    if m.role == "tool" and m.tool_name:
        wire["tool_name"] = m.tool_name
    return wire


def usage(final: dict[str, Any], fields: Fields) -> Usage | None:
    """The token counts of a stream's final line (or a single answer), when it has them."""
    if "prompt_eval_count" not in final and "eval_count" not in final:
        return None
    return Usage(
        prompt_tokens=fields.count(final.get("prompt_eval_count"), "prompt_eval_count"),
        completion_tokens=fields.count(final.get("eval_count"), "eval_count"),
    )


def tool_calls(message: dict[str, Any], fields: Fields, first_index: int = 0) -> list[ToolCall]:
    """The message's tool calls, with arguments as JSON text and an id each."""
    calls = []
    for offset, raw in enumerate(fields.items(message.get("tool_calls"), "tool_calls")):
        call = fields.object(raw, "a tool call")
        function = fields.object(call.get("function"), "a tool call's function")
        name = fields.text(function.get("name"), "a tool call's name")
        arguments = function.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise fields.bad("a tool call's arguments are not an object")
        text = orjson.dumps(arguments).decode()
        given = call.get("id")
        index = first_index + offset
        calls.append(ToolCall(id=given if isinstance(given, str) and given else call_id(index, name, text),
                              name=name, arguments=text))
    return calls


def plain_text(message: Any) -> str | None:
    """The text of a stream line's message that carries nothing else (nearly every line),
    else None: such a line needs none of stream_items' checks and lists."""
    if type(message) is dict and "thinking" not in message and "tool_calls" not in message:
        content = message.get("content")
        if type(content) is str:
            return content
    return None


def stream_items(message: dict[str, Any], fields: Fields, calls_so_far: int) -> list[StreamItem]:
    """What one stream line carries: thinking, text, whole tool calls (one delta each)."""
    items: list[StreamItem] = []
    thinking = fields.text(message.get("thinking"), "thinking")
    if thinking:
        items.append(ReasoningDelta(thinking))
    content = fields.text(message.get("content"), "content")
    if content:
        items.append(content)
    for offset, call in enumerate(tool_calls(message, fields, calls_so_far)):
        items.append(ToolCallDelta(index=calls_so_far + offset, id=call.id, name=call.name, arguments=call.arguments))
    return items


def logprobs(message: dict[str, Any], fields: Fields) -> tuple[dict[str, Any], ...] | None:
    """A line's `logprobs` as OpenAI's entries (`bytes` null and `top_logprobs` empty where
    Ollama leaves them out); None when the line has none (an Ollama before 0.12.11)."""
    raw = message.get("logprobs")
    if raw is None:
        return None
    return tuple(_token_logprob(fields.object(entry, "a logprobs entry"), fields, top=True)
                 for entry in fields.items(raw, "logprobs"))


def _token_logprob(entry: dict[str, Any], fields: Fields, *, top: bool) -> dict[str, Any]:
    logprob = entry.get("logprob")
    if type(logprob) not in (int, float):
        raise fields.bad("a logprobs entry without a number in logprob")
    converted: dict[str, Any] = {"token": fields.text(entry.get("token"), "a logprobs entry's token"),
                                 "logprob": logprob, "bytes": entry.get("bytes")}
    if top:
        converted["top_logprobs"] = [_token_logprob(fields.object(alt, "a top_logprobs entry"), fields, top=False)
                                     for alt in fields.items(entry.get("top_logprobs"), "top_logprobs")]
    return converted

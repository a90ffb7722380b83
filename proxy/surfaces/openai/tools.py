"""The /v1 request's tools, tool calls, tool choice and response format: their bodies, the
checks that need more than a type, and their normalized forms (proxy/llm.py).

What is checked is what a backend would otherwise refuse after the request left, or what
could not be translated for Ollama: a tool needs a name and, if it has parameters, a JSON
schema object; an earlier call's `arguments` must be a JSON object in a string (Ollama
takes it as an object); a `json_schema` format needs an object schema.
"""

from __future__ import annotations

import re
from typing import Any, Literal, NewType

import orjson
from attrs import frozen

from proxy.llm import ResponseFormat, Tool, ToolCall, ToolChoice
from proxy.surfaces.request_bodies import CONVERTER, FieldError, SchemaObject

ToolName = NewType("ToolName", str)
ArgumentsText = NewType("ArgumentsText", str)
ToolChoiceSpec = NewType("ToolChoiceSpec", object)
ResponseFormatSpec = NewType("ResponseFormatSpec", object)
ReasoningEffort = NewType("ReasoningEffort", str)
TopLogprobs = NewType("TopLogprobs", int)
LogitBias = NewType("LogitBias", dict[str, float])

# OpenAI's rule for function names; Ollama and llama.cpp's templates accept the same.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
MAX_TOOLS = 128  # OpenAI's limit


@frozen
class FunctionBody:
    name: ToolName
    description: str | None = None
    parameters: SchemaObject | None = None
    strict: bool | None = None


@frozen
class ToolBody:
    type: Literal["function"]
    function: FunctionBody

    def normalized(self) -> Tool:
        f = self.function
        # A function without parameters takes none: stated, since some upstreams require it.
        parameters = dict(f.parameters) if f.parameters is not None else {"type": "object", "properties": {}}
        return Tool(name=f.name, description=f.description, parameters=parameters, strict=f.strict)


@frozen
class CalledFunctionBody:
    name: ToolName
    arguments: ArgumentsText


@frozen
class ToolCallBody:
    id: str
    type: Literal["function"]
    function: CalledFunctionBody

    def normalized(self) -> ToolCall:
        return ToolCall(id=self.id, name=self.function.name, arguments=self.function.arguments)


def _tool_name(v: object, _: object) -> str:
    if not isinstance(v, str) or not _NAME.fullmatch(v):
        raise FieldError("expected a name of 1 to 64 letters, digits, '_' or '-'")
    return v


def _arguments_text(v: object, _: object) -> str:
    if not isinstance(v, str):
        raise FieldError("expected the arguments as a JSON object in a string")
    try:
        parsed = orjson.loads(v) if v.strip() else {}
    except orjson.JSONDecodeError:
        raise FieldError("expected the arguments as a JSON object in a string; this is not JSON") from None
    if not isinstance(parsed, dict):
        raise FieldError("expected the arguments as a JSON object in a string")
    return v


def _tool_choice(v: object, _: object) -> ToolChoice:
    if v in ("auto", "none", "required"):
        return ToolChoice(mode=v)
    if isinstance(v, dict) and v.get("type") == "function" and isinstance(v.get("function"), dict):
        return ToolChoice(mode="function", name=_tool_name(v["function"].get("name"), None))
    raise FieldError('expected "auto", "none", "required" or {"type": "function", "function": {"name": "..."}}')


def _response_format(v: object, _: object) -> ResponseFormat | None:
    if not isinstance(v, dict) or v.get("type") not in ("text", "json_object", "json_schema"):
        raise FieldError('expected {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", ...}')
    if v["type"] == "text":
        return None
    if v["type"] == "json_object":
        return ResponseFormat(kind="json_object", original=v)
    spec = v.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise FieldError('json_schema needs {"name": "...", "schema": {...}}')
    schema = spec.get("schema", {"type": "object"})
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise FieldError('json_schema.schema must be a JSON schema object ({"type": "object", ...})')
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise FieldError("json_schema.strict must be true or false")
    return ResponseFormat(kind="json_schema", original=v, schema=schema, strict=strict)


def _reasoning_effort(v: object, _: object) -> str:
    if v not in REASONING_EFFORTS:
        raise FieldError(f"must be one of {', '.join(REASONING_EFFORTS)}")
    return str(v)


def _top_logprobs(v: object, _: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 20:
        raise FieldError("expected an integer between 0 and 20")
    return v


def _logit_bias(v: object, _: object) -> dict[str, float]:
    if not isinstance(v, dict) or not all(
            isinstance(k, str) and k.isdigit() and isinstance(b, int | float) and not isinstance(b, bool)
            and -100 <= b <= 100 for k, b in v.items()):
        raise FieldError("expected token ids mapped to numbers between -100 and 100")
    return {k: float(b) for k, b in v.items()}


for _type, _hook in [
    (ToolName, _tool_name),
    (ArgumentsText, _arguments_text),
    (ToolChoiceSpec, _tool_choice),
    (ResponseFormatSpec, _response_format),
    (ReasoningEffort, _reasoning_effort),
    (TopLogprobs, _top_logprobs),
    (LogitBias, _logit_bias),
]:
    CONVERTER.register_structure_hook(_type, _hook)


def tool_problems(data: dict[str, Any]) -> list[str]:
    """Checks across fields: the chosen tool exists, every tool result answers an earlier call."""
    problems = []
    sent = data.get("tools")
    tools: list[Any] = sent if isinstance(sent, list) else []
    if len(tools) > MAX_TOOLS:
        problems.append(f"at most {MAX_TOOLS} tools are accepted @ $.tools")
    names = {t["function"].get("name") for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)}
    choice = data.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        chosen = choice["function"].get("name")
        if chosen not in names:
            problems.append(f"names the function {chosen!r}, which is not among the tools @ $.tool_choice")
    elif choice == "required" and not tools:
        problems.append('"required" needs tools @ $.tool_choice')
    called: set[str] = set()
    for i, message in enumerate(data.get("messages") or []):
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or [] if isinstance(message.get("tool_calls"), list) else []:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                called.add(call["id"])
        if message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                problems.append(f"required field missing @ $.messages[{i}].tool_call_id")
            elif call_id not in called:
                problems.append(f"answers no earlier assistant tool call (unknown id) @ $.messages[{i}].tool_call_id")
    return problems

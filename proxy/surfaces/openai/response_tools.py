"""The Responses API's function tools, tool choice, `text.format` and `reasoning`, and their
normalized forms: the same `Tool`, `ToolChoice` and `ResponseFormat` a chat completion
carries, so both backends serve them as they serve /v1/chat/completions.

The Responses shapes are flat where chat completions nest: a tool is `{"type": "function",
"name", "parameters"}`, a chosen tool `{"type": "function", "name"}`, a JSON schema format
`{"type": "json_schema", "name", "schema", "strict"}`.
"""

from __future__ import annotations

from typing import Any, Literal, NewType

from attrs import frozen

from proxy.llm import ResponseFormat, Tool, ToolChoice
from proxy.surfaces.openai.request_models import NotSupported
from proxy.surfaces.openai.tools import MAX_TOOLS, ReasoningEffort, ToolName
from proxy.surfaces.request_bodies import CONVERTER, FieldError, SchemaObject

ResponseTextFormat = NewType("ResponseTextFormat", object)
ResponseToolChoice = NewType("ResponseToolChoice", object)


@frozen
class FunctionToolBody:
    type: Literal["function"]
    name: ToolName
    description: str | None = None
    parameters: SchemaObject | None = None
    strict: bool | None = None

    def normalized(self) -> Tool:
        parameters = dict(self.parameters or {"type": "object", "properties": {}})
        return Tool(name=self.name, description=self.description, parameters=parameters, strict=self.strict)


@frozen
class ReasoningBody:
    effort: ReasoningEffort | None = None
    # A summary of the thinking is an output this gateway does not produce.
    summary: NotSupported | None = None


def _tool_choice(v: object, _: object) -> ToolChoice:
    if v in ("auto", "none", "required"):
        return ToolChoice(mode=v)
    if isinstance(v, dict) and v.get("type") == "function" and isinstance(v.get("name"), str):
        return ToolChoice(mode="function", name=v["name"])
    raise FieldError('expected "auto", "none", "required" or {"type": "function", "name": "..."}')


def _text_format(v: object, _: object) -> ResponseFormat | None:
    if not isinstance(v, dict) or v.get("type") not in ("text", "json_object", "json_schema"):
        raise FieldError('expected {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", ...}')
    if v["type"] == "text":
        return None
    if v["type"] == "json_object":
        return ResponseFormat(kind="json_object", original={"type": "json_object"})
    name, schema, strict = v.get("name"), v.get("schema"), v.get("strict")
    if not isinstance(name, str) or not isinstance(schema, dict) or schema.get("type") != "object":
        raise FieldError('json_schema needs a "name" and a "schema" that is a JSON schema object')
    if strict is not None and not isinstance(strict, bool):
        raise FieldError("strict must be true or false")
    # Chat completions' spelling, which OpenAI-compatible upstreams take as is.
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    return ResponseFormat(kind="json_schema", original={"type": "json_schema", "json_schema": spec},
                          schema=schema, strict=strict)


CONVERTER.register_structure_hook(ResponseToolChoice, _tool_choice)
CONVERTER.register_structure_hook(ResponseTextFormat, _text_format)


def tool_problems(data: dict[str, Any]) -> list[str]:
    """Checks across fields: a chosen tool is among the tools, "required" has some."""
    sent = data.get("tools")
    tools: list[Any] = sent if isinstance(sent, list) else []
    problems = []
    if len(tools) > MAX_TOOLS:
        problems.append(f"at most {MAX_TOOLS} tools are accepted @ $.tools")
    names = {t.get("name") for t in tools if isinstance(t, dict)}
    choice = data.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name") not in names:
        problems.append(f"names the function {choice.get('name')!r}, which is not among the tools @ $.tool_choice")
    elif choice == "required" and not tools:
        problems.append('"required" needs tools @ $.tool_choice')
    return problems

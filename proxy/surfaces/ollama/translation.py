"""Ollama's chat features in the normalized request, for backends that speak chat
completions: the same ChatRequest the `/v1` surface builds (proxy/llm.py), so the fallback
sends them with the one translation it has (backends/openai_chat.py).

- `tools` (the same function shape as OpenAI's) -> tools;
- an assistant message's `tool_calls` (arguments as an object, usually without an id) ->
  calls with their arguments as JSON text and an id made for each (stable: a hash of its
  place, name and arguments); a `role: "tool"` message -> a tool result answering the
  call its `tool_call_id` names (sent by LangChain and the AI SDK's Ollama providers,
  ignored by Ollama), else the earliest unanswered call of its `tool_name` (or the
  earliest unanswered one);
- `format`: "json" -> JSON mode, a schema object -> structured output with that schema;
- `images` (bare base64) -> data: URLs of the media type their bytes show;
- `logprobs` (and `top_logprobs`, at most 20) -> the same, their entries back in Ollama's
  `logprobs` (the fields are the same: token, logprob, bytes, top_logprobs);
- `think`: true -> reasoning effort "medium" (OpenAI's default), "low"/"medium"/"high" ->
  that effort, false -> none asked (a model that thinks anyway has its thinking left out
  of the answer, as Ollama's `think: false` does).

What cannot be said in chat completions makes the fallback skip the request as unable,
with the field's path (`Unable`); an Ollama backend still gets the request as it is.
"""

from __future__ import annotations

from typing import Any

import orjson
from attrs import frozen

from proxy.backends.base import call_id
from proxy.errors import InvalidInput
from proxy.llm import Image, Message, ResponseFormat, Tool, ToolCall
from proxy.surfaces.openai.content_parts import MAX_IMAGES_PER_MESSAGE, base64_image
from proxy.surfaces.openai.tools import MAX_TOOLS, ToolBody
from proxy.surfaces.request_bodies import FieldError, structure

# Why an OpenAI-compatible backend cannot serve a request, and the field that says it
# (("", "$") when it can).
Unable = tuple[str, str]
ABLE: Unable = ("", "$")


class Untranslatable(Exception):
    """A value chat completions cannot carry; `reason` and `field` as in Unable."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(reason)
        self.reason, self.field = reason, field


@frozen
class Features:
    """The parts of a ChatRequest beyond its messages' text."""

    tools: tuple[Tool, ...] = ()
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


def features(raw: dict[str, Any]) -> Features:
    logprobs = raw.get("logprobs") is True
    return Features(tools=_tools(raw.get("tools")), response_format=_format(raw.get("format")),
                    reasoning_effort=_effort(raw.get("think")), logprobs=logprobs or None,
                    top_logprobs=_top_logprobs(raw.get("top_logprobs")) if logprobs else None)


# OpenAI's bounds on `top_logprobs`, which Ollama does not have.
MAX_TOP_LOGPROBS = 20


def _top_logprobs(value: object) -> int | None:
    if isinstance(value, int) and not 0 <= value <= MAX_TOP_LOGPROBS:
        raise Untranslatable(f"chat completions take top_logprobs from 0 to {MAX_TOP_LOGPROBS}", "$.top_logprobs")
    return value if isinstance(value, int) else None


def _tools(tools: object) -> tuple[Tool, ...]:
    if isinstance(tools, list) and len(tools) > MAX_TOOLS:
        raise Untranslatable(f"chat completions take at most {MAX_TOOLS} tools", "$.tools")
    translated = []
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        try:
            translated.append(structure(tool, ToolBody, f"$.tools[{i}]").normalized())
        except InvalidInput as exc:
            problems = exc.extra.get("errors") or [exc.message]
            reason, _, field = str(problems[0]).rpartition(" @ ")
            raise Untranslatable(f"a tool chat completions cannot take: {reason}", field or f"$.tools[{i}]") from None
    return tuple(translated)


def _format(value: object) -> ResponseFormat | None:
    if value == "json":
        return ResponseFormat(kind="json_object", original={"type": "json_object"})
    if not isinstance(value, dict):
        return None  # "" or absent: plain text
    if value.get("type", "object") != "object":
        raise Untranslatable("chat completions take a JSON schema of an object only", "$.format")
    original = {"type": "json_schema", "json_schema": {"name": "output", "schema": value}}
    return ResponseFormat(kind="json_schema", original=original, schema=value)


def _effort(think: object) -> str | None:
    if think is True:
        return "medium"
    return think if isinstance(think, str) and think else None


def message_images(payloads: list[str] | None, where: str) -> tuple[Image, ...]:
    if not payloads:
        return ()
    if len(payloads) > MAX_IMAGES_PER_MESSAGE:
        raise Untranslatable(f"at most {MAX_IMAGES_PER_MESSAGE} images per message", where)
    images = []
    for j, payload in enumerate(payloads):
        try:
            images.append(base64_image(payload, "the image"))
        except FieldError as exc:
            raise Untranslatable(str(exc), f"{where}[{j}]") from None
    return tuple(images)


class ToolTurns:
    """The ids that tie tool results to the calls they answer, which Ollama's messages leave
    out and chat completions require."""

    def __init__(self) -> None:
        self.pending: list[ToolCall] = []
        self.made = 0

    def calls(self, raw_calls: list[Any] | None, where: str) -> tuple[ToolCall, ...]:
        calls = []
        for j, raw in enumerate(raw_calls or []):
            function = raw.get("function") if isinstance(raw, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            arguments = function.get("arguments", {}) if isinstance(function, dict) else None
            if not isinstance(name, str) or not name or not isinstance(arguments, dict):
                raise Untranslatable('expected {"function": {"name": "...", "arguments": {...}}}', f"{where}[{j}]")
            text = orjson.dumps(arguments).decode()
            given = raw.get("id")
            calls.append(ToolCall(id=given if isinstance(given, str) and given else call_id(self.made, name, text),
                                  name=name, arguments=text))
            self.made += 1
        self.pending += calls
        return tuple(calls)

    def answered(self, tool_name: str | None, tool_call_id: str | None, where: str) -> ToolCall:
        """The call a tool result answers: the one with its id when it names one the
        conversation has, else the earliest unanswered one of that name."""
        call = next((c for c in self.pending if c.id == tool_call_id), None) if tool_call_id else None
        if call is None:
            call = next((c for c in self.pending if tool_name in (None, c.name)), None)
        if call is None:
            raise Untranslatable("a tool result must answer an earlier assistant tool call of that name "
                                 "for chat completions", where)
        self.pending.remove(call)
        return call


def tool_result(turns: ToolTurns, content: str, tool_name: str | None, tool_call_id: str | None,
                where: str) -> Message:
    call = turns.answered(tool_name, tool_call_id, where)
    return Message(role="tool", content=content, tool_call_id=call.id, tool_name=call.name)

"""The Responses API's `input` items, read into the normalized messages of a chat.

- a message (`{"role", "content"}`, with or without `"type": "message"`): its content a
  string or `input_text` / `output_text` / `input_image` parts (text joined by newlines);
- a `function_call` (an earlier answer's call, sent back as history): an assistant turn
  with that call; consecutive calls, and a call right after an assistant message, share
  one turn, as chat completions carry parallel calls;
- a `function_call_output`: the tool turn answering the call with that `call_id`.
Every problem is named with its path (`$.input[2].call_id`); nothing half-read goes upstream.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from proxy.llm import Image, Message, Role, ToolCall
from proxy.surfaces.openai.content_parts import message_content
from proxy.surfaces.request_bodies import FieldError

_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = {"input_text", "output_text"}
_FIELDS = {
    "message": {"type", "role", "content", "id", "status", "phase"},
    "function_call": {"type", "call_id", "name", "arguments", "id", "status"},
    "function_call_output": {"type", "call_id", "output", "id", "status"},
}


class _Reader:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.problems: list[str] = []
        self.calls: dict[str, ToolCall] = {}

    def item(self, item: Any, path: str) -> None:
        if not isinstance(item, dict):
            self.problems.append(f"expected an object @ {path}")
            return
        kind = item.get("type", "message")
        if kind == "item_reference":
            self.problems.append("answers are not stored by this gateway, so items cannot be referenced: send "
                                 "the item itself (the AI SDK does with providerOptions.openai.store = false) "
                                 f"@ {path}.type")
            return
        if kind not in _FIELDS:
            self.problems.append(f"items of type {kind!r} are not supported; only messages, function_call and "
                                 f"function_call_output @ {path}.type")
            return
        unknown = set(item) - _FIELDS[kind]
        if unknown:
            self.problems.append(f"unknown field(s): {', '.join(sorted(unknown))} @ {path}")
        {"message": self.message, "function_call": self.call, "function_call_output": self.output}[kind](item, path)

    def message(self, item: dict[str, Any], path: str) -> None:
        role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
        if role is None:
            self.problems.append(f"must be one of {', '.join(_ROLES)} @ {path}.role")
        content = self.content(item.get("content"), f"{path}.content")
        if role is not None and content is not None:
            text, images = content
            self.messages.append(Message(role=role, content=text, images=images))

    def content(self, content: Any, path: str) -> tuple[str, tuple[Image, ...]] | None:
        if isinstance(content, str):
            return content, ()
        if not isinstance(content, list):
            self.problems.append(f"expected a string or a list of content parts @ {path}")
            return None
        texts: list[str] = []
        images: list[Image] = []
        before = len(self.problems)
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in _TEXT_PARTS:
                self.problems.append(f"expected a string @ {path}[{j}].text")
            elif kind == "input_image":
                image = self.image(part, f"{path}[{j}]")
                if image is not None:
                    images.append(image)
            else:
                described = repr(kind) if isinstance(kind, str) else "without a type"
                self.problems.append(f"content parts {described} are not supported; only input_text, output_text "
                                     f"and input_image @ {path}[{j}].type")
        return None if len(self.problems) > before else ("\n".join(texts), tuple(images))

    def image(self, part: dict[str, Any], path: str) -> Image | None:
        if not isinstance(part.get("image_url"), str):
            # file_id refers to OpenAI's file store, which the gateway does not have.
            self.problems.append(f"expected an image_url (a data: URL or an http(s) URL) @ {path}.image_url")
            return None
        spec = {"url": part["image_url"], **({"detail": part["detail"]} if "detail" in part else {})}
        try:
            return message_content([{"type": "image_url", "image_url": spec}], None).images[0]
        except FieldError as exc:
            self.problems.append(f"{str(exc).removeprefix('content part [0]: ')} @ {path}")
            return None

    def call(self, item: dict[str, Any], path: str) -> None:
        values = {name: item.get(name) for name in ("call_id", "name", "arguments")}
        texts = {name: value for name, value in values.items() if isinstance(value, str)}
        self.problems.extend(f"expected a string @ {path}.{name}" for name in values if name not in texts)
        if len(texts) < len(values):
            return
        try:
            parsed = orjson.loads(texts["arguments"]) if texts["arguments"].strip() else {}
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            self.problems.append(f"expected the arguments as a JSON object in a string @ {path}.arguments")
            return
        call = ToolCall(id=texts["call_id"], name=texts["name"], arguments=texts["arguments"])
        self.calls[call.id] = call
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant":  # one assistant turn: its text and its calls
            self.messages[-1] = attrs.evolve(last, tool_calls=(*last.tool_calls, call))
        else:
            self.messages.append(Message(role="assistant", content="", tool_calls=(call,)))

    def output(self, item: dict[str, Any], path: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            self.problems.append(f"expected a string @ {path}.call_id")
            return
        if call_id not in self.calls:
            self.problems.append(f"answers no earlier function_call (unknown call_id) @ {path}.call_id")
            return
        content = self.content(item.get("output"), f"{path}.output")
        if content is not None:
            self.messages.append(Message(role="tool", content=content[0], tool_call_id=call_id,
                                         tool_name=self.calls[call_id].name))


def input_messages(data: object, *, max_messages: int) -> tuple[list[Message], list[str]]:
    """The messages of `data["input"]`, and every problem found in its items, each with its path."""
    if not isinstance(data, dict):
        return [], []
    value = data.get("input")
    if isinstance(value, str):
        return [Message(role="user", content=value)], []
    if not isinstance(value, list):
        return [], []  # missing or of the wrong type: the field check says so
    reader = _Reader()
    if not value:
        reader.problems.append("must not be empty @ $.input")
    if len(value) > max_messages:
        reader.problems.append(f"at most {max_messages} items are accepted @ $.input")
    for i, item in enumerate(value):
        reader.item(item, f"$.input[{i}]")
    return reader.messages, reader.problems

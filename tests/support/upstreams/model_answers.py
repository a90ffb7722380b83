"""What the test upstreams' pretend model answers to a chat that uses tools, a JSON format,
images or reasoning: the same decisions for both wire formats, so a test can tell which
backend served and still expect the same content.

- the last message is a tool result: a text answer quoting it (the end of a round trip);
- tools offered (and not tool_choice "none"): a call of the named or first tool, its
  arguments filled in from the tool's JSON schema (so they match it);
- a JSON schema asked for: an object filled in from it; plain JSON mode: {"answer": 4};
- images: says how many it saw and their decoded sizes.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

THINKING = ["Two ", "and two ", "make four."]


def sample(schema: Any) -> Any:
    """A value that matches a simple JSON schema (object, string, number, enum, array)."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: sample(sub) for name, sub in (schema.get("properties") or {}).items()}
    return {"string": "Paris", "integer": 22, "number": 21.5, "boolean": True, "null": None}.get(
        kind, [sample(schema.get("items"))] if kind == "array" else None)


def tool_to_call(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) of the call to make, or None to answer in text."""
    tools = body.get("tools") or []
    messages = body.get("messages") or []
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    chosen = tools[0]["function"]
    if isinstance(choice, dict):
        chosen = next(t["function"] for t in tools if t["function"]["name"] == choice["function"]["name"])
    return chosen["name"], sample(chosen.get("parameters") or {})


def text_answer(body: dict[str, Any], schema: Any, json_mode: bool, images: list[bytes]) -> str | None:
    """The answer's text for a chat using one of the features, or None for a plain chat."""
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return f"The tool said: {messages[-1].get('content')}"
    if schema is not None:
        return orjson.dumps(sample(schema)).decode()
    if json_mode:
        return '{"answer": 4}'
    if images:
        return f"I see {len(images)} image(s) of {', '.join(str(len(i)) for i in images)} bytes."
    return None


def decoded(payloads: list[str]) -> list[bytes]:
    return [base64.b64decode(p, validate=True) for p in payloads]

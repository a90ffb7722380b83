"""Ollama's single answer (`"stream": false` on /api/chat and /api/generate), rebuilt from
its stream.

Asked whole, Ollama sends nothing until the model has finished, so a long answer from a
slow model would be bounded by the wait for headers; the gateway asks for the stream
instead (bounded by its silences, assemble.py) and rebuilds the single answer the way
Ollama's own server builds it from the same lines (server/routes.go, ChatHandler and
GenerateHandler with stream false): the final line, with the text and the thinking of
every line joined into it, every line's `logprobs` entries gathered into its own (asked for
with `logprobs: true`) and, for a chat, every line's tool calls collected. So the
answer has the final line's fields in the final line's order (`done_reason`, durations,
counts, and `context` for /api/generate), as the recorded single answers in tests/data
show; the bytes are re-serialized, the fields are Ollama's.
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.backends.assemble import within_cap
from proxy.backends.base import Fields
from proxy.backends.bounded_reads import MAX_ANSWER_BODY
from proxy.backends.ollama_chat import usage
from proxy.llm import NativeAnswer, NativeRequest

# A chat's text is in `message.content`; a generation's (any other path) in `response`.
_CHAT = "/api/chat"


class SingleAnswer:
    """The lines of one Ollama stream, added up into its single answer (assemble.Collector)."""

    def __init__(self, request: NativeRequest, fields: Fields) -> None:
        self.request, self.fields = request, fields
        self.chat = request.path == _CHAT
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.tool_calls: list[Any] = []
        self.logprobs: list[Any] = []
        self.size = 0  # characters held, held to MAX_ANSWER_BODY (assemble.within_cap)

    def empty(self) -> bool:
        return not (self.text or self.thinking or self.tool_calls)

    def add(self, line: dict[str, Any]) -> NativeAnswer | None:
        fields = self.fields
        part = fields.object(line.get("message"), "message") if self.chat else line
        if text := fields.text(part.get("content" if self.chat else "response"), "content"):
            self.text.append(text)
            self.size += len(text)
            if self.size > MAX_ANSWER_BODY:  # within_cap's check, without its call on every line
                within_cap(self.size)
        if thinking := fields.text(part.get("thinking"), "thinking"):
            self.thinking.append(thinking)
            self.size = within_cap(self.size + len(thinking))
        if self.chat and (calls := fields.items(part.get("tool_calls"), "tool_calls")):
            self.tool_calls += calls
            self.size = within_cap(self.size + len(orjson.dumps(calls)))
        if entries := line.get("logprobs"):  # only when asked for: measured as the JSON they came as
            self.logprobs += fields.items(entries, "logprobs")
            self.size = within_cap(self.size + len(orjson.dumps(entries)))
        if line.get("done") is not True:
            return None
        answer = self._message(line) if self.chat else self._generation(line)
        if self.logprobs:
            answer["logprobs"] = self.logprobs
        if "model" in answer:
            answer["model"] = self.request.public_model
        return NativeAnswer(body=orjson.dumps(answer), usage=usage(line, fields))

    def _message(self, final: dict[str, Any]) -> dict[str, Any]:
        """The final line with its message rebuilt in Ollama's field order: role, content,
        thinking, images, tool_calls, then the rest."""
        message = self.fields.object(final.get("message"), "message")
        rebuilt: dict[str, Any] = {"role": message.get("role", "assistant"), "content": "".join(self.text)}
        if self.thinking:
            rebuilt["thinking"] = "".join(self.thinking)
        if "images" in message:
            rebuilt["images"] = message["images"]
        if self.tool_calls:
            rebuilt["tool_calls"] = self.tool_calls
        # Whatever else the final line's message has (tool_name...), after them; its own
        # thinking and tool_calls are the joined ones above.
        rebuilt.update((key, value) for key, value in message.items()
                       if key not in rebuilt and key not in ("thinking", "tool_calls"))
        return {**final, "message": rebuilt}

    def _generation(self, final: dict[str, Any]) -> dict[str, Any]:
        """The final line with the whole text in `response` and the thinking right after it,
        where Ollama's GenerateResponse has them."""
        answer: dict[str, Any] = {}
        for key, value in final.items():
            if key == "thinking":
                continue
            answer[key] = "".join(self.text) if key == "response" else value
            if key == "response" and self.thinking:
                answer["thinking"] = "".join(self.thinking)
        if "response" not in answer:
            answer["response"] = "".join(self.text)
        return answer

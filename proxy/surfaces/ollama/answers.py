"""Answers of backends that do not speak Ollama's API, written in Ollama's shapes.

What Ollama sends (docs/api.md, and the recorded streams in tests/data): each streamed line
`{"model", "created_at", "message": {"role": "assistant", "content"}, "done": false}` (or
`"response"` for /api/generate), then a final line with `"done": true`, `done_reason`,
`prompt_eval_count`, `eval_count` and durations in nanoseconds. Of the durations, the
gateway knows `total_duration` (from the request's arrival to the end of the answer) and,
for a stream, `eval_duration` (from its first token to its end); the others (load and
prompt evaluation) happen inside the upstream and are left out rather than made up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from attrs import define, field

from proxy.backends.assemble import Answer
from proxy.errors import BadUpstreamResponse
from proxy.llm import ChatResult, EmbedResult, LoggedText, ReasoningDelta, StreamEnd, StreamItem, ToolCall, Usage

Endpoint = Literal["chat", "generate"]


def created_at() -> str:
    """Now, as Ollama writes it (RFC 3339, UTC)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ns_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1e9)


def _done_reason(reported: str | None) -> str:
    # OpenAI's finish_reason and Ollama's done_reason agree on "stop" and "length"; Ollama
    # ends an answer with tool calls with "stop" too.
    return "length" if reported == "length" else "stop"


def _counts(usage: Usage | None) -> dict[str, int]:
    if usage is None:
        return {}
    return {"prompt_eval_count": usage.prompt_tokens, "eval_count": usage.completion_tokens}


@define
class OllamaLines:
    """One answer in Ollama's shape, for /api/chat or /api/generate, streamed or whole.

    Thinking goes in `message.thinking` (`thinking` for generate), apart from the text,
    unless the request said `think: false`. Tool calls go out as Ollama sends them: each
    whole, arguments as an object, in one line before the final one (a chat-completions
    stream sends them in pieces, collected here until the answer ends)."""

    endpoint: Endpoint
    model: str
    started: float  # perf_counter() at the request's arrival
    thinking: bool = True
    _first_token: float | None = field(default=None, init=False)
    _calls: Answer = field(factory=Answer, init=False)

    def _part(self, text: str, thinking: str = "", calls: tuple[ToolCall, ...] = ()) -> dict[str, Any]:
        part: dict[str, Any] = {"content" if self.endpoint == "chat" else "response": text}
        if thinking and self.thinking:
            part["thinking"] = thinking
        if calls:
            part["tool_calls"] = [_tool_call(call) for call in calls]
        return {"message": {"role": "assistant", **part}} if self.endpoint == "chat" else part

    def _line(self, data: dict[str, Any]) -> bytes:
        return orjson.dumps({"model": self.model, "created_at": created_at(), **data}) + b"\n"

    def item(self, item: StreamItem) -> bytes:
        """The line for one streamed item (b"" for what is held back or left out)."""
        if isinstance(item, StreamEnd):
            return self.finished(item)
        if self._first_token is None:
            self._first_token = time.perf_counter()
        if isinstance(item, str):
            return self._line({**self._part(item), "done": False})
        if isinstance(item, LoggedText):
            return self._line({**self._part(item.text), "done": False, "logprobs": list(item.logprobs)})
        if isinstance(item, ReasoningDelta):
            return self._line({**self._part("", item.text), "done": False}) if self.thinking else b""
        self._calls.add(item)
        return b""

    def finished(self, end: StreamEnd) -> bytes:
        calls = self._calls.result(end).tool_calls
        timings = {"total_duration": _ns_since(self.started)}
        if self._first_token is not None:
            timings["eval_duration"] = _ns_since(self._first_token)
        final = self._line({**self._part(""), "done": True, "done_reason": _done_reason(end.finish_reason),
                            **timings, **_counts(end.usage)})
        return self._line({**self._part("", calls=calls), "done": False}) + final if calls else final

    def whole(self, result: ChatResult) -> dict[str, Any]:
        return {"model": self.model, "created_at": created_at(),
                **self._part(result.output, result.reasoning, result.tool_calls), "done": True,
                "done_reason": _done_reason(result.finish_reason), "total_duration": _ns_since(self.started),
                **_counts(result.usage), **_logprobs(result)}


def _logprobs(result: ChatResult) -> dict[str, Any]:
    """An OpenAI-compatible answer's `logprobs.content` as Ollama's `logprobs` (same entries)."""
    content = result.logprobs.get("content") if isinstance(result.logprobs, dict) else None
    return {"logprobs": content} if isinstance(content, list) else {}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    """A call as Ollama writes it: `arguments` an object, not JSON text."""
    try:
        arguments = orjson.loads(call.arguments) if call.arguments.strip() else {}
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise BadUpstreamResponse(f"the arguments of a call of {call.name!r} are not a JSON object")
    return {"function": {"name": call.name, "arguments": arguments}}


def embed_answer(model: str, result: EmbedResult, started: float) -> dict[str, Any]:
    return {"model": model, "embeddings": list(result.vectors), "total_duration": _ns_since(started),
            "prompt_eval_count": result.prompt_tokens}


def legacy_embedding_answer(result: EmbedResult) -> dict[str, Any]:
    return {"embedding": result.vectors[0]}

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

from proxy.llm import ChatResult, EmbedResult, StreamEnd, Usage

Endpoint = Literal["chat", "generate"]


def created_at() -> str:
    """Now, as Ollama writes it (RFC 3339, UTC)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ns_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1e9)


def _done_reason(reported: str | None) -> str:
    # OpenAI's finish_reason and Ollama's done_reason agree on "stop" and "length".
    return "length" if reported == "length" else "stop"


def _counts(usage: Usage | None) -> dict[str, int]:
    if usage is None:
        return {}
    return {"prompt_eval_count": usage.prompt_tokens, "eval_count": usage.completion_tokens}


@define
class OllamaLines:
    """One answer in Ollama's shape, for /api/chat or /api/generate, streamed or whole."""

    endpoint: Endpoint
    model: str
    started: float  # perf_counter() at the request's arrival
    _first_token: float | None = field(default=None, init=False)

    def _text(self, text: str) -> dict[str, Any]:
        if self.endpoint == "chat":
            return {"message": {"role": "assistant", "content": text}}
        return {"response": text}

    def _line(self, data: dict[str, Any]) -> bytes:
        return orjson.dumps({"model": self.model, "created_at": created_at(), **data}) + b"\n"

    def token(self, text: str) -> bytes:
        if self._first_token is None:
            self._first_token = time.perf_counter()
        return self._line({**self._text(text), "done": False})

    def finished(self, end: StreamEnd) -> bytes:
        timings = {"total_duration": _ns_since(self.started)}
        if self._first_token is not None:
            timings["eval_duration"] = _ns_since(self._first_token)
        return self._line({**self._text(""), "done": True, "done_reason": _done_reason(end.finish_reason),
                           **timings, **_counts(end.usage)})

    def whole(self, result: ChatResult) -> dict[str, Any]:
        return {"model": self.model, "created_at": created_at(), **self._text(result.output), "done": True,
                "done_reason": _done_reason(result.finish_reason), "total_duration": _ns_since(self.started),
                **_counts(result.usage)}


def embed_answer(model: str, result: EmbedResult, started: float) -> dict[str, Any]:
    return {"model": model, "embeddings": list(result.vectors), "total_duration": _ns_since(started),
            "prompt_eval_count": result.prompt_tokens}


def legacy_embedding_answer(result: EmbedResult) -> dict[str, Any]:
    return {"embedding": result.vectors[0]}

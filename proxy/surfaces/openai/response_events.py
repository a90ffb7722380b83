"""The Responses API's stream: named SSE events, each with its `type` and a
`sequence_number` counting from 0, in the order OpenAI sends them:

    response.created, response.in_progress,
    response.output_item.added (the message), response.content_part.added (its output_text),
    response.output_text.delta ... (one per token),
    response.output_text.done, response.content_part.done, response.output_item.done,
    response.completed (or response.incomplete when the answer reached max_output_tokens)

An answer cut after its start ends with an `error` event (the gateway's code and message)
and `response.failed`, whose response carries the text that did arrive; the official
clients raise or report it rather than return a silently shortened answer.
"""

from __future__ import annotations

from typing import Any

import orjson
from attrs import define, field

from proxy.errors import GatewayError
from proxy.llm import ReasoningDelta, StreamEnd, ToolCallDelta
from proxy.surfaces.event_stream import NamedEvent
from proxy.surfaces.openai.response_objects import ResponseFrame, output_text, status_of


@define
class ResponseEvents:
    frame: ResponseFrame
    _sequence: int = 0
    _text: list[str] = field(factory=list)

    def _event(self, kind: str, **fields: Any) -> str:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return NamedEvent(orjson.dumps(data).decode(), kind)

    def _part(self, **fields: Any) -> dict[str, Any]:
        return {"item_id": self.frame.message_id, "output_index": 0, "content_index": 0, **fields}

    def opening(self) -> list[str]:
        started = self.frame.response("in_progress", [])
        return [
            self._event("response.created", response=started),
            self._event("response.in_progress", response=started),
            self._event("response.output_item.added", output_index=0, item=self.frame.message(None, "in_progress")),
            self._event("response.content_part.added", **self._part(part=output_text(""))),
        ]

    def token(self, text: str) -> str:
        self._text.append(text)
        return self._event("response.output_text.delta", **self._part(delta=text, logprobs=[]))

    def reasoning(self, delta: ReasoningDelta) -> list[str]:
        return []

    def tool_call(self, delta: ToolCallDelta) -> list[str]:
        return []  # this surface refuses tools by field: a call cannot arrive

    def finished(self, end: StreamEnd) -> list[str]:
        text = "".join(self._text)
        status = status_of(end.finish_reason)
        item = self.frame.message(text, status)
        final = "response.incomplete" if status == "incomplete" else "response.completed"
        return [
            self._event("response.output_text.done", **self._part(text=text, logprobs=[])),
            self._event("response.content_part.done", **self._part(part=output_text(text))),
            self._event("response.output_item.done", output_index=0, item=item),
            self._event(final, response=self.frame.response(status, [item], usage=end.usage)),
        ]

    def failed(self, error: GatewayError) -> list[str]:
        cut = self.frame.message("".join(self._text), "failed")
        return [
            self._event("error", code=error.code, message=error.message, param=None),
            self._event("response.failed", response=self.frame.response("failed", [cut], error=error)),
        ]

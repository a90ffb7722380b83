"""The Responses API's stream: named SSE events, each with its `type` and a
`sequence_number` counting from 0, in the order OpenAI sends them:

    response.created, response.in_progress,
    response.output_item.added (the message), response.content_part.added (its output_text),
    response.output_text.delta ... (one per token),
    for each function call: response.output_item.added (the call), then
    response.function_call_arguments.delta ... (its arguments' JSON text, in pieces),
    response.output_text.done, response.content_part.done, response.output_item.done,
    and for each call response.function_call_arguments.done and response.output_item.done,
    response.completed (or response.incomplete when the answer reached max_output_tokens)

The model's thinking is not sent (as on /api/v1): its tokens count in `usage` only.

An answer cut after its start ends with an `error` event (the gateway's code and message)
and `response.failed`, whose response carries the text that did arrive; the official
clients raise or report it rather than return a silently shortened answer.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from attrs import define, field

from proxy.errors import GatewayError
from proxy.llm import LoggedText, ReasoningDelta, StreamEnd, ToolCall, ToolCallDelta
from proxy.surfaces.event_stream import NamedEvent
from proxy.surfaces.openai.response_objects import ResponseFrame, call_item, output_text, status_of


@define
class ResponseEvents:
    frame: ResponseFrame
    _sequence: int = 0
    _text: list[str] = field(factory=list)
    # A call's index in the upstream's stream -> its id, name and arguments so far.
    _calls: dict[int, tuple[str, str, list[str]]] = field(factory=dict)

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

    def logged(self, item: LoggedText) -> str:
        return self.token(item.text)  # this dialect has no place for log probabilities

    def reasoning(self, delta: ReasoningDelta) -> list[str]:
        return []

    def tool_call(self, delta: ToolCallDelta) -> list[str]:
        events = []
        if delta.index not in self._calls:
            self._calls[delta.index] = (delta.id or f"call_{delta.index}", delta.name or "", [])
            call_id, name, _ = self._calls[delta.index]
            item = call_item(ToolCall(id=call_id, name=name, arguments=""), "in_progress")
            events.append(self._event("response.output_item.added", output_index=self._index(delta.index),
                                      item=item))
        call_id, _, pieces = self._calls[delta.index]
        if delta.arguments:
            pieces.append(delta.arguments)
            events.append(self._event("response.function_call_arguments.delta", item_id=f"fc_{call_id}",
                                      output_index=self._index(delta.index), delta=delta.arguments))
        return events

    def _index(self, call_index: int) -> int:
        return 1 + list(self._calls).index(call_index)  # the message is item 0

    def _call_items(self, status: Literal["completed", "incomplete"]) -> list[dict[str, Any]]:
        return [call_item(ToolCall(id=call_id, name=name, arguments="".join(pieces)), status)
                for call_id, name, pieces in self._calls.values()]

    def finished(self, end: StreamEnd) -> list[str]:
        text = "".join(self._text)
        status = status_of(end.finish_reason)
        item = self.frame.message(text, status)
        calls = self._call_items("completed")
        final = "response.incomplete" if status == "incomplete" else "response.completed"
        events = [
            self._event("response.output_text.done", **self._part(text=text, logprobs=[])),
            self._event("response.content_part.done", **self._part(part=output_text(text))),
            self._event("response.output_item.done", output_index=0, item=item),
        ]
        for index, call in enumerate(calls, start=1):
            events.append(self._event("response.function_call_arguments.done", item_id=call["id"],
                                      output_index=index, name=call["name"], arguments=call["arguments"]))
            events.append(self._event("response.output_item.done", output_index=index, item=call))
        events.append(self._event(final, response=self.frame.response(status, [item, *calls], usage=end.usage)))
        return events

    def failed(self, error: GatewayError) -> list[str]:
        cut = [self.frame.message("".join(self._text), "failed"), *self._call_items("incomplete")]
        return [
            self._event("error", code=error.code, message=error.message, param=None),
            self._event("response.failed", response=self.frame.response("failed", cut, error=error)),
        ]

"""The Responses API's objects, as the gateway renders them: a `response` with its
`message` output item, its `output_text` part and its usage.

One `ResponseFrame` per request holds what every rendering of that response repeats (id,
model, the request's settings echoed back), so the single-shot answer and each stream
event carry the same response object at its stage: in_progress, completed, incomplete
(the answer reached `max_output_tokens`) or failed.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import frozen

from proxy.errors import GatewayError
from proxy.llm import ChatRequest, ChatResult, ToolCall, Usage
from proxy.surfaces.openai.response_models import ResponsesBody

Status = Literal["in_progress", "completed", "incomplete", "failed"]


def status_of(finish_reason: str | None) -> Status:
    """"length" (Ollama's done_reason and OpenAI's finish_reason alike) is an incomplete answer."""
    return "incomplete" if finish_reason == "length" else "completed"


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call: ToolCall, status: Literal["in_progress", "completed", "incomplete"]) -> dict[str, Any]:
    """A function call the model asked for; `call_id` is what its function_call_output answers."""
    return {"type": "function_call", "id": f"fc_{call.id}", "call_id": call.id, "name": call.name,
            "arguments": call.arguments, "status": status}


def _settings(chat: ChatRequest) -> dict[str, Any]:
    """The request's tools, tool choice, text format and reasoning, echoed in the Responses spelling."""
    tools = [{"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters,
              "strict": t.strict} for t in chat.tools]
    choice: Any = "auto"
    if chat.tool_choice is not None:
        mode, name = chat.tool_choice.mode, chat.tool_choice.name
        choice = {"type": "function", "name": name} if mode == "function" else mode
    text_format: dict[str, Any] = {"type": "text"}
    if chat.response_format is not None and chat.response_format.kind == "json_schema":
        text_format = {"type": "json_schema", **chat.response_format.original["json_schema"]}
    elif chat.response_format is not None:
        text_format = {"type": "json_object"}
    return {"tools": tools, "tool_choice": choice, "text": {"format": text_format},
            "reasoning": {"effort": chat.reasoning_effort, "summary": None}}


@frozen
class ResponseFrame:
    response_id: str
    message_id: str
    created_at: int
    body: ResponsesBody
    chat: ChatRequest

    @classmethod
    def for_request(cls, request_id: str, created_at: int, body: ResponsesBody, chat: ChatRequest) -> ResponseFrame:
        return cls(response_id=f"resp_{request_id}", message_id=f"msg_{request_id}", created_at=created_at,
                   body=body, chat=chat)

    def output(self, result: ChatResult, status: Status) -> list[dict[str, Any]]:
        """The answer's items: its message (left out when the model only called tools), then its calls."""
        message = [self.message(result.output, status)] if result.output or not result.tool_calls else []
        return [*message, *(call_item(call, "completed") for call in result.tool_calls)]

    def message(self, text: str | None, status: Status) -> dict[str, Any]:
        """The answer's one output item; `text` None while it has no content part yet."""
        return {
            "type": "message",
            "id": self.message_id,
            "status": "in_progress" if status == "in_progress" else "incomplete" if status == "failed" else status,
            "role": "assistant",
            "content": [] if text is None else [output_text(text)],
        }

    def response(
        self, status: Status, output: list[dict[str, Any]], *, usage: Usage | None = None,
        error: GatewayError | None = None,
    ) -> dict[str, Any]:
        body = self.body
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None if error is None else {"code": "server_error", "message": error.message},
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": body.model,
            "output": output,
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": None,
            "store": False,
            "temperature": body.temperature,
            **_settings(self.chat),
            "top_p": body.top_p,
            "truncation": body.truncation or "disabled",
            "usage": None if usage is None else usage_json(usage),
            "metadata": body.metadata or {},
        }

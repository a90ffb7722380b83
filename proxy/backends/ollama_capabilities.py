"""What an Ollama server can serve for a request, known before the request is sent.

Some things Ollama never does (fetch an image URL, logit bias): those requests skip it.
Logprobs came in Ollama 0.12.11: an older server's answer shows it by carrying none, and
the request moves on from there (ollama.py). Others depend on the model: `/api/show` lists its `capabilities`
("completion", "tools", "vision", "thinking", "embedding"...). They are asked only when a
request needs one, and remembered per model for CAPABILITIES_TTL seconds. An Ollama too old
to list capabilities, or an /api/show that fails, tells nothing: the request is sent, and
Ollama's own 400 "... does not support ..." still moves it on (ollama.classify_error).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from attrs import define, field

from proxy.errors import UpstreamError
from proxy.llm import ChatRequest

CAPABILITIES_TTL = 300.0
# Model names come from clients: the memory of them is bounded.
MAX_REMEMBERED = 1024

# capability Ollama lists -> the request field that needs it
_FIELDS = {"tools": "$.tools", "vision": "$.messages", "thinking": "$.reasoning_effort"}


class _ShowsModels(Protocol):
    async def post_json(self, path: str, body: dict[str, Any]) -> Any: ...


def unsupported_by_ollama(request: ChatRequest) -> tuple[str, str] | None:
    """(why, field) when no Ollama model could serve `request`."""
    for i, message in enumerate(request.messages):
        if any(image.is_remote for image in message.images):
            return ("Ollama takes images as data, and the gateway never fetches image URLs: "
                    "send the image as a data: URL", f"$.messages[{i}].content")
    if request.logit_bias:
        return "Ollama has no logit_bias", "$.logit_bias"
    return None


@define
class ModelCapabilities:
    _known: dict[str, tuple[float, frozenset[str] | None]] = field(factory=dict)

    @staticmethod
    def needed(request: ChatRequest) -> list[str]:
        needs = []
        if request.tools and not (request.tool_choice and request.tool_choice.mode == "none"):
            needs.append("tools")
        if request.images:
            needs.append("vision")
        if request.reasoning_effort not in (None, "none"):
            needs.append("thinking")
        return needs

    async def missing(self, server: _ShowsModels, model: str, needed: list[str]) -> tuple[str, str] | None:
        """(why, field) for the first needed capability `model` lacks; None if it has them
        all, or if the server does not say."""
        capabilities = await self._of(server, model)
        if capabilities is None:
            return None
        for capability in needed:
            if capability not in capabilities:
                return f"model {model!r} on Ollama does not support {capability}", _FIELDS[capability]
        return None

    async def _of(self, server: _ShowsModels, model: str) -> frozenset[str] | None:
        now = time.monotonic()
        cached = self._known.get(model)
        if cached is not None and now - cached[0] < CAPABILITIES_TTL:
            return cached[1]
        try:
            answer = await server.post_json("/api/show", {"model": model})
        except UpstreamError:
            return None  # not remembered: the next request asks again
        listed = answer.get("capabilities") if isinstance(answer, dict) else None
        capabilities = None
        if isinstance(listed, list) and all(isinstance(c, str) for c in listed):
            capabilities = frozenset(listed)
        if len(self._known) >= MAX_REMEMBERED:
            self._known.clear()
        self._known[model] = (now, capabilities)
        return capabilities

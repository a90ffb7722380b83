"""Token estimates for reservations, made before the upstream is asked.

A request reserves its prompt's estimate plus the most it may generate (`max_tokens`; see
Limiter for a request that sets none) against its key's tokens per minute; the upstream's
real usage replaces the estimate when the answer ends. The estimate is a cheap heuristic,
not a tokenizer: UTF-8 bytes / 4 rounded up per text, plus what chat templates add around
each message. English runs at about 4 bytes a token, so it is close there; text in other
scripts often takes fewer bytes a token (Chinese, Japanese), where it is low. It only has
to be close, since reconciliation corrects it; where it is low, requests running at the
same time can overshoot the limit by the difference until their answers end.
"""

from __future__ import annotations

import orjson
from attrs import frozen

from proxy.llm import ChatRequest, CompletionRequest, EmbedRequest, GenerationRequest

BYTES_PER_TOKEN = 4
# Role markers and separators around each message, and the reply's own opening, as in
# OpenAI's published way of counting chat tokens.
PER_MESSAGE = 4
PER_REPLY = 3


@frozen
class TokenEstimate:
    prompt: int
    # The most the answer may have (max_tokens); None when the client set no bound, and the
    # limiter assumes PROXY_RESERVED_COMPLETION_TOKENS.
    completion: int | None = 0


def text_tokens(text: str) -> int:
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


# What an image costs a vision model's prompt, roughly (OpenAI counts 85 to ~1,100 per image).
PER_IMAGE = 765


def chat_estimate(request: ChatRequest) -> TokenEstimate:
    """A chat request as routed (its max_tokens after any route default and ceiling).

    Tool definitions and earlier calls are prompt text too: templates render them into it.
    """
    prompt = PER_REPLY
    for message in request.messages:
        prompt += text_tokens(message.content) + PER_MESSAGE + PER_IMAGE * len(message.images)
        for call in message.tool_calls:
            prompt += text_tokens(call.name + call.arguments)
    for tool in request.tools:
        prompt += text_tokens(tool.name + (tool.description or "") + orjson.dumps(tool.parameters).decode())
    return TokenEstimate(prompt=prompt, completion=request.parameters.max_tokens)


def completion_estimate(request: CompletionRequest) -> TokenEstimate:
    prompt = text_tokens(request.prompt) + text_tokens(request.suffix or "") + PER_REPLY
    return TokenEstimate(prompt=prompt, completion=request.parameters.max_tokens)


def generation_estimate(request: GenerationRequest) -> TokenEstimate:
    if isinstance(request, ChatRequest):
        return chat_estimate(request)
    return completion_estimate(request)


def embed_estimate(request: EmbedRequest) -> TokenEstimate:
    if request.token_arrays:
        return TokenEstimate(prompt=sum(max(1, len(tokens)) for tokens in request.token_arrays))
    return TokenEstimate(prompt=sum(max(1, text_tokens(text)) for text in request.inputs))

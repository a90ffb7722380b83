"""The request body of `POST /v1/completions`, checked by the one strict converter and
mapped to a normalized `CompletionRequest`.

`prompt` is a string, or a list holding one string (LangChain's and LlamaIndex's OpenAI
LLM classes send a list). Several prompts in one request are refused: send each in its
own request, which the gateway serves concurrently under the same limits. Token arrays,
`logprobs`, penalties, `best_of` and `n` > 1 change the answer in ways not every backend
can honour, so they are refused with a 400 naming the field rather than ignored.
"""

from __future__ import annotations

from typing import NewType

from attrs import frozen

from proxy.llm import CompletionRequest, Parameters
from proxy.surfaces.openai.request_models import NotSupported, OnlyOne, StreamOptionsBody
from proxy.surfaces.request_bodies import (
    CONVERTER,
    FieldError,
    ModelId,
    Seed,
    StopSequences,
    Temperature,
    TokenCount,
    TopP,
)

Prompt = NewType("Prompt", str)
Suffix = NewType("Suffix", str)


@frozen
class CompletionBody:
    model: ModelId
    prompt: Prompt
    suffix: Suffix | None = None
    max_tokens: TokenCount | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: StopSequences | None = None
    seed: Seed | None = None
    stream: bool | None = None
    stream_options: StreamOptionsBody | None = None
    echo: bool | None = None
    n: OnlyOne | None = None
    best_of: OnlyOne | None = None
    logprobs: NotSupported | None = None
    frequency_penalty: NotSupported | None = None
    presence_penalty: NotSupported | None = None
    logit_bias: NotSupported | None = None
    user: str | None = None


def _prompt(v: object, _: object) -> str:
    if isinstance(v, list) and v and all(isinstance(p, int | list) for p in v):
        raise FieldError("token arrays are not supported; send the text")
    if isinstance(v, list) and len(v) > 1:
        raise FieldError("one prompt per request is supported; send each prompt in its own request")
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    if not isinstance(v, str):
        raise FieldError("expected a string or a list of one string")
    if not v:
        raise FieldError("must not be empty")
    return v


def _suffix(v: object, _: object) -> str:
    if not isinstance(v, str):
        raise FieldError("expected a string")
    return v


CONVERTER.register_structure_hook(Prompt, _prompt)
CONVERTER.register_structure_hook(Suffix, _suffix)


def completion_request(body: CompletionBody) -> CompletionRequest:
    parameters = Parameters(
        temperature=body.temperature, max_tokens=body.max_tokens, top_p=body.top_p, stop=body.stop, seed=body.seed)
    # An empty suffix asks for nothing: a plain completion.
    return CompletionRequest(model=body.model, prompt=body.prompt, suffix=body.suffix or None, parameters=parameters)

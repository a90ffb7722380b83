"""The request body of `POST /v1/completions`, checked by the one strict converter and
mapped to a normalized `CompletionRequest`.

`prompt` is a string or a list of strings (LangChain's OpenAI LLM sends a list, several
prompts when batching): each prompt is one upstream call, answered as the choice with
its index. A stream takes one prompt. Token arrays,
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
    invalid,
)

Prompts = NewType("Prompts", tuple[str, ...])
Suffix = NewType("Suffix", str)


@frozen
class CompletionBody:
    model: ModelId
    prompt: Prompts
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


def _prompts(v: object, _: object) -> tuple[str, ...]:
    if isinstance(v, list) and v and all(isinstance(p, int | list) for p in v):
        raise FieldError("token arrays are not supported; send the text")
    prompts = [v] if isinstance(v, str) else v
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise FieldError("expected a string or a list of strings")
    if not all(prompts):
        raise FieldError("must not be empty")
    return tuple(prompts)


def _suffix(v: object, _: object) -> str:
    if not isinstance(v, str):
        raise FieldError("expected a string")
    return v


CONVERTER.register_structure_hook(Prompts, _prompts)
CONVERTER.register_structure_hook(Suffix, _suffix)


def completion_requests(body: CompletionBody, *, max_prompts: int) -> list[CompletionRequest]:
    """One request per prompt, in order."""
    if len(body.prompt) > max_prompts:
        raise invalid([f"at most {max_prompts} prompts are accepted @ $.prompt"])
    if body.stream and len(body.prompt) > 1:
        raise invalid(["a stream takes one prompt; send several without stream, or one request each @ $.prompt"])
    parameters = Parameters(
        temperature=body.temperature, max_tokens=body.max_tokens, top_p=body.top_p, stop=body.stop, seed=body.seed)
    # An empty suffix asks for nothing: a plain completion.
    return [CompletionRequest(model=body.model, prompt=prompt, suffix=body.suffix or None, parameters=parameters)
            for prompt in body.prompt]

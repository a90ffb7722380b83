"""The request bodies of `/api/v1` (the Octomil contract), the prompt rules that span
their fields, and the normalized requests built from them.

The field types and the converter that checks these bodies are shared by every surface
(surfaces/request_bodies.py); what is here is the contract's alone. The OpenAPI description
is generated from these classes, so their docstrings are part of it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from attrs import frozen

from proxy import llm
from proxy.llm import ChatRequest, EmbedRequest, Parameters, ResponseFormat, Role
from proxy.surfaces.request_bodies import (
    ModelId,
    Penalty,
    PositiveInt,
    SchemaObject,
    Seed,
    StopSequences,
    Temperature,
    Texts,
    TokenCount,
    TopP,
    invalid,
    structure,
)

T = TypeVar("T")


@frozen
class ParametersBody:
    temperature: Temperature | None = None
    max_tokens: TokenCount | None = None
    top_p: TopP | None = None
    top_k: TokenCount | None = None
    stop: StopSequences | None = None
    seed: Seed | None = None
    # Additions both backend kinds honour; the SDKs never send them (docs/capabilities.md).
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    json_schema: SchemaObject | None = None
    include_reasoning: bool | None = None

    def normalized(self) -> Parameters:
        return Parameters(
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            top_p=self.top_p,
            top_k=self.top_k,
            stop=self.stop,
            seed=self.seed,
            frequency_penalty=self.frequency_penalty,
            presence_penalty=self.presence_penalty,
        )

    def response_format(self) -> ResponseFormat | None:
        if self.json_schema is None:
            return None
        original = {"type": "json_schema", "json_schema": {"name": "output", "schema": self.json_schema}}
        return ResponseFormat(kind="json_schema", original=original, schema=self.json_schema)


# A message of the contract: a role and its text, nothing more. The normalized llm.Message
# carries more (for /v1), which this body must not accept. (A comment, not a docstring:
# the OpenAPI description of the contract stays as it was.)
@frozen
class Message:
    role: Role
    content: str


@frozen
class PromptBody:
    """The prompt part shared by single-shot, stream and batch items."""

    messages: list[Message] | None = None
    input_data: str | None = None
    parameters: ParametersBody | None = None


@frozen
class InferenceBody:
    model_id: ModelId
    messages: list[Message] | None = None
    input_data: str | None = None
    parameters: ParametersBody | None = None


@frozen
class BatchBody:
    model_id: ModelId
    inputs: list[Any]  # each item is checked on its own: a bad one fails alone
    parameters: ParametersBody | None = None
    max_concurrency: PositiveInt | None = None


@frozen
class EmbeddingsBody:
    model_id: ModelId
    input: Texts


def prompt_problems(data: object, *, max_messages: int, path: str = "$") -> list[str]:
    """The prompt rules that span fields: exactly one of messages and input_data, and
    messages neither empty nor too many."""
    if not isinstance(data, dict):
        return []
    problems = []
    given = [name for name in ("messages", "input_data") if data.get(name) is not None]
    if len(given) != 1:
        problems.append(f"exactly one of messages and input_data is required @ {path}")
    messages = data.get("messages")
    if isinstance(messages, list) and not messages:
        problems.append(f"must not be empty @ {path}.messages")
    if isinstance(messages, list) and len(messages) > max_messages:
        problems.append(f"at most {max_messages} messages are accepted @ {path}.messages")
    return problems


def structure_prompt(data: object, cls: type[T], *, max_messages: int, path: str = "$") -> T:
    """A body carrying a prompt, with field and prompt problems reported together."""
    return structure(data, cls, path, also=prompt_problems(data, max_messages=max_messages, path=path))


# --- from bodies to normalized requests ---------------------------------------------

_NO_PARAMETERS = Parameters()


def chat_request(
    model_id: str, prompt: InferenceBody | PromptBody, *, defaults: Parameters = _NO_PARAMETERS,
    default_format: ResponseFormat | None = None,
) -> ChatRequest:
    """The normalized request from a body that `structure_prompt` accepted; a batch's
    `defaults` and `default_format` come from its top-level parameters."""
    if prompt.input_data is not None:
        messages: tuple[llm.Message, ...] = (llm.Message(role="user", content=prompt.input_data),)
    else:
        messages = tuple(llm.Message(role=m.role, content=m.content) for m in prompt.messages or ())
    parameters = prompt.parameters.normalized() if prompt.parameters else defaults
    if prompt.parameters and defaults is not _NO_PARAMETERS:  # (merging over no defaults changes nothing)
        parameters = parameters.merged_over(defaults)
    response_format = (prompt.parameters and prompt.parameters.response_format()) or default_format
    return ChatRequest(model=model_id, messages=messages, parameters=parameters, response_format=response_format)


def embed_request(body: EmbeddingsBody, *, max_inputs: int, single: bool) -> EmbedRequest:
    if len(body.input) > max_inputs:
        raise invalid([f"at most {max_inputs} texts are accepted @ $.input"])
    return EmbedRequest(model=body.model_id, inputs=body.input, single=single)

"""Request bodies of Ollama's API (docs/api.md of ollama/ollama), checked by the gateway's one
converter, and their translation for backends that do not speak it.

Every field Ollama documents is accepted and passed to an Ollama backend as the client sent
it; an unknown field is a 400 naming it, as everywhere in the gateway. Only the fields the
gateway reads or translates are type-checked beyond JSON (`options` values included, with
their path: "expected a number @ $.options.temperature"); the rest is Ollama's to judge.

An OpenAI-compatible backend gets the request as chat completions: `prompt` (and `system`)
become messages, `options` the parameters they share, and tools, tool calls and results,
`format`, `images` and `think` what translation.py makes of them. What it cannot honour
makes it skip the request as unable (`untranslatable`), so an Ollama backend serves it or
it fails honestly.
"""

from __future__ import annotations

from typing import Any, Literal, NewType

import attrs
from attrs import frozen

from proxy.llm import ChatRequest, CompletionRequest, EmbedRequest, Message, NativeRequest, Parameters
from proxy.surfaces.ollama.translation import (
    ABLE,
    ToolTurns,
    Unable,
    Untranslatable,
    features,
    message_images,
    tool_result,
)
from proxy.surfaces.request_bodies import CONVERTER, FieldError, ModelId, Texts, invalid, structure

OllamaRole = Literal["system", "user", "assistant", "tool"]
Format = NewType("Format", object)  # "json" or a JSON schema
Think = NewType("Think", object)  # true/false, or "low", "medium", "high"
KeepAlive = NewType("KeepAlive", object)  # "5m", seconds, or -1
JsonObject = NewType("JsonObject", object)


@frozen
class OllamaMessage:
    role: OllamaRole
    content: str = ""
    images: list[str] | None = None
    thinking: str | None = None
    tool_calls: list[JsonObject] | None = None
    tool_name: str | None = None
    # Not in Ollama's docs, which ignores it, but LangChain's ChatOllama and the AI SDK's
    # Ollama providers send the id of the call a tool result answers.
    tool_call_id: str | None = None


@frozen
class ChatBody:
    model: ModelId
    messages: list[OllamaMessage] | None = None
    tools: list[JsonObject] | None = None
    format: Format | None = None
    options: JsonObject | None = None
    stream: bool | None = None
    keep_alive: KeepAlive | None = None
    think: Think | None = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


@frozen
class GenerateBody:
    model: ModelId
    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    images: list[str] | None = None
    format: Format | None = None
    options: JsonObject | None = None
    stream: bool | None = None
    raw: bool | None = None
    keep_alive: KeepAlive | None = None
    think: Think | None = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None


@frozen
class EmbedBody:
    model: ModelId
    input: Texts
    truncate: bool | None = None
    options: JsonObject | None = None
    keep_alive: KeepAlive | None = None
    dimensions: int | None = None


@frozen
class LegacyEmbeddingsBody:
    """/api/embeddings, the older endpoint: one `prompt`, one `embedding` back."""

    model: ModelId
    prompt: str
    options: JsonObject | None = None
    keep_alive: KeepAlive | None = None


def _format(v: object, _: object) -> object:
    if v == "json" or v == "" or isinstance(v, dict):
        return v
    raise FieldError('expected "json" or a JSON schema object')


def _think(v: object, _: object) -> object:
    if isinstance(v, bool) or v in ("low", "medium", "high"):
        return v
    raise FieldError('expected true, false, "low", "medium" or "high"')


def _keep_alive(v: object, _: object) -> object:
    if isinstance(v, str | int | float) and not isinstance(v, bool):
        return v
    raise FieldError('expected a duration ("5m") or a number of seconds')


def _json_object(v: object, _: object) -> object:
    if isinstance(v, dict):
        return v
    raise FieldError("expected an object")


for _type, _hook in [(Format, _format), (Think, _think), (KeepAlive, _keep_alive), (JsonObject, _json_object)]:
    CONVERTER.register_structure_hook(_type, _hook)

# The options the gateway translates, and the JSON type each must have.
_NUMBER, _INTEGER = "a number", "an integer"
_OPTION_TYPES = {"temperature": _NUMBER, "top_p": _NUMBER, "top_k": _INTEGER, "seed": _INTEGER,
                 "num_predict": _INTEGER, "num_ctx": _INTEGER}


def options_problems(raw: object) -> list[str]:
    """Type problems of the options the gateway reads, each with its path."""
    options = raw.get("options") if isinstance(raw, dict) else None
    if not isinstance(options, dict):
        return []
    problems = []
    for name, wanted in _OPTION_TYPES.items():
        value = options.get(name)
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (wanted == _INTEGER and not isinstance(value, int)):
            problems.append(f"expected {wanted} @ $.options.{name}")
    stop = options.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        problems.append("expected a string or a list of strings @ $.options.stop")
    return problems


def _parameters(options: object) -> Parameters:
    """The options both backend kinds share; a num_predict of 0 or less (Ollama's "no
    limit") leaves max_tokens unset."""
    if not isinstance(options, dict):
        return Parameters()
    predict = options.get("num_predict")
    stop = options.get("stop")
    return Parameters(
        temperature=options.get("temperature"),
        max_tokens=predict if isinstance(predict, int) and predict > 0 else None,
        top_p=options.get("top_p"),
        top_k=options.get("top_k") or None,
        stop=(stop,) if isinstance(stop, str) else tuple(stop) if stop else None,
        seed=options.get("seed"),
    )


def _unable(why: str = "served by Ollama backends only, not by an OpenAI-compatible endpoint",
            **asked: object) -> Unable:
    """Why an OpenAI-compatible backend cannot serve a request asking for `asked`, at the
    first field named."""
    named = [name for name, value in asked.items() if value not in (None, False, "", [], {})]
    if not named:
        return ABLE
    return f"{', '.join(named)}: {why}", f"$.{named[0]}"


def _load_only(prompt: object, field: str) -> Unable:
    """Without a prompt, Ollama loads the model (or unloads it, with keep_alive 0) and answers
    with no text: something only an Ollama backend does."""
    return ABLE if prompt else ("a request without a prompt loads or unloads a model: Ollama backends only", field)


def _first(*reasons: Unable) -> Unable:
    return next((reason for reason in reasons if reason[0]), ABLE)


def chat_request(raw: dict[str, Any]) -> NativeRequest:
    body = structure(raw, ChatBody, also=options_problems(raw))
    messages = body.messages or []
    plain = ChatRequest(model=body.model, parameters=_parameters(body.options),
                        messages=tuple(Message(role=m.role, content=m.content) for m in messages))
    try:
        chat = attrs.evolve(plain, messages=_messages(messages), **attrs.asdict(features(raw), recurse=False))
    except Untranslatable as exc:  # the estimate's request: its text
        return _native("/api/chat", raw, body.model, body.stream, plain, (exc.reason, exc.field))
    return _native("/api/chat", raw, body.model, body.stream, chat, _load_only(messages, "$.messages"))


def _messages(messages: list[OllamaMessage]) -> tuple[Message, ...]:
    """The conversation with its images, tool calls and tool results (translation.py)."""
    turns = ToolTurns()
    translated = []
    for i, m in enumerate(messages):
        where = f"$.messages[{i}]"
        if m.role == "tool":
            translated.append(tool_result(turns, m.content, m.tool_name, m.tool_call_id, where))
            continue
        translated.append(Message(role=m.role, content=m.content, images=message_images(m.images, f"{where}.images"),
                                  tool_calls=turns.calls(m.tool_calls, f"{where}.tool_calls")))
    return tuple(translated)


def generate_request(raw: dict[str, Any]) -> NativeRequest:
    body = structure(raw, GenerateBody, also=options_problems(raw))
    unable = _first(_unable(context=body.context, template=body.template, raw=body.raw),
                    _load_only(body.prompt, "$.prompt"))
    if body.suffix is not None:
        return _native("/api/generate", raw, body.model, body.stream, _fill_in_the_middle(body),
                       _first(unable, _unable(_NOT_WITH_SUFFIX, system=body.system, images=body.images,
                                              format=body.format, think=body.think, logprobs=body.logprobs)))
    messages = [Message(role="system", content=body.system)] if body.system else []
    prompt = Message(role="user", content=body.prompt or "")
    chat = ChatRequest(model=body.model, messages=(*messages, prompt), parameters=_parameters(body.options))
    try:
        images = message_images(body.images, "$.images")
        chat = attrs.evolve(chat, messages=(*messages, attrs.evolve(prompt, images=images)),
                            **attrs.asdict(features(raw), recurse=False))
    except Untranslatable as exc:
        unable = _first(unable, (exc.reason, exc.field))
    return _native("/api/generate", raw, body.model, body.stream, chat, unable)


_NOT_WITH_SUFFIX = ("not with a suffix on an OpenAI-compatible endpoint, whose text completions (/completions) "
                    "take text only; Ollama backends only")


def _fill_in_the_middle(body: GenerateBody) -> CompletionRequest:
    """A `suffix`: a text completion of what goes between `prompt` and it, which an
    OpenAI-compatible backend serves at /completions (as /v1/completions does). A text
    completion has no system prompt, images, format or thinking: with those, only an Ollama
    backend serves it."""
    return CompletionRequest(model=body.model, prompt=body.prompt or "", suffix=body.suffix,
                             parameters=_parameters(body.options))


def embed_request(raw: dict[str, Any], *, max_inputs: int) -> NativeRequest:
    body = structure(raw, EmbedBody)
    if len(body.input) > max_inputs:
        raise invalid([f"at most {max_inputs} texts are accepted @ $.input"])
    embed = EmbedRequest(model=body.model, inputs=body.input, single=isinstance(raw["input"], str))
    unable = _unable(dimensions=body.dimensions)
    return NativeRequest(api="ollama", path="/api/embed", body=raw, model=body.model, public_model=body.model,
                         stream=False, translated=embed, untranslatable=unable[0], untranslatable_at=unable[1])


def legacy_embeddings_request(raw: dict[str, Any]) -> NativeRequest:
    body = structure(raw, LegacyEmbeddingsBody)
    embed = EmbedRequest(model=body.model, inputs=(body.prompt,), single=True)
    return NativeRequest(api="ollama", path="/api/embeddings", body=raw, model=body.model,
                         public_model=body.model, stream=False, translated=embed)


def _native(path: str, raw: dict[str, Any], model: str, stream: bool | None,
            generation: ChatRequest | CompletionRequest, unable: Unable) -> NativeRequest:
    # Ollama streams unless told not to: the gateway decides once and says so upstream.
    streaming = True if stream is None else stream
    return NativeRequest(api="ollama", path=path, body={**raw, "stream": streaming}, model=model,
                         public_model=model, stream=streaming, translated=generation,
                         untranslatable=unable[0], untranslatable_at=unable[1])

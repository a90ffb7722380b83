"""The OpenAPI 3.1 description of every endpoint, generated at start-up from the attrs
classes that validate the requests (surfaces/octomil/request_models.py, surfaces/openai/request_models.py,
with the field types of surfaces/request_bodies.py) and describe the answers (contract_shapes.py,
openai_shapes.py, generation_shapes.py). Served at /api/v1/openapi.json without a token.

Types map to JSON Schema by their Python annotations; the constrained types (NewTypes
with a cattrs hook) map through `_CONSTRAINED`, which states the same limits the hooks
enforce. Rules that span fields (exactly one of `messages` and `input_data`) are added
per class. tests/surfaces/test_openapi.py checks real traffic against the result.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import attrs

from proxy.settings.config import Settings
from proxy.surfaces import request_bodies as req
from proxy.surfaces.octomil import request_models as contract
from proxy.surfaces.openai import completion_models as cmp
from proxy.surfaces.openai import content_parts as parts
from proxy.surfaces.openai import request_models as oai
from proxy.surfaces.openai import response_models as rsp
from proxy.surfaces.openai import response_tools as rsp_tools
from proxy.surfaces.openai import tools
from proxy.surfaces.openapi import contract_shapes as res
from proxy.surfaces.openapi import generation_shapes as gen
from proxy.surfaces.openapi import openai_shapes as oai_res
from proxy.surfaces.openapi.ollama_description import CONSTRAINED as OLLAMA_CONSTRAINED
from proxy.surfaces.openapi.ollama_description import ollama_paths

Schema = dict[str, Any]

_SCHEMA_OBJECT: Schema = {"type": "object", "description": 'A JSON schema whose "type" is "object".',
                          "properties": {"type": {"const": "object"}}}
_STRINGS_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
_CONSTRAINED: dict[object, Schema] = {
    req.ModelId: {"type": "string", "minLength": 1, "maxLength": req.MAX_MODEL_ID},
    req.Temperature: {"type": "number", "minimum": 0, "maximum": 2},
    req.TopP: {"type": "number", "minimum": 0, "maximum": 1},
    req.PositiveInt: {"type": "integer", "minimum": 1},
    req.TokenCount: {"type": "integer", "minimum": 1, "maximum": req.MAX_TOKEN_COUNT},
    req.Seed: {"type": "integer", "minimum": req.SEED_RANGE[0], "maximum": req.SEED_RANGE[1]},
    req.StopSequences: {"oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": req.MAX_STOP_SEQUENCES},
    ]},
    req.Texts: _STRINGS_OR_STRING,
    oai.MessageContent: {"oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"oneOf": [
            {"type": "object", "required": ["type", "text"], "additionalProperties": False,
             "properties": {"type": {"const": "text"}, "text": {"type": "string"}}},
            {"type": "object", "required": ["type", "image_url"],
             "description": "An image: a data:image/...;base64,... URL (at most "
                            f"{parts.MAX_IMAGE_BYTES} bytes decoded) or an http(s) URL, which the gateway "
                            "never fetches (only backends that fetch URLs can serve it).",
             "properties": {"type": {"const": "image_url"}, "image_url": {
                 "type": "object", "required": ["url"],
                 "properties": {"url": {"type": "string"}, "detail": {"enum": ["auto", "low", "high"]}}}}},
        ]}},
    ]},
    oai.EmbeddingInput: {"oneOf": [
        *_STRINGS_OR_STRING["oneOf"],
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
         "minItems": 1},
    ]},
    oai.NotSupported: {"description": "Not supported: accepted only as false, 0, [] or {}.",
                       "enum": [False, 0, [], {}]},
    oai.OnlyOne: {"const": 1},
    oai.LegacyFunctionCall: {"enum": ["none", "auto"]},
    tools.ToolName: {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    req.SchemaObject: _SCHEMA_OBJECT,
    tools.ArgumentsText: {"type": "string", "description": "A JSON object, encoded as a string."},
    tools.ToolChoiceSpec: {"oneOf": [
        {"enum": ["none", "auto", "required"]},
        {"type": "object", "required": ["type", "function"], "properties": {
            "type": {"const": "function"},
            "function": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}},
    ]},
    tools.ResponseFormatSpec: {"oneOf": [
        {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["text", "json_object"]}}},
        {"type": "object", "required": ["type", "json_schema"], "properties": {
            "type": {"const": "json_schema"},
            "json_schema": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "description": {"type": "string"}, "strict": {"type": "boolean"},
                "schema": {**_SCHEMA_OBJECT, "required": ["type"]}}}}},
    ]},
    tools.ReasoningEffort: {"enum": list(tools.REASONING_EFFORTS)},
    req.Penalty: {"type": "number", "minimum": -2, "maximum": 2},
    tools.TopLogprobs: {"type": "integer", "minimum": 0, "maximum": 20},
    tools.LogitBias: {"type": "object", "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}},
    cmp.Prompts: {"oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ]},
    cmp.Suffix: {"type": "string"},
    rsp.ResponseInput: {"oneOf": [
        {"type": "string"},
        {"type": "array", "minItems": 1, "items": {"oneOf": [
            {"type": "object", "required": ["role", "content"], "additionalProperties": False, "properties": {
                "type": {"const": "message"},
                "role": {"enum": ["user", "assistant", "system", "developer"]},
                "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"oneOf": [
                    {"type": "object", "required": ["type", "text"],
                     "properties": {"type": {"enum": ["input_text", "output_text"]}, "text": {"type": "string"}}},
                    {"type": "object", "required": ["type", "image_url"],
                     "properties": {"type": {"const": "input_image"}, "image_url": {"type": "string"},
                                    "detail": {"enum": ["auto", "low", "high"]}}},
                ]}}]},
                "id": {"type": "string"}, "status": {"type": "string"}, "phase": {"type": "string"},
            }},
            {"type": "object", "required": ["type", "call_id", "name", "arguments"], "additionalProperties": False,
             "properties": {"type": {"const": "function_call"}, "call_id": {"type": "string"},
                            "name": {"type": "string"},
                            "arguments": {"type": "string", "description": "A JSON object, encoded as a string."},
                            "id": {"type": "string"}, "status": {"type": "string"}}},
            {"type": "object", "required": ["type", "call_id", "output"], "additionalProperties": False,
             "properties": {"type": {"const": "function_call_output"}, "call_id": {"type": "string"},
                            "output": {"type": "string"}, "id": {"type": "string"}, "status": {"type": "string"}}},
        ]}},
    ]},
    rsp_tools.ResponseTextFormat: {"oneOf": [
        {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["text", "json_object"]}}},
        {"type": "object", "required": ["type", "name", "schema"], "properties": {
            "type": {"const": "json_schema"}, "name": {"type": "string"}, "schema": _SCHEMA_OBJECT,
            "strict": {"type": "boolean"}, "description": {"type": "string"}}},
    ]},
    rsp_tools.ResponseToolChoice: {"oneOf": [
        {"enum": ["none", "auto", "required"]},
        {"type": "object", "required": ["type", "name"],
         "properties": {"type": {"const": "function"}, "name": {"type": "string"}}},
    ]},
    rsp.NotStored: {"description": "Answers are not stored: only false is accepted.", "const": False},
    rsp.NoPreviousResponse: {"description": "Not supported: answers are not stored; send the conversation in "
                                            "`input`.", "not": {}},
    **OLLAMA_CONSTRAINED,
}

# Cross-field rules that live in code (octomil/request_models.prompt_problems), stated here too.
_ONE_PROMPT = {"oneOf": [
    {"required": ["messages"], "not": {"required": ["input_data"]}},
    {"required": ["input_data"], "not": {"required": ["messages"]}},
]}
_EXTRA: dict[type, Schema] = {contract.InferenceBody: _ONE_PROMPT, contract.PromptBody: _ONE_PROMPT}
# Fields typed loosely for the validator's sake, and what they really hold.
_FIELD_OVERRIDES: dict[tuple[type, str], Callable[[_Components], Schema]] = {
    (contract.BatchBody, "inputs"): lambda c: {"type": "array", "minItems": 1, "items": c.ref(contract.PromptBody)},
}


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def ref(self, cls: type) -> Schema:
        name = cls.__name__
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursive references terminate
            self.schemas[name] = self._object(cls)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(self, cls: type) -> Schema:
        hints = typing.get_type_hints(cls)
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            override = _FIELD_OVERRIDES.get((cls, field.name))
            properties[field.name] = override(self) if override else self.of(hints[field.name])
            if field.default is attrs.NOTHING:
                required.append(field.name)
        schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        return {**schema, **_EXTRA.get(cls, {})}

    def of(self, hint: Any) -> Schema:
        if hint in _CONSTRAINED:
            return _CONSTRAINED[hint]
        if hint is type(None) or hint is None:
            return {"type": "null"}
        simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
        if hint in simple:
            return {"type": simple[hint]}
        if hint is Any or hint is object:
            return {}
        if attrs.has(hint):
            return self.ref(hint)
        origin, args = get_origin(hint), get_args(hint)
        if origin is Literal:
            return {"enum": list(args)}
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of(arg) for arg in args]}
        if origin is list:
            return {"type": "array", "items": self.of(args[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(args[1])}
        raise TypeError(f"no JSON Schema for {hint!r}")


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _operation(
    summary: str, components: _Components, *, body: type | None = None, answer: type | None = None,
    events: type | None = None, error: type = res.ErrorAnswer, public: bool = False,
) -> Schema:
    responses: Schema = {}
    if answer is not None:
        responses["200"] = {"description": "OK", "content": _json(components.ref(answer))}
    if events is not None:
        responses["200"] = {"description": "Server-Sent Events; each `data:` line holds one JSON object of "
                                           f"this schema ({events.__name__})",
                            "content": {"text/event-stream": {"schema": components.ref(events)}}}
    if public and answer is not None:  # a probe: its 503 has the same shape as its 200
        responses["503"] = {"description": "Not live, or not ready", "content": _json(components.ref(answer))}
    responses["default"] = {"description": "An error", "content": _json(components.ref(error))}
    operation: Schema = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(components.ref(body))}
    if public:
        operation["security"] = []
    return operation


def openapi_document(settings: Settings) -> Schema:
    c = _Components()
    oai_error = oai_res.OpenAIError
    paths: Schema = {
        "/api/v1/inference": {"post": _operation(
            "Single-shot inference", c, body=contract.InferenceBody, answer=res.InferenceAnswer)},
        "/api/v1/inference/stream": {"post": _operation(
            "Streaming inference over Server-Sent Events", c, body=contract.InferenceBody, events=res.StreamEvent)},
        "/api/v1/inference/batch": {"post": _operation(
            "Many prompts, bounded concurrency, answers in input order", c, body=contract.BatchBody,
            answer=res.BatchAnswer)},
        "/api/v1/embeddings": {"post": _operation(
            "Text embeddings", c, body=contract.EmbeddingsBody, answer=res.EmbeddingsAnswer)},
        "/api/v1/health": {"get": _operation("Backend health (details for operator keys)", c, answer=res.HealthAnswer)},
        "/api/v1/inference/health": {"get": _operation("Backend health (same answer)", c, answer=res.HealthAnswer)},
        "/api/v1/models": {"get": _operation("Public models and their backends", c, answer=res.ModelsAnswer)},
        "/api/v1/admin/usage": {"get": _operation(
            "Tokens per key and model (admin keys only)", c, answer=res.AdminUsageAnswer)},
        "/v1/chat/completions": {"post": _operation(
            "OpenAI-compatible chat completions; `stream: true` answers chat.completion.chunk events", c,
            body=oai.ChatCompletionBody, answer=oai_res.ChatCompletion, error=oai_error)},
        "/v1/completions": {"post": _operation(
            "OpenAI-compatible text completions (prompt, suffix); `stream: true` answers text_completion chunks", c,
            body=cmp.CompletionBody, answer=gen.TextCompletion, error=oai_error)},
        "/v1/responses": {"post": _operation(
            "OpenAI's Responses API; `stream: true` answers its named events (response.created ... "
            "response.completed)", c, body=rsp.ResponsesBody, answer=gen.ResponseObject, error=oai_error)},
        "/v1/embeddings": {"post": _operation(
            "OpenAI-compatible embeddings", c, body=oai.EmbeddingsV1Body, answer=oai_res.OpenAIEmbeddings,
            error=oai_error)},
        "/v1/models": {"get": _operation("OpenAI-compatible model list", c, answer=oai_res.OpenAIModelList,
                                         error=oai_error)},
        "/v1/models/{model}": {"get": {
            **_operation("One model", c, answer=oai_res.OpenAIModel, error=oai_error),
            "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
        }},
    }
    paths["/livez"] = {"get": _operation("Liveness probe (no token)", c, answer=res.LiveAnswer, public=True)}
    paths["/readyz"] = {"get": _operation("Readiness probe (no token)", c, answer=res.ReadyAnswer, public=True)}
    metrics_operation = _operation("Prometheus metrics, text format (no token)", c, public=True)
    metrics_operation["responses"]["200"] = {
        "description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    paths["/metrics"] = {"get": metrics_operation}
    paths["/api/v1/openapi.json"] = {"get": {
        "summary": "This description (no token)", "security": [],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
    }}
    paths.update(ollama_paths(c.ref, c.schemas))
    # The stream's events are described too, though no JSON response carries them.
    paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]["text/event-stream"] = {
        "schema": c.ref(oai_res.ChatCompletionChunk)}
    # A stream cut after its start ends with an error event in OpenAI's shape, and no [DONE].
    paths["/v1/completions"]["post"]["responses"]["200"]["content"]["text/event-stream"] = {
        "schema": {"oneOf": [c.ref(gen.TextCompletion), c.ref(oai_error)]}}
    paths["/v1/responses"]["post"]["responses"]["200"]["content"]["text/event-stream"] = {
        "schema": c.ref(gen.ResponseStreamEvent)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "octomil-gateway",
            "version": "1",
            "description": "One API for local (Ollama) and cloud (OpenAI-compatible) inference, with fallback. "
                           f"Request bodies are limited to {settings.max_body_bytes} bytes.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": c.schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

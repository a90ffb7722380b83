"""The Ollama API's part of the OpenAPI description: /api/chat, /api/generate, /api/embed,
/api/embeddings, /api/tags, /api/ps, /api/show, /api/version, / and model management.

Request bodies come from the classes that check them (surfaces/ollama/request_models.py).
Answers are described by the fields Ollama's clients read; they allow more
(`additionalProperties`), since an Ollama backend's answer passes through as it was sent and
Ollama adds fields from release to release. Errors are `{"error": "..."}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.surfaces.ollama import listing
from proxy.surfaces.ollama import request_models as oll

Schema = dict[str, Any]
Ref = Callable[[type], Schema]

CONSTRAINED: dict[object, Schema] = {
    oll.Format: {"anyOf": [{"enum": ["json", ""]}, {"type": "object"}],
                 "description": '"json", or a JSON schema the answer must match'},
    oll.Think: {"anyOf": [{"type": "boolean"}, {"enum": ["low", "medium", "high"]}]},
    oll.KeepAlive: {"anyOf": [{"type": "string"}, {"type": "number"}]},
    oll.JsonObject: {"type": "object"},
}

_DURATIONS = {name: {"type": "integer", "description": "nanoseconds"} for name in (
    "total_duration", "load_duration", "prompt_eval_duration", "eval_duration")}
_COUNTS = {"prompt_eval_count": {"type": "integer"}, "eval_count": {"type": "integer"}}
_MESSAGE = {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"type": "string"}, "content": {"type": "string"}, "thinking": {"type": "string"},
    "tool_calls": {"type": "array", "items": {"type": "object"}}, "images": {"type": "array"}}}
_TOKEN_LOGPROB = {"token": {"type": "string"}, "logprob": {"type": "number"},
                  "bytes": {"type": "array", "items": {"type": "integer"}}}
_LOGPROBS = {"type": "array", "description": "with `logprobs: true`: an entry per token of this line (or answer)",
             "items": {"type": "object", "properties": {**_TOKEN_LOGPROB, "top_logprobs": {
                 "type": "array", "items": {"type": "object", "properties": _TOKEN_LOGPROB}}}}}
_STEP = {"model": {"type": "string"}, "created_at": {"type": "string"}, "done": {"type": "boolean"},
         "done_reason": {"type": "string"}, "logprobs": _LOGPROBS, **_COUNTS, **_DURATIONS}
_MODEL_ENTRY = {"type": "object", "required": ["name", "model"], "properties": {
    "name": {"type": "string"}, "model": {"type": "string"}, "size": {"type": "integer"},
    "digest": {"type": "string"}, "details": {"type": "object"}, "modified_at": {"type": "string"},
    "expires_at": {"type": "string"}, "size_vram": {"type": "integer"}}}

SCHEMAS: dict[str, Schema] = {
    "OllamaError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "OllamaChatAnswer": {"type": "object", "required": ["model", "message", "done"], "description":
                         "One answer, or with `stream` (the default) one NDJSON line of the stream; the last "
                         "has `done: true` and the counts. A stream cut after its start ends with an "
                         "OllamaError line.",
                         "properties": {**_STEP, "message": _MESSAGE}},
    "OllamaGenerateAnswer": {"type": "object", "required": ["model", "response", "done"],
                             "description": "As OllamaChatAnswer, with `response` for `message`.",
                             "properties": {**_STEP, "response": {"type": "string"}, "thinking": {"type": "string"},
                                            "context": {"type": "array", "items": {"type": "integer"}}}},
    "OllamaEmbedAnswer": {"type": "object", "required": ["model", "embeddings"], "properties": {
        "model": {"type": "string"}, "embeddings": {"type": "array", "items": {"type": "array",
                                                                                "items": {"type": "number"}}},
        "total_duration": _DURATIONS["total_duration"], "prompt_eval_count": {"type": "integer"}}},
    "OllamaEmbedding": {"type": "object", "required": ["embedding"], "properties": {
        "embedding": {"type": "array", "items": {"type": "number"}}}},
    "OllamaModels": {"type": "object", "required": ["models"], "properties": {
        "models": {"type": "array", "items": _MODEL_ENTRY}}},
    "OllamaShow": {"type": "object", "properties": {
        "modelfile": {"type": "string"}, "parameters": {"type": "string"}, "template": {"type": "string"},
        "details": {"type": "object"}, "model_info": {"type": "object"},
        "capabilities": {"type": "array", "items": {"type": "string"}}}},
    "OllamaVersion": {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}},
    "OllamaStatus": {"type": "object", "description": "A progress line of a pull, push or create stream",
                     "properties": {"status": {"type": "string"}, "digest": {"type": "string"},
                                    "total": {"type": "integer"}, "completed": {"type": "integer"}}},
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(summary: str, ref: Ref, *, body: type | None = None, answer: str | None = None,
               ndjson: bool = False, public: bool = False) -> Schema:
    content: Schema = {}
    if answer is not None:
        content["application/json"] = {"schema": _ref(answer)}
        if ndjson:  # each line; a stream cut after its start ends with an error line
            content["application/x-ndjson"] = {"schema": {"anyOf": [_ref(answer), _ref("OllamaError")]}}
    responses: Schema = {"200": {"description": "OK", **({"content": content} if content else {})},
                         "default": {"description": "An error", "content": {"application/json": {
                             "schema": _ref("OllamaError")}}}}
    operation: Schema = {"summary": summary, "tags": ["Ollama API"], "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    if public:
        operation["security"] = []
    return operation


def _management(summary: str) -> Schema:
    operation = _operation(f"{summary} (admin keys only; relayed to an Ollama server as it is)", lambda _: {})
    operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    operation["responses"]["200"]["content"] = {"application/x-ndjson": {"schema": _ref("OllamaStatus")}}
    operation["parameters"] = [{"name": "X-Gateway-Backend", "in": "header", "required": False,
                                "description": "The Ollama backend to manage (default: the first)",
                                "schema": {"type": "string"}}]
    return operation


def _root(ref: Ref) -> Schema:
    operation = _operation("'Ollama is running' (no token), as clients probe", ref, public=True)
    operation["responses"]["200"]["content"] = {"text/plain": {"schema": {"const": "Ollama is running"}}}
    return operation


def ollama_paths(ref: Ref, schemas: dict[str, Schema]) -> dict[str, Schema]:
    schemas.update(SCHEMAS)
    digest = [{"name": "digest", "in": "path", "required": True, "schema": {"type": "string"}}]
    blob_head = {**_management("Whether the Ollama server has a blob"), "parameters": digest}
    del blob_head["requestBody"]
    blob_post = {**_management("Upload a blob, streamed (up to PROXY_OLLAMA_BLOB_MAX_BYTES)"), "parameters": digest}
    blob_post["requestBody"] = {"required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}
    return {
        "/api/chat": {"post": _operation("Ollama chat; streams NDJSON unless `stream` is false", ref,
                                         body=oll.ChatBody, answer="OllamaChatAnswer", ndjson=True)},
        "/api/generate": {"post": _operation("Ollama completion; streams NDJSON unless `stream` is false", ref,
                                             body=oll.GenerateBody, answer="OllamaGenerateAnswer", ndjson=True)},
        "/api/embed": {"post": _operation("Ollama embeddings", ref, body=oll.EmbedBody, answer="OllamaEmbedAnswer")},
        "/api/embeddings": {"post": _operation("Ollama's older embeddings endpoint", ref,
                                               body=oll.LegacyEmbeddingsBody, answer="OllamaEmbedding")},
        "/api/tags": {"get": _operation("Models this key may use", ref, answer="OllamaModels")},
        "/api/ps": {"get": _operation("Models the Ollama backends have loaded", ref, answer="OllamaModels")},
        "/api/show": {"post": _operation("What is known of one model", ref, body=listing.ShowBody,
                                         answer="OllamaShow")},
        "/api/version": {"get": _operation("The Ollama version", ref, answer="OllamaVersion")},
        "/": {"get": _root(ref)},
        "/api/pull": {"post": _management("Pull a model")},
        "/api/push": {"post": _management("Push a model")},
        "/api/create": {"post": _management("Create a model")},
        "/api/copy": {"post": _management("Copy a model")},
        "/api/delete": {"delete": _management("Delete a model")},
        "/api/blobs/{digest}": {"head": blob_head, "post": blob_post},
    }

"""Errors in Ollama's own shape for its surface (Ollama's paths, `PATHS`): `{"error": "..."}`
with the status, which is all Ollama sends and all its clients read (the `ollama` package
raises it as `ResponseError(error, status_code)`). The request id is in X-Request-ID."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.errors import GatewayError

# Ollama's API paths (and what starts with them: /api/embeddings, /api/blobs/{digest}); any
# other path under /api keeps the contract's error shape.
PATHS = ("/api/chat", "/api/generate", "/api/embed", "/api/tags", "/api/ps", "/api/show", "/api/version",
         "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/api/blobs/")


def ollama_error(error: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    return {"error": error.message}


def error_line(error: GatewayError) -> bytes:
    """The line that ends a stream cut after its start, as Ollama ends its own."""
    return orjson.dumps(ollama_error(error)) + b"\n"

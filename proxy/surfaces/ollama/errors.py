"""Errors in Ollama's own shape for its surface (`/api/...` outside `/api/v1`): `{"error": "..."}`
with the status, which is all Ollama sends and all its clients read (the `ollama` package
raises it as `ResponseError(error, status_code)`). The request id is in X-Request-ID."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.errors import GatewayError


def ollama_error(error: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    return {"error": error.message}


def error_line(error: GatewayError) -> bytes:
    """The line that ends a stream cut after its start, as Ollama ends its own."""
    return orjson.dumps(ollama_error(error)) + b"\n"

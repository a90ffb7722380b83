"""Errors in OpenAI's shape for the `/v1` surface: `{"error": {"message", "type", "param", "code"}}`.

The status and `code` are the gateway's own (docs/errors.md); `type` is OpenAI's
category for that status, which the official clients map to their exception classes.
"""

from __future__ import annotations

from typing import Any

from proxy.errors import GatewayError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(error: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "message": error.message,
        "type": _TYPES.get(error.status, "invalid_request_error" if error.status < 500 else "server_error"),
        "param": _param(error),
        "code": error.code,
        **error.extra,
    }
    if request_id:
        described["request_id"] = request_id
    return {"error": described}


def _param(error: GatewayError) -> str | None:
    """The request field the first problem names, in OpenAI's spelling ("messages[0].content"):
    clients show `param` to say which field to fix. None when no field is to blame."""
    problems = error.extra.get("errors")
    if not problems or not isinstance(problems[0], str):
        return None
    _, at, path = problems[0].rpartition(" @ $")
    path = path.lstrip(".")
    return path if at and path else None

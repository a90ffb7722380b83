"""The gateway's one exception hierarchy.

Each class carries the HTTP status and the stable machine-readable `code` that clients
and logs rely on (the codes of CONTRACT.md). The error middleware renders any of them
as `{"code", "message", "retryable", "request_id", ...}`; nothing else decides statuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "server_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        # Extra JSON fields for the body (e.g. validation `errors`, backend `attempts`).
        self.extra = extra
        self.headers: dict[str, str] = {}

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable, **self.extra}


class InvalidInput(GatewayError):
    status, code = 400, "invalid_input"


class Unauthorized(GatewayError):
    status, code = 401, "unauthorized"


class Forbidden(GatewayError):
    """Refused whoever asks: a browser's preflight from an origin that is not allowed, or a
    valid key asking for what it may not have (a model, the admin endpoints)."""

    status, code = 403, "forbidden"


class RouteNotFound(GatewayError):
    status, code = 404, "not_found"


class MethodNotAllowed(GatewayError):
    status, code = 405, "method_not_allowed"


class BodyTimeout(GatewayError):
    """The request body did not arrive within PROXY_BODY_TIMEOUT."""

    status, code = 408, "body_timeout"


class PayloadTooLarge(GatewayError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status, code = 415, "unsupported_media_type"


class Overloaded(GatewayError):
    """More requests in flight than configured: come back shortly (Retry-After)."""

    status, code, retryable = 503, "overloaded", True

    def __init__(self, message: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.headers["Retry-After"] = str(retry_after)


class ShuttingDown(GatewayError):
    status, code, retryable = 503, "shutting_down", True


# --- upstream failures -------------------------------------------------------------


class UpstreamError(GatewayError):
    """A backend could not answer. `fallthrough` says whether the next backend may try."""

    fallthrough: ClassVar[bool] = True
    # Whether this failure says the backend itself is unwell (feeds its breaker).
    backend_down: ClassVar[bool] = True

    def __init__(self, message: str, *, backend: str = "", **extra: Any) -> None:
        super().__init__(message, **extra)
        self.backend = backend

    def attempt(self) -> dict[str, Any]:
        """How this failure is reported among the attempts of a request."""
        return {"backend": self.backend, "status": self.status, "code": self.code, "message": self.message}


class UpstreamUnavailable(UpstreamError):
    """Refused, reset, 5xx, 429, or a full queue: another backend may serve."""

    status, code, retryable = 503, "upstream_unavailable", True


class UpstreamTimeout(UpstreamError):
    status, code, retryable = 504, "request_timeout", True


class BadUpstreamResponse(UpstreamError):
    """The upstream answered something that is not its protocol (bad JSON, cut stream)."""

    status, code, retryable = 502, "bad_upstream_response", True


class UpstreamSaturated(UpstreamError):
    """This upstream already has its configured maximum of requests in flight."""

    status, code, retryable, backend_down = 503, "overloaded", True, False


class ModelNotFound(UpstreamError):
    status, code, backend_down = 404, "model_not_found", False


class UpstreamRejected(UpstreamError):
    """The upstream found the request itself invalid: another backend would too."""

    status, code, fallthrough, backend_down = 400, "invalid_input", False, False


class BackendIncapable(UpstreamError):
    """This backend cannot serve what the request asks for (an Ollama `suffix` on an
    OpenAI-compatible endpoint): the next backend may, and the backend is fine."""

    status, code, backend_down = 400, "unsupported_by_backend", False


class ContextTooLarge(UpstreamError):
    status, code, fallthrough, backend_down = 413, "context_too_large", False, False


class AllBackendsFailed(GatewayError):
    """Every backend that was tried failed; the status reflects what they said.

    All said "no such model": 404, the model is missing, not the service. Otherwise the
    one status they agree on (504 when all timed out), else 503.
    """

    def __init__(self, failures: Sequence[UpstreamError]) -> None:
        real = [f for f in failures if not isinstance(f, ModelNotFound)]
        lead = "no backend has this model" if not real else "no backend could serve the request"
        summary = "; ".join(f"{f.backend}: {f.message}" for f in failures)
        super().__init__(f"{lead} ({summary})", attempts=[f.attempt() for f in failures])
        representative: type[UpstreamError]
        if not real:
            representative = ModelNotFound
        elif len({type(f) for f in real}) == 1:
            representative = type(real[0])
        else:
            representative = UpstreamUnavailable
        self.status = representative.status  # type: ignore[misc]
        self.code = representative.code  # type: ignore[misc]
        self.retryable = representative.retryable  # type: ignore[misc]
        if representative is UpstreamSaturated:
            self.headers["Retry-After"] = "1"


# --- tenants and their limits ------------------------------------------------------


class RateLimited(GatewayError):
    """A key's limit is reached: `limit` names it, Retry-After says when to come back.

    A request that could never fit (it alone reserves more tokens than the key's limit
    per minute) is not retryable and has no Retry-After: waiting would not help.
    """

    status, code, retryable = 429, "rate_limited", True

    def __init__(self, message: str, *, limit: str, limit_value: int, retry_after: int | None) -> None:
        super().__init__(message, limit=limit, limit_value=limit_value, retry_after=retry_after)
        if retry_after is None:
            self.retryable = False  # type: ignore[misc]
        else:
            self.headers["Retry-After"] = str(retry_after)


class LimitsUnavailable(GatewayError):
    """The shared limit state (Redis) is unreachable and the policy is to fail closed."""

    status, code, retryable = 503, "limits_unavailable", True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = "1"

"""The shapes of `/api/v1`'s answers (the Octomil contract) and of the probes, as attrs
classes, for the OpenAPI description.

Handlers build their JSON directly (it is the hot path); these classes describe it, and
tests/surfaces/test_openapi.py checks every real answer against the description generated from
them, with unknown fields refused, so a handler and its description cannot drift apart.
OpenAI's shapes under `/v1` are in openai_shapes.py and generation_shapes.py, which reuse the
usage and attempt shapes defined here.

A field without a default is always present; `X | None = None` may be absent or null.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import frozen

# A key's limit that a 429 names.
LimitName = Literal["requests_per_minute", "tokens_per_minute", "concurrent_requests"]


@frozen
class UsageAnswer:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@frozen
class AttemptAnswer:
    """One backend's failure among those that ended a request."""

    backend: str
    status: int
    code: str
    message: str


@frozen
class ErrorAnswer:
    code: str
    message: str
    retryable: bool
    request_id: str
    errors: list[str] | None = None
    attempts: list[AttemptAnswer] | None = None
    # 429 rate_limited: which limit of the key, its value, and the seconds in Retry-After
    # (null when the request could never fit).
    limit: LimitName | None = None
    limit_value: int | None = None
    retry_after: int | None = None


@frozen
class InferenceAnswer:
    output: str
    latency_ms: float
    provider: str
    model_id: str
    usage: UsageAnswer | None = None
    finish_reason: str | None = None
    # The model's thinking, only when `parameters.include_reasoning` asked for it.
    reasoning: str | None = None


@frozen
class StreamError:
    code: str
    message: str
    retryable: bool
    backend: str | None = None
    attempts: list[AttemptAnswer] | None = None


@frozen
class StreamEvent:
    """One `data:` event of /api/v1/inference/stream; the last has `done: true`."""

    token: str
    done: bool
    provider: str
    latency_ms: float | None = None
    model_id: str | None = None
    usage: UsageAnswer | None = None
    finish_reason: str | None = None
    error: StreamError | None = None
    # A piece of the model's thinking (with an empty `token`), only when
    # `parameters.include_reasoning` asked for it.
    reasoning: str | None = None


@frozen
class ItemError:
    code: str
    message: str
    retryable: bool
    errors: list[str] | None = None
    attempts: list[AttemptAnswer] | None = None


@frozen
class BatchItemAnswer:
    """An item's answer (status 200) or its own error (any other status)."""

    index: int
    status: int
    output: str | None = None
    latency_ms: float | None = None
    provider: str | None = None
    model_id: str | None = None
    usage: UsageAnswer | None = None
    finish_reason: str | None = None
    error: ItemError | None = None
    reasoning: str | None = None


@frozen
class BatchAnswer:
    model_id: str
    results: list[BatchItemAnswer]
    succeeded: int
    failed: int
    max_concurrency: int
    latency_ms: float


@frozen
class EmbeddingItem:
    object: Literal["embedding"]
    index: int
    embedding: list[float]


@frozen
class EmbeddingUsage:
    prompt_tokens: int
    total_tokens: int


@frozen
class EmbeddingsAnswer:
    object: Literal["list"]
    data: list[EmbeddingItem]
    embeddings: list[list[float]]
    model: str
    model_id: str
    provider: str
    usage: EmbeddingUsage
    latency_ms: float


@frozen
class BackendHealth:
    """Every field for operators (admin keys, the plain PROXY_API_TOKENS, any caller with
    auth off); other keys get name, provider and healthy only."""

    name: str
    provider: str
    healthy: bool
    url: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    state: Literal["closed", "open", "half_open"] | None = None
    consecutive_failures: int | None = None
    in_flight: int | None = None


@frozen
class RedisHealth:
    """The fleet's shared state (with PROXY_REDIS_URL); the URL is shown without its password."""

    url: str
    up: bool
    since: float
    error: str | None
    failure_policy: Literal["open", "closed"]
    replicas: int


@frozen
class HealthAnswer:
    status: Literal["ok", "unavailable", "draining"]
    backends: list[BackendHealth]
    latency_ms: float
    # Operators only, like the backends' details:
    in_flight: int | None = None
    # Where per-key limits are decided now: this process, Redis, or (Redis down) each
    # replica's share or refusal.
    limits: Literal["local", "shared", "local_share", "refusing"] | None = None
    redis: RedisHealth | None = None


@frozen
class KeyLimits:
    requests_per_minute: int | None
    tokens_per_minute: int | None
    concurrent_requests: int | None


@frozen
class KeyUsage:
    """One key's tokens: per model and in total, each {"in": prompt, "out": completion}."""

    limits: KeyLimits | None
    models: dict[str, dict[str, int]]
    total: dict[str, int]
    window_here: dict[str, int]


@frozen
class AdminUsageAnswer:
    scope: Literal["fleet", "this_process"]
    limits: Literal["local", "shared", "local_share", "refusing"]
    keys: dict[str, KeyUsage]
    latency_ms: float


@frozen
class ModelBackend:
    backend: str
    model: str
    available: bool | None


@frozen
class MaxTokens:
    default: int | None
    max: int | None


@frozen
class ModelAnswer:
    model_id: str
    backends: list[ModelBackend]
    kinds: list[Literal["chat", "embeddings"]] | None = None
    max_tokens: MaxTokens | None = None


@frozen
class ModelsAnswer:
    object: Literal["list"]
    routing: Literal["table", "passthrough"]
    unknown_models: Literal["refuse", "pass"]
    models: list[ModelAnswer]
    # Each backend's reported model names, or {"error": "..."} when it could not say.
    backends: dict[str, Any]


@frozen
class LiveAnswer:
    status: Literal["ok", "shutting_down"]


@frozen
class BackendCounts:
    total: int
    cooling_down: int


@frozen
class ReadyAnswer:
    status: Literal["ready", "shutting_down", "unavailable"]
    backends: BackendCounts | None = None

"""Prometheus metrics: what they are and how they are counted (served by surfaces/operations/metrics.py;
each request is counted by edge/observe.py).

With several worker processes each keeps its own counters; prometheus-client's
multiprocess mode writes them to files in PROMETHEUS_MULTIPROC_DIR (set by the
supervisor before any worker starts) and a scrape of any worker adds them all up. Gauges
say how their per-process values combine: in-flight requests are summed over the live
workers, a backend counts as down if any worker sees it down.

Labels are bounded sets: route templates (never raw paths), backend and provider names,
error codes, and the public model names that were actually served.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from proxy.observability.model_labels import MODEL_LABELS

# Buckets from a cached local model's first token (~10 ms) to a cold load or a long answer.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "gateway_requests", "Requests answered, by route template, method, status and provider.",
    ["route", "method", "status", "provider"],
)
DURATION = Histogram(
    "gateway_request_duration_seconds", "Whole request time, a stream until its last event.",
    ["route", "provider"], buckets=_LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gateway_time_to_first_token_seconds", "Time until a stream's first token was sent to the client.",
    ["route", "provider"], buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "gateway_tokens", "Tokens as the upstreams counted them: direction in (prompt) or out (completion).",
    ["provider", "model", "direction"],
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors", "Upstream calls that failed, by backend and error code.", ["backend", "reason"],
)
FALLBACKS = Counter(
    "gateway_fallbacks", "Requests a backend passed on to the next one, by backend and error code.",
    ["backend", "reason"],
)
IN_FLIGHT = Gauge(
    "gateway_requests_in_flight", "Inference requests (POST) being served now, as admission counts them.",
    multiprocess_mode="livesum",
)
BACKEND_UP = Gauge(
    "gateway_backend_up", "1 while a backend's breaker lets requests through, 0 while it is open.",
    ["backend", "provider"], multiprocess_mode="livemin",
)
BREAKER_STATE = Gauge(
    "gateway_backend_breaker_state", "A backend's breaker: 0 closed, 1 half_open, 2 open.",
    ["backend"], multiprocess_mode="livemax",
)
_BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}

# Each metric's child per label values: labels() costs more than the increment itself,
# and this runs for every request. Bounded, since every label set is (see the module doc).
_children: dict[tuple[object, ...], Any] = {}
# What every request updates, by (route, method, status, provider): its two children found
# with one lookup instead of two, the status turned into a label once.
_answered: dict[tuple[str, str, int, str | None], tuple[Any, Any]] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def _request_children(route: str, method: str, status: int, provider: str | None) -> tuple[Any, Any]:
    """(the REQUESTS child, the DURATION child) of a request's labels."""
    key = (route, method, status, provider)
    children = _answered.get(key)
    if children is None:
        provider = provider or "none"
        children = _answered[key] = (REQUESTS.labels(route, method, str(status), provider),
                                     DURATION.labels(route, provider))
    return children


def record_request(
    route: str, method: str, status: int, provider: str | None, *, duration: float,
    first_token_after: float | None, model: str | None, tokens: dict[str, list[int]], key: str = "",
) -> None:
    """One request that has ended (counted by the edge's `observe` middleware); `key`: the
    caller's key name, whose share of the model-label budget a new model takes."""
    requests, durations = _request_children(route, method, status, provider)
    requests.inc()
    durations.observe(duration)
    if first_token_after is not None:
        _child(TIME_TO_FIRST_TOKEN, route, provider or "none").observe(first_token_after)
    if not tokens:
        return
    label = MODEL_LABELS.label(model, served=True, key=key)
    for served_by, (tokens_in, tokens_out) in tokens.items():
        if tokens_in:
            _child(TOKENS, served_by, label, "in").inc(tokens_in)
        if tokens_out:
            _child(TOKENS, served_by, label, "out").inc(tokens_out)


def upstream_failed(backend: str, code: str, *, passed_on: bool) -> None:
    UPSTREAM_ERRORS.labels(backend, code).inc()
    if passed_on:
        FALLBACKS.labels(backend, code).inc()


def set_backend_state(backend: str, provider: str, state: str) -> None:
    BACKEND_UP.labels(backend, provider).set(0 if state == "open" else 1)
    BREAKER_STATE.labels(backend).set(_BREAKER_VALUES[state])

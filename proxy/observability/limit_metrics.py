"""Prometheus metrics of tenants, limits and the shared state.

Defined in the default registry, which `/metrics` exports; safe with PROXY_WORKERS > 1
(prometheus-client's multiprocess mode: counters add up across workers, and the gauge says
how each worker's value combines). Labels are bounded: `key` is a name from the keys file
(or `default`/`anonymous`), `model` a public model name that an upstream actually served.
"""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge

KEY_TOKENS = Counter(
    "gateway_key_tokens_total",
    "Tokens per API key and model; direction is in (prompt) or out (completion)",
    ["key", "model", "direction"],
)
RATE_LIMITED = Counter(
    "gateway_rate_limited_total",
    "Requests refused with 429, per API key and the limit that was hit",
    ["key", "limit"],
)
LIMITS_UNAVAILABLE = Counter(
    "gateway_limits_unavailable_total",
    "Requests refused with 503 because Redis was down and PROXY_REDIS_FAILURE=closed",
    ["key"],
)


@functools.cache
def redis_up() -> Gauge:
    """1 when this worker reaches Redis; across workers, the lowest: any worker cut off shows.

    Made only once a Redis is configured, so a gateway without one exports no 0 to alert on.
    """
    return Gauge("gateway_redis_up", "Whether Redis, the fleet's shared state, is reachable (1) or not (0)",
                 multiprocess_mode="livemin")

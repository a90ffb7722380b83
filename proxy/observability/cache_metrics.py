"""The cache's Prometheus metrics: lookups by result, and bytes stored and held."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LOOKUPS = Counter(
    "gateway_cache_lookups", "Answer cache lookups, by kind (embeddings, chat, chat-stream) and result (hit, miss).",
    ["kind", "result"],
)
STORED_BYTES = Counter("gateway_cache_stored_bytes", "Bytes of answers written to the cache.", ["kind"])
SERVED_BYTES = Counter("gateway_cache_served_bytes", "Bytes of answers served from the cache.", ["kind"])
HELD_BYTES = Gauge(
    "gateway_cache_memory_bytes", "Bytes the in-memory cache holds now (0 with Redis).", multiprocess_mode="livesum",
)

"""Every environment variable the gateway reads, with its default and meaning.

config.py reads them; this table documents them for `python -m proxy --help` and is the source
of docs/configuration.md (`make docs`), and the tests check that it and config.py name the same ones.
"""

from __future__ import annotations

from attrs import frozen


@frozen
class Variable:
    name: str
    default: str
    meaning: str


ENVIRONMENT: tuple[Variable, ...] = (
    Variable('OLLAMA_BASE_URL', 'http://localhost:11434',
             'Ollama server, or several, comma-separated; off (or empty) switches Ollama off'),
    Variable('OPENAI_API_ENDPOINT', '(none)',
             "OpenAI-compatible base URL like the OpenAI SDK's base_url, e.g. http://host:8080/v1 "
             "(several, comma-separated); /chat/completions, /completions, /embeddings, /models are appended"),
    Variable('OPENAI_API_KEY', '(none)',
             'sent as Authorization: Bearer to the OpenAI-compatible endpoints'),
    Variable('LLM_BACKEND_TIMEOUT', '30',
             'seconds; the default of every silence timer below (single shot and stream alike)'),
    Variable('PROXY_CONNECT_TIMEOUT', '5',
             'seconds to open a TCP connection to an upstream (at most LLM_BACKEND_TIMEOUT)'),
    Variable('PROXY_HEADERS_TIMEOUT', 'LLM_BACKEND_TIMEOUT',
             "seconds from sending a request to the upstream's response headers"),
    Variable('PROXY_FIRST_TOKEN_TIMEOUT', 'LLM_BACKEND_TIMEOUT',
             'seconds from sending a chat request (single shot or stream) to its first token'),
    Variable('PROXY_IDLE_TIMEOUT', 'LLM_BACKEND_TIMEOUT',
             'longest silence allowed from an upstream while it answers (single shot or stream)'),
    Variable('PROXY_MAX_REQUEST_SECONDS', '300',
             'seconds; the cap on a whole single-shot call to one upstream, however steadily it writes '
             '(streams are never capped as a whole)'),
    Variable('PROXY_HOST', '127.0.0.1',
             'address to listen on (loopback unless you choose otherwise)'),
    Variable('PROXY_PORT', '8000',
             'port to listen on'),
    Variable('PROXY_WORKERS', '1',
             'processes serving the port together (SO_REUSEPORT); see docs/fleets.md'),
    Variable('PROXY_API_TOKENS', '(none)',
             'comma-separated bearer tokens clients may use, each as the unlimited key default; '
             'these or a keys file are required unless auth is off'),
    Variable('PROXY_AUTH_DISABLED', 'false',
             'true runs without authentication (only for a sidecar on a private network)'),
    Variable('PROXY_KEYS_FILE', '(none)',
             'API keys with their limits (TOML), see docs/keys-and-limits.md'),
    Variable('PROXY_KEYS_RELOAD', '2',
             'seconds between checks of the keys file for changes (SIGHUP reloads at once)'),
    Variable('PROXY_RESERVED_COMPLETION_TOKENS', '1024',
             'completion tokens reserved against tokens_per_minute for a request that sets no max_tokens'),
    Variable('PROXY_REDIS_URL', '(none)',
             'redis://, rediss:// or unix:// URL: limits, usage and backend cooldowns shared by every replica'),
    Variable('PROXY_REDIS_FAILURE', 'open',
             'while Redis is down: open enforces each replica\'s share of every limit locally, '
             'closed refuses requests of keys that have limits (503)'),
    Variable('PROXY_REDIS_TIMEOUT', '0.5',
             'seconds any Redis call may take before Redis counts as down'),
    Variable('PROXY_REDIS_PREFIX', 'octomil-gateway',
             'prefix of every Redis key (several fleets can share one Redis)'),
    Variable('PROXY_REDIS_LEASE', '15',
             'seconds a concurrency slot outlives a replica that died holding it'),
    Variable('PROXY_COLD_START_TIMEOUT', '120',
             'seconds allowed for headers and first token when Ollama must first load the model'),
    Variable('PROXY_ROUTES_FILE', '(none)',
             'routing table (TOML), see docs/routing.md'),
    Variable('PROXY_ROUTES_RELOAD', '2',
             'seconds between checks of the routing file for changes'),
    Variable('PROXY_HEALTH_TIMEOUT', '2',
             'seconds each health probe may take'),
    Variable('PROXY_MAX_IN_FLIGHT', '1024',
             'requests in flight across the gateway (a stream counts until it ends)'),
    Variable('PROXY_QUEUE_TIMEOUT', '2',
             'seconds a request beyond that limit may wait for a slot before a 503'),
    Variable('PROXY_UPSTREAM_MAX_IN_FLIGHT', '256',
             'requests in flight per upstream, which is also its connection pool size'),
    Variable('PROXY_UPSTREAM_KEEPALIVE', '4',
             "seconds an idle pooled upstream connection is kept "
             "(below common server idle timeouts, e.g. uvicorn's 5)"),
    Variable('PROXY_BREAKER_FAILURES', '3',
             'consecutive failures after which a backend rests'),
    Variable('PROXY_BREAKER_COOLDOWN', '10',
             'seconds a resting backend is skipped before one trial request'),
    Variable('PROXY_SHUTDOWN_GRACE', '30',
             'seconds streams (and then single-shot calls) may take to finish after SIGTERM'),
    Variable('PROXY_MAX_BODY_BYTES', '1048576',
             'request bodies above this are refused with 413'),
    Variable('PROXY_OLLAMA_BLOB_MAX_BYTES', '274877906944',
             'largest model file an admin may upload through POST /api/blobs/{digest} (256 GiB); '
             'streamed to Ollama, never held in memory'),
    Variable('PROXY_BODY_TIMEOUT', '15',
             'seconds a request body may take to arrive, once its headers have; 408 after'),
    Variable('PROXY_ALLOWED_HOSTS', '(none)',
             'comma-separated host names requests may name in Host, beyond localhost and loopback addresses, '
             'when auth is off on a loopback address (DNS rebinding); see docs/security.md'),
    Variable('PROXY_MAX_MESSAGES', '1000',
             'messages per prompt'),
    Variable('PROXY_BATCH_MAX_INPUTS', '1000',
             'inputs per batch'),
    Variable('PROXY_BATCH_DEFAULT_CONCURRENCY', '4',
             'batch items in flight when the request does not say'),
    Variable('PROXY_BATCH_MAX_CONCURRENCY', '16',
             "cap on a batch's max_concurrency"),
    Variable('PROXY_EMBED_MAX_INPUTS', '2048',
             'texts per embeddings request'),
    Variable('PROXY_SSE_HEARTBEAT', '15',
             'seconds between : ping comments on a stream'),
    Variable('PROXY_LOG_LEVEL', 'INFO',
             'DEBUG, INFO, WARNING or ERROR'),
    Variable('PROXY_LOG_FORMAT', 'json', 'json (one object per line, for log shippers) or text'),
    Variable('PROXY_CORS_ORIGINS', '(none: CORS off)',
             'comma-separated origins of web apps allowed to call /api/v1 and /v1 (https://app.example.com), '
             'or * alone for every origin (refused with PROXY_AUTH_DISABLED=true)'),
    Variable('PROXY_CORS_MAX_AGE', '600', "seconds a browser may cache a preflight's answer (0 to 86400)"),
    Variable('PROXY_PLAYGROUND', 'false', 'true serves the playground page at /playground/'),
    Variable('PROXY_CACHE_MAX_BYTES', '67108864',
             'bytes the in-memory answer cache may hold (least recently used entries go first); see docs/cache.md'),
    Variable('PROXY_CACHE_TTL', '3600', 'seconds a cached answer is served'),
    Variable('OTEL_EXPORTER_OTLP_ENDPOINT', '(none: tracing off)',
             'OTLP/HTTP collector base URL (http://host:4318); traces go to /v1/traces under it; see docs/tracing.md'),
    Variable('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', '(none)', 'the full traces URL, used as given instead'),
    Variable('OTEL_EXPORTER_OTLP_HEADERS', '(none)', 'key=value,... headers sent to the collector (e.g. an API key)'),
    Variable('OTEL_EXPORTER_OTLP_TRACES_HEADERS', '(none)', 'more headers, for the traces endpoint'),
    Variable('OTEL_EXPORTER_OTLP_TIMEOUT', '10000', 'milliseconds one export request may take, retries included'),
    Variable('OTEL_SERVICE_NAME', 'octomil-gateway', "the spans' service.name"),
    Variable('OTEL_RESOURCE_ATTRIBUTES', '(none)', 'key=value,... added to every span\'s resource'),
    Variable('OTEL_TRACES_SAMPLER', 'parentbased_always_on',
             'always_on, always_off, traceidratio, or parentbased_ of each (follow the caller\'s decision)'),
    Variable('OTEL_TRACES_SAMPLER_ARG', '1.0', 'the ratio of the traceidratio samplers (0 to 1)'),
    Variable('OTEL_BSP_SCHEDULE_DELAY', '5000', 'milliseconds between exports of the finished spans'),
    Variable('OTEL_BSP_MAX_QUEUE_SIZE', '2048',
             'finished spans waiting for export; more are dropped and counted (gateway_trace_spans_dropped_total)'),
    Variable('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', '512', 'spans per export, at most the queue size'),
    Variable('PROXY_TRACE_EXPORT', 'process',
             'where spans are encoded and exported: process, a supervised child process off the gateway\'s core, '
             'or thread, a thread of the gateway; see [tracing](tracing.md#cost)'),
    Variable('OTEL_TRACES_EXPORTER', 'otlp', 'none switches tracing off'),
    Variable('OTEL_SDK_DISABLED', 'false', 'true switches tracing off'),
    Variable('OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT', 'false',
             'true puts prompts and answers into spans (off: no prompt or answer text leaves in a trace)'),
)

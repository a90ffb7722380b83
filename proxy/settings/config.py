"""Settings: the only module that reads the environment.

Everything the gateway can be told is a field of `Settings`, read once at start-up by
`Settings.from_env()`. Invalid values stop start-up with one message that names every
bad variable; nothing is re-read per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from attrs import frozen
from environs import Env, EnvError
from yarl import URL

from proxy.settings.tracing import TracingConfig, tracing_config

_DISABLED_WORDS = frozenset({"", "off", "none", "disabled"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_REDIS_FAILURE_POLICIES = ("open", "closed")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_LOG_FORMATS = ("json", "text")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Chromium caps a preflight's cache at 2 hours and Firefox at 24; more would only mislead.
_CORS_MAX_AGE_LIMIT = 86400


class ConfigError(Exception):
    """The configuration cannot start a working gateway; the message says why."""


def _url_list(name: str, raw: str, problems: list[str]) -> tuple[URL, ...]:
    """Comma-separated http(s) URLs; none where the variable switches the backend off."""
    if raw.strip().lower() in _DISABLED_WORDS:
        return ()
    urls = []
    for part in raw.split(","):
        url = URL(part.strip())
        if url.scheme not in ("http", "https") or not url.host:
            shown = url.with_password("***") if url.password else url  # never echo a secret
            problems.append(f"{name}: {str(shown)!r} is not an http(s) URL with a host")
        else:
            urls.append(url)
    return tuple(urls)


def _cors_origins(raw: list[str], problems: list[str]) -> tuple[str, ...]:
    """PROXY_CORS_ORIGINS: origins as browsers send them (`scheme://host[:port]`), or `*` alone.

    Each is normalized the way a browser writes its Origin header (lower case, no default
    port, no trailing slash), since origins are compared as strings.
    """
    entries = [entry.strip() for entry in raw if entry.strip()]
    if "*" in entries:
        if len(entries) > 1:
            problems.append("PROXY_CORS_ORIGINS: '*' already allows every origin; use it alone or list origins")
        return ("*",)
    origins = []
    for entry in entries:
        origin = _origin(entry)
        if origin is None:
            problems.append(
                f"PROXY_CORS_ORIGINS: {_without_password(entry)!r} is not an origin: write scheme://host[:port] "
                "(http or https, no path, no wildcard), e.g. https://app.example.com"
            )
        elif origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _without_password(entry: str) -> str:
    try:
        url = URL(entry)
    except ValueError:
        return entry
    return str(url.with_password("***")) if url.password else entry


def _origin(entry: str) -> str | None:
    """`entry` as a browser's Origin header, or None when it is not an http(s) origin."""
    try:
        url = URL(entry)
        port = url.explicit_port
    except ValueError:
        return None
    plain = not (url.user or url.password or url.query_string or url.fragment or url.path not in ("", "/"))
    if url.scheme not in _DEFAULT_PORTS or not url.host or "*" in url.host or not plain or port == 0:
        return None
    host = url.raw_host or url.host
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    shown_port = "" if port in (None, _DEFAULT_PORTS[url.scheme]) else f":{port}"
    return f"{url.scheme}://{host.lower()}{shown_port}"


def _url_tuple(value: URL | str | Sequence[URL | str] | None) -> tuple[URL, ...]:
    """One URL, several, or none (the backend kind is off)."""
    if value is None:
        return ()
    if isinstance(value, URL | str):
        value = [value]
    return tuple(URL(str(v)) for v in value)


@frozen
class Timeouts:
    """Seconds allowed for each silent phase of an upstream call.

    Connect, headers, first token and the gap between two chunks bound silence, for a
    stream and a single-shot chat alike (a single-shot chat is read from the upstream as a
    stream and assembled). A stream is never capped as a whole; a single-shot call is,
    by `total` (PROXY_MAX_REQUEST_SECONDS), far above any of the silences.
    """

    connect: float
    headers: float
    first_token: float
    idle: float
    total: float
    # Replaces headers, first token and idle while an upstream loads the model first.
    cold_start: float


@frozen
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_tokens: tuple[str, ...] = attrs.field(default=(), repr=False)
    auth_disabled: bool = False

    # Upstreams, in fallback order: every Ollama URL, then every OpenAI-compatible one.
    # An empty tuple switches that kind off.
    ollama_base_url: tuple[URL, ...] = attrs.field(default=(URL("http://localhost:11434"),), converter=_url_tuple)
    openai_endpoint: tuple[URL, ...] = attrs.field(default=(), converter=_url_tuple)
    openai_api_key: str | None = attrs.field(default=None, repr=False)

    # LLM_BACKEND_TIMEOUT, and the per-phase timers that default to it (None).
    backend_timeout: float = 30.0
    connect_timeout: float = 5.0
    headers_timeout: float | None = None
    first_token_timeout: float | None = None
    # The first-token budget when Ollama must first load the model (not in /api/ps).
    cold_start_timeout: float = 120.0
    idle_timeout: float | None = None
    # The whole of one single-shot call to one upstream, however steadily it writes.
    max_request_seconds: float = 300.0
    health_timeout: float = 2.0

    # Load and failure handling.
    max_in_flight: int = 1024
    upstream_max_in_flight: int = 256
    queue_timeout: float = 2.0
    upstream_keepalive: float = 4.0
    breaker_failures: int = 3
    breaker_cooldown: float = 10.0
    shutdown_grace: float = 30.0

    max_body_bytes: int = 1 << 20
    # A model file uploaded through POST /api/blobs/{digest}, streamed to Ollama as it comes.
    ollama_blob_max_bytes: int = 256 << 30
    # Seconds a request body may take to arrive (408 after).
    body_timeout: float = 15.0
    # Host names, beyond localhost and the loopback addresses, that requests to a gateway on
    # loopback with auth off may name (DNS rebinding: see proxy/edge/request_guard.py).
    allowed_hosts: tuple[str, ...] = ()
    max_messages: int = 1000
    batch_max_inputs: int = 1000
    batch_max_concurrency: int = 16
    batch_default_concurrency: int = 4
    embed_max_inputs: int = 2048
    sse_heartbeat: float = 15.0

    log_level: str = "INFO"
    # json: one JSON object per line, for log shippers; text: for people at a terminal.
    log_format: str = "json"
    routes_file: str | None = None
    routes_reload: float = 2.0

    # Tenants and their limits (proxy/tenants/).
    keys_file: str | None = None
    keys_reload: float = 2.0
    # Completion tokens reserved against tokens_per_minute when a request sets no max_tokens.
    reserved_completion_tokens: int = 1024

    # The fleet's shared state (proxy/fleet/): limits, usage and backend cooldowns.
    redis_url: str | None = attrs.field(default=None, repr=False)  # may carry a password
    redis_failure: str = "open"  # "open": local limits while Redis is down; "closed": refuse
    redis_timeout: float = 0.5
    redis_prefix: str = "octomil-gateway"
    # Seconds a concurrency slot outlives its replica (renewed while the request runs).
    redis_lease: float = 15.0
    # Browser clients: origins allowed to call /api/v1 and /v1 ("*" only when set so),
    # how long a browser may cache a preflight, and the playground page.
    cors_origins: tuple[str, ...] = ()
    cors_max_age: int = 600
    playground: bool = False
    # OpenTelemetry traces (proxy/tracing/): None is off, the default.
    tracing: TracingConfig | None = None
    # The answer cache (proxy/cache/), used by the routes and keys that turn it on.
    cache_max_bytes: int = 64 << 20
    cache_ttl: float = 3600.0

    @property
    def timeouts(self) -> Timeouts:
        base = self.backend_timeout
        return Timeouts(
            connect=min(self.connect_timeout, base),
            headers=self.headers_timeout or base,
            first_token=self.first_token_timeout or base,
            idle=self.idle_timeout or base,
            total=self.max_request_seconds,
            cold_start=max(self.cold_start_timeout, self.first_token_timeout or base),
        )

    @classmethod
    def from_env(cls) -> Settings:
        """Read every setting from the environment, reporting all bad variables at once."""
        env = Env(eager=False, expand_vars=False)  # collect every bad value, then seal() reports them
        defaults = cls()
        raw_tokens: list[str] = env.list("PROXY_API_TOKENS", [])
        tokens = [t.strip() for t in raw_tokens if t.strip()]
        auth_disabled = env.bool("PROXY_AUTH_DISABLED", False)
        ollama = env.str("OLLAMA_BASE_URL", ",".join(map(str, defaults.ollama_base_url)))
        openai = env.str("OPENAI_API_ENDPOINT", "")
        openai_api_key = env.str("OPENAI_API_KEY", "")
        host = env.str("PROXY_HOST", defaults.host)
        log_level = env.str("PROXY_LOG_LEVEL", defaults.log_level).upper()
        log_format = env.str("PROXY_LOG_FORMAT", defaults.log_format).lower()
        routes_file = env.str("PROXY_ROUTES_FILE", "") or None
        keys_file = env.str("PROXY_KEYS_FILE", "") or None
        redis_url = env.str("PROXY_REDIS_URL", "") or None
        redis_failure = env.str("PROXY_REDIS_FAILURE", defaults.redis_failure).strip().lower()
        redis_prefix = env.str("PROXY_REDIS_PREFIX", defaults.redis_prefix).strip()
        raw_cors_origins: list[str] = env.list("PROXY_CORS_ORIGINS", [])
        raw_allowed_hosts: list[str] = env.list("PROXY_ALLOWED_HOSTS", [])
        cors_max_age = env.int("PROXY_CORS_MAX_AGE", defaults.cors_max_age)
        playground = env.bool("PROXY_PLAYGROUND", defaults.playground)
        otel = {name: text for name in _OTEL_VARIABLES if (text := env.str(name, ""))}
        numbers: dict[str, Any] = {
            field: getattr(env, kind)(variable, getattr(defaults, field)) for field, variable, kind in _NUMBERS
        }
        problems: list[str] = []
        try:
            env.seal()
        except EnvError as exc:
            messages = getattr(exc, "error_messages", {}) or {"environment": [str(exc)]}
            problems += [f"{name}: {' '.join(map(str, errors))}" for name, errors in messages.items()]
        ollama_urls = _url_list("OLLAMA_BASE_URL", ollama, problems)
        openai_urls = _url_list("OPENAI_API_ENDPOINT", openai, problems)
        problems += _safety_problems(tokens, auth_disabled, ollama_urls or openai_urls, keys_file)
        problems += _redis_problems(redis_url, redis_failure, redis_prefix)
        problems += _number_problems(numbers)
        cors_origins = _cors_origins(raw_cors_origins, problems)
        problems += _cors_problems(cors_origins, cors_max_age, auth_disabled)
        tracing = tracing_config(otel, problems)
        if log_level not in _LOG_LEVELS:
            problems.append(f"PROXY_LOG_LEVEL={log_level} is not one of {', '.join(_LOG_LEVELS)}")
        if log_format not in _LOG_FORMATS:
            problems.append(f"PROXY_LOG_FORMAT={log_format} is not one of {', '.join(_LOG_FORMATS)}")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            host=host,
            log_level=log_level,
            log_format=log_format,
            routes_file=routes_file,
            keys_file=keys_file,
            redis_url=redis_url,
            redis_failure=redis_failure,
            redis_prefix=redis_prefix,
            ollama_base_url=ollama_urls,
            openai_endpoint=openai_urls,
            openai_api_key=openai_api_key or None,
            api_tokens=tuple(tokens),
            auth_disabled=auth_disabled,
            cors_origins=cors_origins,
            cors_max_age=cors_max_age,
            allowed_hosts=tuple(h.strip().lower() for h in raw_allowed_hosts if h.strip()),
            playground=playground,
            tracing=tracing,
            **numbers,
        )


# (field, variable, environs parser) of every numeric setting; all must be > 0 when set.
_NUMBERS = (
    ("port", "PROXY_PORT", "int"),
    ("workers", "PROXY_WORKERS", "int"),
    ("backend_timeout", "LLM_BACKEND_TIMEOUT", "float"),
    ("connect_timeout", "PROXY_CONNECT_TIMEOUT", "float"),
    ("headers_timeout", "PROXY_HEADERS_TIMEOUT", "float"),
    ("first_token_timeout", "PROXY_FIRST_TOKEN_TIMEOUT", "float"),
    ("cold_start_timeout", "PROXY_COLD_START_TIMEOUT", "float"),
    ("idle_timeout", "PROXY_IDLE_TIMEOUT", "float"),
    ("max_request_seconds", "PROXY_MAX_REQUEST_SECONDS", "float"),
    ("health_timeout", "PROXY_HEALTH_TIMEOUT", "float"),
    ("max_in_flight", "PROXY_MAX_IN_FLIGHT", "int"),
    ("upstream_max_in_flight", "PROXY_UPSTREAM_MAX_IN_FLIGHT", "int"),
    ("queue_timeout", "PROXY_QUEUE_TIMEOUT", "float"),
    ("upstream_keepalive", "PROXY_UPSTREAM_KEEPALIVE", "float"),
    ("breaker_failures", "PROXY_BREAKER_FAILURES", "int"),
    ("breaker_cooldown", "PROXY_BREAKER_COOLDOWN", "float"),
    ("shutdown_grace", "PROXY_SHUTDOWN_GRACE", "float"),
    ("body_timeout", "PROXY_BODY_TIMEOUT", "float"),
    ("max_body_bytes", "PROXY_MAX_BODY_BYTES", "int"),
    ("ollama_blob_max_bytes", "PROXY_OLLAMA_BLOB_MAX_BYTES", "int"),
    ("max_messages", "PROXY_MAX_MESSAGES", "int"),
    ("batch_max_inputs", "PROXY_BATCH_MAX_INPUTS", "int"),
    ("batch_max_concurrency", "PROXY_BATCH_MAX_CONCURRENCY", "int"),
    ("batch_default_concurrency", "PROXY_BATCH_DEFAULT_CONCURRENCY", "int"),
    ("embed_max_inputs", "PROXY_EMBED_MAX_INPUTS", "int"),
    ("sse_heartbeat", "PROXY_SSE_HEARTBEAT", "float"),
    ("routes_reload", "PROXY_ROUTES_RELOAD", "float"),
    ("keys_reload", "PROXY_KEYS_RELOAD", "float"),
    ("reserved_completion_tokens", "PROXY_RESERVED_COMPLETION_TOKENS", "int"),
    ("redis_timeout", "PROXY_REDIS_TIMEOUT", "float"),
    ("redis_lease", "PROXY_REDIS_LEASE", "float"),
    ("cache_max_bytes", "PROXY_CACHE_MAX_BYTES", "int"),
    ("cache_ttl", "PROXY_CACHE_TTL", "float"),
)

# The OpenTelemetry SDK's standard variables this gateway honours (settings/tracing.py),
# and the gateway's own tracing setting.
_OTEL_VARIABLES = (
    "PROXY_TRACE_EXPORT",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
)


def _safety_problems(
    tokens: list[str], auth_disabled: bool, backends: tuple[URL, ...], keys_file: str | None,
) -> list[str]:
    """A gateway that would start open by accident, or with nothing behind it."""
    problems = []
    if not tokens and not keys_file and not auth_disabled:
        problems.append(
            "PROXY_API_TOKENS is empty: set one or more tokens, or a keys file (PROXY_KEYS_FILE), "
            "or PROXY_AUTH_DISABLED=true to run without authentication"
        )
    if not backends:
        problems.append("no backend: set OLLAMA_BASE_URL or OPENAI_API_ENDPOINT")
    return problems


def redis_display(url: str) -> str:
    """The Redis URL as it may be shown (health, logs, errors): scheme, host, port and
    database only. A password can sit in the user part or in the query (?password=, the
    only way for unix://), so neither is ever shown."""
    try:
        parsed = URL(url)
        port = f":{parsed.explicit_port}" if parsed.explicit_port else ""
    except ValueError:
        return "(unparseable)"
    host = parsed.host or ""
    return f"{parsed.scheme}://{f'[{host}]' if ':' in host else host}{port}{parsed.path}"


def _redis_problems(url: str | None, failure: str, prefix: str) -> list[str]:
    problems = []
    if url is not None:
        try:
            parsed = URL(url)
            valid = parsed.scheme in _REDIS_SCHEMES and (parsed.scheme == "unix" or bool(parsed.host))
            _ = parsed.explicit_port  # a port that is not a number raises here
        except ValueError:
            valid = False
        if not valid:
            problems.append(f"PROXY_REDIS_URL: {redis_display(url)!r} is not a redis://host, rediss://host "
                            "or unix:///path URL")
    if failure not in _REDIS_FAILURE_POLICIES:
        problems.append(f"PROXY_REDIS_FAILURE={failure} is not one of {', '.join(_REDIS_FAILURE_POLICIES)}")
    if not prefix or any(c.isspace() for c in prefix):
        problems.append("PROXY_REDIS_PREFIX must be a non-empty word without spaces")
    return problems


def keys_file_from_env() -> str | None:
    """PROXY_KEYS_FILE alone, for the `keys` command, which needs no backend or token."""
    return Env().str("PROXY_KEYS_FILE", "") or None


def _cors_problems(origins: tuple[str, ...], max_age: int | None, auth_disabled: bool) -> list[str]:
    problems = []
    if max_age is not None and not 0 <= max_age <= _CORS_MAX_AGE_LIMIT:
        problems.append(f"PROXY_CORS_MAX_AGE={max_age} must be between 0 and {_CORS_MAX_AGE_LIMIT} seconds")
    if origins == ("*",) and auth_disabled:
        problems.append(
            "PROXY_CORS_ORIGINS=* with PROXY_AUTH_DISABLED=true would let any web site use this gateway "
            "through its visitors' browsers; list the origins of your web apps instead"
        )
    return problems


def _number_problems(numbers: dict[str, Any]) -> list[str]:
    """Range problems of the numbers that parsed (None: unset or unparseable, reported already)."""
    problems = [
        f"{variable}={numbers[field]} must be greater than 0"
        for field, variable, _ in _NUMBERS
        if numbers[field] is not None and numbers[field] <= 0
    ]
    port = numbers["port"]
    if port is not None and port >= 65536:
        problems.append(f"PROXY_PORT={port} is not a TCP port")
    concurrency, cap = numbers["batch_default_concurrency"], numbers["batch_max_concurrency"]
    if concurrency is not None and cap is not None and concurrency > cap:
        problems.append("PROXY_BATCH_DEFAULT_CONCURRENCY exceeds PROXY_BATCH_MAX_CONCURRENCY")
    return problems

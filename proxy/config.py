"""Settings: the only module that reads the environment.

Everything the gateway can be told is a field of `Settings`, read once at start-up by
`Settings.from_env()`. Invalid values stop start-up with one message that names every
bad variable; nothing is re-read per request.
"""

from __future__ import annotations

import attrs
from attrs import frozen
from environs import Env, EnvError
from yarl import URL

_DISABLED_WORDS = frozenset({"", "off", "none", "disabled"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """The configuration cannot start a working gateway; the message says why."""


def _url_setting(name: str, raw: str, problems: list[str]) -> URL | None:
    """An http(s) URL, or None where the variable switches the backend off."""
    if raw.strip().lower() in _DISABLED_WORDS:
        return None
    url = URL(raw.strip())
    if url.scheme not in ("http", "https") or not url.host:
        problems.append(f"{name}={raw!r} is not an http(s) URL with a host")
        return None
    return url


@frozen
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    api_tokens: tuple[str, ...] = attrs.field(default=(), repr=False)
    auth_disabled: bool = False

    # Upstreams. None switches a backend off.
    ollama_base_url: URL | None = URL("http://localhost:11434")
    openai_endpoint: URL | None = None
    openai_api_key: str | None = attrs.field(default=None, repr=False)

    # LLM_BACKEND_TIMEOUT: the cap on a whole non-streaming call, and on each silent
    # phase of a stream (connect, headers, first token, gap between tokens). A stream
    # that keeps producing tokens is never cut by it.
    backend_timeout: float = 30.0
    connect_timeout: float = 5.0
    health_timeout: float = 2.0
    upstream_pool_size: int = 100

    max_body_bytes: int = 1 << 20
    max_messages: int = 1000
    batch_max_inputs: int = 1000
    batch_max_concurrency: int = 16
    batch_default_concurrency: int = 4
    embed_max_inputs: int = 2048
    sse_heartbeat: float = 15.0

    log_level: str = "INFO"

    @classmethod
    def from_env(cls) -> Settings:
        """Read every setting from the environment, reporting all bad variables at once."""
        env = Env(eager=False, expand_vars=False)  # collect every bad value, then seal() reports them
        d = cls()
        tokens: list[str] = env.list("PROXY_API_TOKENS", [])
        auth_disabled = env.bool("PROXY_AUTH_DISABLED", False)
        ollama = env.str("OLLAMA_BASE_URL", str(d.ollama_base_url))
        openai = env.str("OPENAI_API_ENDPOINT", "")
        openai_api_key = env.str("OPENAI_API_KEY", "")
        numbers = {
            "host": env.str("PROXY_HOST", d.host),
            "port": env.int("PROXY_PORT", d.port),
            "backend_timeout": env.float("LLM_BACKEND_TIMEOUT", d.backend_timeout),
            "connect_timeout": env.float("PROXY_CONNECT_TIMEOUT", d.connect_timeout),
            "health_timeout": env.float("PROXY_HEALTH_TIMEOUT", d.health_timeout),
            "upstream_pool_size": env.int("PROXY_UPSTREAM_POOL_SIZE", d.upstream_pool_size),
            "max_body_bytes": env.int("PROXY_MAX_BODY_BYTES", d.max_body_bytes),
            "max_messages": env.int("PROXY_MAX_MESSAGES", d.max_messages),
            "batch_max_inputs": env.int("PROXY_BATCH_MAX_INPUTS", d.batch_max_inputs),
            "batch_max_concurrency": env.int("PROXY_BATCH_MAX_CONCURRENCY", d.batch_max_concurrency),
            "batch_default_concurrency": env.int("PROXY_BATCH_DEFAULT_CONCURRENCY", d.batch_default_concurrency),
            "embed_max_inputs": env.int("PROXY_EMBED_MAX_INPUTS", d.embed_max_inputs),
            "sse_heartbeat": env.float("PROXY_SSE_HEARTBEAT", d.sse_heartbeat),
            "log_level": env.str("PROXY_LOG_LEVEL", d.log_level).upper(),
        }
        try:
            env.seal()
        except EnvError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from None

        problems: list[str] = []
        ollama_url = _url_setting("OLLAMA_BASE_URL", ollama, problems)
        openai_url = _url_setting("OPENAI_API_ENDPOINT", openai, problems)
        settings = cls(
            ollama_base_url=ollama_url,
            openai_endpoint=openai_url,
            openai_api_key=openai_api_key or None,
            api_tokens=tuple(t.strip() for t in tokens if t.strip()),
            auth_disabled=auth_disabled,
            **numbers,  # type: ignore[arg-type]
        )
        problems.extend(settings._problems())
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return settings

    def _problems(self) -> list[str]:
        problems = []
        if not self.api_tokens and not self.auth_disabled:
            problems.append(
                "PROXY_API_TOKENS is empty: set one or more tokens, "
                "or PROXY_AUTH_DISABLED=true to run without authentication"
            )
        if self.ollama_base_url is None and self.openai_endpoint is None:
            problems.append("no backend: set OLLAMA_BASE_URL or OPENAI_API_ENDPOINT")
        if not 0 < self.port < 65536:
            problems.append(f"PROXY_PORT={self.port} is not a TCP port")
        positive = {
            "LLM_BACKEND_TIMEOUT": self.backend_timeout,
            "PROXY_CONNECT_TIMEOUT": self.connect_timeout,
            "PROXY_HEALTH_TIMEOUT": self.health_timeout,
            "PROXY_UPSTREAM_POOL_SIZE": self.upstream_pool_size,
            "PROXY_MAX_BODY_BYTES": self.max_body_bytes,
            "PROXY_MAX_MESSAGES": self.max_messages,
            "PROXY_BATCH_MAX_INPUTS": self.batch_max_inputs,
            "PROXY_BATCH_MAX_CONCURRENCY": self.batch_max_concurrency,
            "PROXY_BATCH_DEFAULT_CONCURRENCY": self.batch_default_concurrency,
            "PROXY_EMBED_MAX_INPUTS": self.embed_max_inputs,
            "PROXY_SSE_HEARTBEAT": self.sse_heartbeat,
        }
        problems += [f"{name}={value} must be greater than 0" for name, value in positive.items() if value <= 0]
        if self.batch_default_concurrency > self.batch_max_concurrency:
            problems.append("PROXY_BATCH_DEFAULT_CONCURRENCY exceeds PROXY_BATCH_MAX_CONCURRENCY")
        if self.log_level not in _LOG_LEVELS:
            problems.append(f"PROXY_LOG_LEVEL={self.log_level} is not one of {', '.join(_LOG_LEVELS)}")
        return problems

"""The configured backends, built once from settings, in the order they are tried.

Each upstream URL is one backend with its own session: `OLLAMA_BASE_URL` may list several
Ollama servers, `OPENAI_API_ENDPOINT` several OpenAI-compatible ones. Backends of one kind
form a tier; tiers are tried in order (Ollama, then OpenAI-compatible).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from attrs import define, field, frozen
from yarl import URL

from proxy.backends import ollama, openai
from proxy.backends.base import Backend
from proxy.backends.upstream import ErrorClassifier, Upstream
from proxy.errors import UpstreamError
from proxy.llm import Probe
from proxy.settings.config import Settings


def _names(kind: str, count: int) -> list[str]:
    """"ollama" alone; "ollama-1", "ollama-2", ... when there are several."""
    return [kind] if count == 1 else [f"{kind}-{i}" for i in range(1, count + 1)]


def backend_names(settings: Settings) -> list[str]:
    """The names the backends built from `settings` will have, in fallback order."""
    return [*_names("ollama", len(settings.ollama_base_url)), *_names("openai", len(settings.openai_endpoint))]


# Seconds probe results are shared: health asked a thousand times a second still probes
# each upstream about once a second (each probe is a fresh connection).
PROBE_TTL = 1.0


@frozen
class BackendRegistry:
    tiers: Sequence[Sequence[Backend]]
    _probed: ProbeCache = field(factory=lambda: ProbeCache())

    @property
    def backends(self) -> list[Backend]:
        return [backend for tier in self.tiers for backend in tier]

    @classmethod
    def from_settings(cls, settings: Settings) -> BackendRegistry:
        def upstream(name: str, url: URL, classify: ErrorClassifier, headers: dict[str, str] | None = None) -> Upstream:
            return Upstream.open(
                name, url, classify, headers=headers,
                timeouts=settings.timeouts,
                pool_size=settings.upstream_max_in_flight,
                keepalive=settings.upstream_keepalive,
                probe_timeout=settings.health_timeout,
            )

        key = settings.openai_api_key
        openai_headers = {"Authorization": f"Bearer {key}"} if key else None
        ollama_tier: list[Backend] = [
            ollama.OllamaBackend(name=name, upstream=upstream(name, url, ollama.classify_error))
            for name, url in zip(_names("ollama", len(settings.ollama_base_url)), settings.ollama_base_url, strict=True)
        ]
        openai_tier: list[Backend] = [
            openai.OpenAIBackend(name=name, upstream=upstream(name, url, openai.classify_error, openai_headers))
            for name, url in zip(_names("openai", len(settings.openai_endpoint)), settings.openai_endpoint, strict=True)
        ]
        return cls(tiers=tuple(tier for tier in (ollama_tier, openai_tier) if tier))

    async def probe_all(self) -> list[tuple[Backend, Probe]]:
        """Every backend probed at once, each bounded by its own timeout; the results of
        the last PROBE_TTL seconds when there are some (callers at the same time share one
        round of probes)."""
        cache = self._probed
        async with cache.lock:
            if cache.results is None or time.monotonic() - cache.at >= PROBE_TTL:
                backends = self.backends
                probes = await asyncio.gather(*(backend.ping() for backend in backends))
                cache.results, cache.at = list(zip(backends, probes, strict=True)), time.monotonic()
            return cache.results

    async def list_models(self) -> dict[str, list[str] | str]:
        """What each backend reports having right now: model names, or the error."""

        async def one(backend: Backend) -> list[str] | str:
            try:
                return await backend.models()
            except UpstreamError as exc:
                return exc.message

        backends = self.backends
        answers = await asyncio.gather(*(one(backend) for backend in backends))
        return {backend.name: answer for backend, answer in zip(backends, answers, strict=True)}

    async def aclose(self) -> None:
        await asyncio.gather(*(backend.aclose() for backend in self.backends))


@define
class ProbeCache:
    lock: asyncio.Lock = field(factory=asyncio.Lock)
    results: list[tuple[Backend, Probe]] | None = None
    at: float = 0.0


@define
class ModelCatalog:
    """What each backend said it has, fetched at most once per `ttl` seconds."""

    registry: BackendRegistry
    ttl: float = 10.0
    _answers: dict[str, list[str] | str] | None = None
    _fetched: float = 0.0

    async def reported(self) -> dict[str, list[str] | str]:
        if self._answers is None or time.monotonic() - self._fetched > self.ttl:
            self._answers = await self.registry.list_models()
            self._fetched = time.monotonic()
        return self._answers

"""The configured backends, built once from settings, in the order they are tried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from attrs import frozen
from yarl import URL

from proxy.backends import ollama, openai
from proxy.backends.base import Backend, ErrorClassifier, Upstream
from proxy.config import Settings
from proxy.llm import Probe


@frozen
class BackendRegistry:
    backends: Sequence[Backend]

    @classmethod
    def from_settings(cls, settings: Settings) -> BackendRegistry:
        """Ollama first, then the OpenAI-compatible endpoint: the contract's order."""
        def upstream(name: str, url: URL, classify: ErrorClassifier, headers: dict[str, str] | None = None) -> Upstream:
            return Upstream.open(
                name, url, classify, headers=headers,
                pool_size=settings.upstream_pool_size,
                total_timeout=settings.backend_timeout,
                connect_timeout=settings.connect_timeout,
                probe_timeout=settings.health_timeout,
            )

        backends: list[Backend] = []
        if settings.ollama_base_url is not None:
            backends.append(ollama.OllamaBackend(
                name="ollama", upstream=upstream("ollama", settings.ollama_base_url, ollama.classify_error)))
        if settings.openai_endpoint is not None:
            key = settings.openai_api_key
            headers = {"Authorization": f"Bearer {key}"} if key else None
            backends.append(openai.OpenAIBackend(
                name="openai", upstream=upstream("openai", settings.openai_endpoint, openai.classify_error, headers)))
        return cls(backends=tuple(backends))

    async def probe_all(self) -> list[tuple[Backend, Probe]]:
        """Every backend probed at once; each probe is bounded by its own timeout."""
        probes = await asyncio.gather(*(backend.ping() for backend in self.backends))
        return list(zip(self.backends, probes, strict=True))

    async def aclose(self) -> None:
        await asyncio.gather(*(backend.aclose() for backend in self.backends))

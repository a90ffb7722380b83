"""The cache key: a digest of everything that changes an answer, and of who may read it.

Covered: the kind of call (embeddings, chat, chat as a stream), the public model and the
backend models it resolves to (a route change is a new key), the messages or inputs, every
sampling parameter, tools and response schema (when a request carries them), and the
scope: the key's name, or "shared" when the route shares its cache among keys. The parts
are serialized canonically (orjson, sorted keys) and hashed with SHA-256, so a key holds
no prompt text and two requests that differ in any part never share an entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import attrs
import orjson

from proxy.llm import ChatRequest, EmbedRequest

KEY_VERSION = 1  # bumped when what an entry holds changes, so old entries are never read


# (backend, model) pairs a route resolves the public model to; None when it has no route
# and every backend is asked under the public name.
Targets = Sequence[tuple[str, str]] | None


def chat_key(request: ChatRequest, targets: Targets, scope: str, *, stream: bool) -> str:
    return _digest({
        "kind": "chat-stream" if stream else "chat",
        "targets": targets,
        # The whole request as the backends get it: model, messages, every parameter, and
        # whatever field it grows (tools, a schema) without this function being changed.
        "request": attrs.asdict(request),
        "scope": scope,
    })


def embed_key(request: EmbedRequest, targets: Targets, scope: str) -> str:
    return _digest({
        "kind": "embeddings",
        "targets": targets,
        "request": attrs.asdict(request),
        "scope": scope,
    })


def _digest(parts: dict[str, Any]) -> str:
    canonical = orjson.dumps({"v": KEY_VERSION, **parts}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()

"""Whether an answer may come from, and go into, the cache; and whose entries it reads.

The cache is on for a request when its route says `cache = "private"` or `"shared"`, or
when its key says `cache = true` (and the route does not say `"off"`). Entries are the
key's own unless the route says `"shared"`.

Embeddings are always cacheable: the same input gives the same vector. A chat answer is
cacheable when it is deterministic by request: `temperature` 0 or a `seed`. A client can
ask for more or less with the `X-Gateway-Cache` header: `use` caches an answer that is
not deterministic (the client accepts a repeated answer), `skip` neither reads nor writes.
"""

from __future__ import annotations

from typing import Literal

from proxy.errors import InvalidInput
from proxy.llm import ChatRequest

REQUEST_HEADER = "X-Gateway-Cache"
RESPONSE_HEADER = "X-Gateway-Cache"
Asked = Literal["use", "skip", "auto"]


def asked(value: str | None) -> Asked:
    """The client's X-Gateway-Cache header; anything else is a 400 naming the header."""
    if value is None or value.strip() == "":
        return "auto"
    wanted = value.strip().lower()
    if wanted not in ("use", "skip"):
        raise InvalidInput(f"{REQUEST_HEADER}: {value[:40]!r} is not 'use' or 'skip' @ header {REQUEST_HEADER}")
    return "use" if wanted == "use" else "skip"


def scope(route_mode: str | None, key_name: str, key_cache: bool) -> str | None:
    """Whose entries this request reads and writes; None when the cache is off for it.

    `route_mode` is the route's `cache` (None: no route, or the route does not say);
    `key_cache` the key's own `cache` switch."""
    if route_mode == "off":
        return None
    if route_mode == "shared":
        return "shared"
    if route_mode == "private" or key_cache:
        return f"key:{key_name}"
    return None


def chat_cacheable(chat: ChatRequest, wanted: Asked) -> bool:
    if wanted != "auto":
        return wanted == "use"
    parameters = chat.parameters
    return parameters.temperature == 0 or parameters.seed is not None

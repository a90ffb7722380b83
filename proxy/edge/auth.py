"""Bearer auth: a refused token is a 401 before anything else happens; an accepted one names
the caller's tenant (TENANT) for surfaces, limits and the access log."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from aiohttp import web
from attrs import field, frozen

from proxy.edge.cors import is_preflight
from proxy.edge.request_keys import TENANT
from proxy.errors import Unauthorized
from proxy.tenants.keyring import KeyRing


@frozen
class BearerAuth:
    """Checks `Authorization: Bearer <token>` on paths under `protected_prefixes`, except the
    public ones (the API description holds nothing a caller could misuse), and puts the
    caller's tenant on the request (TENANT) for handlers, limits and the access log.

    With `open_preflights` (CORS is on), a browser's preflight passes without a token: the
    browser never sends credentials with one, and it only asks what the real request, which
    is checked, may carry. Any other OPTIONS request still needs a token.

    Keys and tokens are compared as SHA-256 digests (see KeyRing for why each comparison
    is safe against timing). A refused token is a 401 before anything else happens.
    """

    keys: KeyRing
    # /api covers the contract's /api/v1 and Ollama's API (/api/chat, /api/tags, ...).
    protected_prefixes: tuple[str, ...] = ("/api", "/v1")
    public_paths: frozenset[str] = frozenset({"/api/v1/openapi.json"})
    open_preflights: bool = False
    # Each prefix followed by "/", for the check on every request.
    _under: tuple[str, ...] = field(init=False, default=attrs.Factory(
        lambda self: tuple(prefix + "/" for prefix in self.protected_prefixes), takes_self=True))

    @classmethod
    def from_tokens(cls, tokens: Sequence[str], *, open_preflights: bool = False) -> BearerAuth:
        return cls(keys=KeyRing.load(None, tokens), open_preflights=open_preflights)

    def accepts(self, token: str) -> bool:
        return self.keys.identify(token) is not None

    def protects(self, path: str) -> bool:
        if path in self.public_paths:
            return False
        # Each prefix itself, or under it ("/v1/..."), but not a mere lookalike ("/v1x").
        return path.startswith(self._under) or path in self.protected_prefixes

    def check(self, request: web.Request) -> None:
        """Unauthorized, or the caller's tenant put on the request (a step of the edge, chain.py)."""
        if self.protects(request.path) and not (self.open_preflights and is_preflight(request)):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
            tenant = self.keys.identify(token.strip())
            if tenant is None:
                raise Unauthorized("invalid token")
            request[TENANT] = tenant

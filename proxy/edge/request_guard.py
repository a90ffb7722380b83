"""Requests refused before anything else happens: before auth, before a body is read.

- Two Authorization headers (400): which one counts is up to each server on the way, a
  classic way to have a proxy check one token and the gateway use another.
- A compressed request body (415, any Content-Encoding but identity): inflating it would
  cost the event loop and memory before the token is even checked, and a 1 MB body can
  inflate to 1 GB. aiohttp's own inflation is switched off (create_app), so such a body is
  never inflated anywhere; clients send JSON plainly (every official SDK does).
- With auth off or CORS configured, a request whose `Origin` is present and not allowed
  (403): a web page can make a browser send a "simple" cross-origin POST without a
  preflight, and with auth off nothing else would stop it. A page of the gateway's own
  origin (the playground) is allowed.
- With auth off on a loopback address, a `Host` that is not a loopback name or one of
  PROXY_ALLOWED_HOSTS (403): DNS rebinding points an attacker's name at 127.0.0.1, which
  makes its page same-origin with the gateway.
"""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web
from attrs import frozen
from yarl import URL

from proxy.errors import Forbidden, InvalidInput, UnsupportedMediaType

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The name of a Host header, without its port ("[::1]:8000" -> "::1")."""
    try:
        parsed = URL(f"http://{host_header}")
    except ValueError:
        return ""
    return (parsed.raw_host or "").lower()


@frozen
class RequestGuard:
    check_origin: bool
    allowed_origins: frozenset[str]
    any_origin: bool
    check_host: bool
    allowed_hosts: frozenset[str]

    @classmethod
    def configured(
        cls, *, host: str, auth_disabled: bool, cors_origins: tuple[str, ...], allowed_hosts: tuple[str, ...],
    ) -> RequestGuard:
        """From the settings: PROXY_HOST, PROXY_AUTH_DISABLED, PROXY_CORS_ORIGINS, PROXY_ALLOWED_HOSTS."""
        return cls(
            check_origin=auth_disabled or bool(cors_origins),
            allowed_origins=frozenset(cors_origins),
            any_origin="*" in cors_origins,
            check_host=auth_disabled and is_loopback(host),
            allowed_hosts=frozenset(allowed_hosts),
        )

    def check(self, request: web.Request) -> None:
        """A step of the edge (chain.py), before auth and before any body is read."""
        headers = request.headers
        if len(headers.getall(hdrs.AUTHORIZATION, ())) > 1:
            raise InvalidInput("more than one Authorization header; send exactly one")
        encoding = headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise UnsupportedMediaType(
                f"compressed request bodies are not accepted (Content-Encoding: {encoding[:40]}); "
                "send the body uncompressed")
        if self.check_host:
            self._check_host(request)
        if self.check_origin and hdrs.ORIGIN in headers:
            self._check_origin(request, headers[hdrs.ORIGIN])

    def _check_host(self, request: web.Request) -> None:
        name = _host_name(request.host)
        if not (is_loopback(name) or name in self.allowed_hosts):
            raise Forbidden(f"Host {name[:100]!r} is not a name of this gateway "
                            "(auth is off: add it to PROXY_ALLOWED_HOSTS if it is)")

    def _check_origin(self, request: web.Request, origin: str) -> None:
        if self.any_origin or origin in self.allowed_origins:
            return
        try:
            same_origin = URL(origin).raw_authority.lower() == request.host.lower()
        except ValueError:
            same_origin = False
        if not same_origin:
            raise Forbidden(f"requests from origin {origin[:200]!r} are not allowed (see PROXY_CORS_ORIGINS)")

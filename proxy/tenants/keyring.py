"""Who is calling: API keys as tenants, each with a name, its limits and the models it may use.

The keys file (PROXY_KEYS_FILE, TOML) stores each key as the SHA-256 digest of its secret,
never the secret itself:

    [keys.alice]
    hash = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    requests_per_minute = 60          # each limit is optional: absent means unlimited
    tokens_per_minute = 40000
    concurrent_requests = 4
    models = ["phi-4-mini"]           # absent: every model
    admin = false                     # true: may read GET /api/v1/admin/usage
    cache = false                     # true: the answer cache for this key (docs/cache.md)

Secrets are made by `python -m proxy keys add` (proxy/commands/keys.py): 32 random bytes. A
fast hash is right for them, unlike for passwords: a slow KDF makes guessing low-entropy
secrets expensive, and a 256-bit random secret cannot be guessed however fast the hash.

The plain tokens of PROXY_API_TOKENS keep working: each is the unlimited tenant `default`.
The file is reloaded when it changes and on SIGHUP; a change that does not check out is
logged and the keys in force stay. This module knows nothing of HTTP or of how limits are
enforced (proxy/tenants/limiter.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import pathlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import define, field, frozen

from proxy.background import every
from proxy.settings.toml_lines import line_of

log = logging.getLogger("proxy")

HASH_PREFIX = "sha256:"
# Names go into logs, metric labels and Redis keys: short and plain.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_TENANT = "default"  # the plain PROXY_API_TOKENS
ANONYMOUS_TENANT = "anonymous"  # every caller when auth is disabled
_RESERVED = frozenset({DEFAULT_TENANT, ANONYMOUS_TENANT})
LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "concurrent_requests")
_FIELDS = frozenset({"hash", *LIMIT_FIELDS, "models", "admin", "cache"})


class KeysError(Exception):
    """The keys file cannot be used; the message names the line and the field."""


@frozen
class Limits:
    """Per-key limits; None is unlimited. A minute is a sliding 60 s window."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_requests: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None and self.concurrent_requests is None

    def share(self, replicas: int) -> Limits:
        """This replica's part of each limit when the fleet cannot coordinate (rounded up,
        so a small limit never becomes 0)."""
        if replicas <= 1:
            return self

        def part(value: int | None) -> int | None:
            return None if value is None else max(1, math.ceil(value / replicas))

        return Limits(part(self.requests_per_minute), part(self.tokens_per_minute), part(self.concurrent_requests))

    def to_json(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in LIMIT_FIELDS}


@frozen
class Tenant:
    name: str
    limits: Limits = Limits()
    models: frozenset[str] | None = None  # None: every model
    admin: bool = False
    cache: bool = False  # the answer cache for every model (unless a route turns it off)

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models

    @property
    def operator(self) -> bool:
        """Sees operational details (health's URLs, errors, states): an admin key, or the
        plain PROXY_API_TOKENS, which whoever runs the gateway sets in its environment."""
        return self.admin or self.name == DEFAULT_TENANT


UNLIMITED_DEFAULT = Tenant(name=DEFAULT_TENANT)
ANONYMOUS = Tenant(name=ANONYMOUS_TENANT)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def stored_hash(secret: str) -> str:
    """The form a secret takes in the keys file."""
    return HASH_PREFIX + digest(secret).hex()


def parse_keys(text: str, source: str = "keys file") -> dict[bytes, Tenant]:
    """Every tenant of a keys file by the digest of its secret; KeysError names each problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KeysError(f"{source}: {exc}") from None
    problems: list[str] = []
    unknown = sorted(set(data) - {"keys"})
    if unknown:
        problems.append(f"line 1: unknown top-level field(s): {', '.join(unknown)} (expected [keys.NAME] tables)")
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        problems.append("line 1: keys must be a table of [keys.NAME] tables")
        keys = {}
    tenants: dict[bytes, Tenant] = {}
    for name, entry in keys.items():
        tenant, found, key = _tenant(name, entry)
        problems += [f"line {line_of(text, 'keys', name, field)}: keys.{name}{'.' + field if field else ''}: {what}"
                     for field, what in found]
        if key is not None and key in tenants:
            problems.append(f"line {line_of(text, 'keys', name, 'hash')}: keys.{name}.hash: "
                            f"the same secret as keys.{tenants[key].name}")
        elif tenant is not None and key is not None:
            tenants[key] = tenant
    if problems:
        raise KeysError("; ".join(f"{source}: {p}" for p in problems))
    return tenants


def _tenant(name: str, entry: Any) -> tuple[Tenant | None, list[tuple[str, str]], bytes | None]:
    """(the tenant, [(field, problem)], the digest) of one [keys.NAME] table."""
    if not isinstance(entry, dict):
        return None, [("", "expected a table")], None
    problems: list[tuple[str, str]] = []
    if not NAME_PATTERN.fullmatch(name):
        problems.append(("", "a name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"))
    elif name in _RESERVED:
        problems.append(("", f"the name {name!r} is reserved"))
    problems += [(field, "unknown field") for field in sorted(set(entry) - _FIELDS)]
    key = _digest_field(entry.get("hash"), problems)
    limits = {field: _limit_field(entry.get(field), field, problems) for field in LIMIT_FIELDS}
    models = entry.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models)
    ):
        problems.append(("models", "expected a list of model names"))
        models = None
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        problems.append(("admin", "expected true or false"))
    cache = entry.get("cache", False)
    if not isinstance(cache, bool):
        problems.append(("cache", "expected true or false"))
    if problems:
        return None, problems, key
    tenant = Tenant(name=name, limits=Limits(**limits), admin=admin, cache=cache,
                    models=None if models is None else frozenset(models))
    return tenant, [], key


def _digest_field(value: object, problems: list[tuple[str, str]]) -> bytes | None:
    if value is None:
        problems.append(("hash", "required field missing"))
        return None
    text = value if isinstance(value, str) else ""
    hexdigest = text.removeprefix(HASH_PREFIX)
    if not text.startswith(HASH_PREFIX) or not re.fullmatch(r"[0-9a-f]{64}", hexdigest):
        problems.append(("hash", "expected 'sha256:' and 64 lowercase hex digits (`python -m proxy keys add`)"))
        return None
    return bytes.fromhex(hexdigest)


def _limit_field(value: object, field: str, problems: list[tuple[str, str]]) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        problems.append((field, "expected a whole number of at least 1 (leave it out for no limit)"))
        return None
    return value


@define
class KeyRing:
    """The tenants in force: the keys file's, and the plain tokens as `default`.

    Looking a key up by the digest of what the client sent, in a dict, is safe against
    timing attacks even though the dict's comparison is not constant-time: what timing
    could reveal is how far the digest of the attacker's own guess matches a stored
    digest, and a digest says nothing about its secret (SHA-256 has no known preimage
    attack); the secrets themselves are 256 random bits, beyond guessing. Plain tokens
    may be weaker, so they are still compared with hmac.compare_digest, every one.
    """

    _plain: tuple[bytes, ...] = ()
    _by_digest: Mapping[bytes, Tenant] = field(factory=dict)
    path: pathlib.Path | None = None
    _stamp: tuple[int, int, int] | None = None

    @classmethod
    def load(cls, path: str | None, plain_tokens: Sequence[str] = ()) -> KeyRing:
        """The key ring at start-up; a keys file that does not check out raises KeysError."""
        ring = cls(plain=tuple(digest(t) for t in plain_tokens))
        if path is not None:
            ring.path = pathlib.Path(path)
            try:
                ring._stamp, text = _stamp_of(ring.path), ring.path.read_text(encoding="utf-8")
            except OSError as exc:
                raise KeysError(f"PROXY_KEYS_FILE={path}: {exc.strerror}") from None
            except UnicodeDecodeError as exc:
                raise KeysError(f"PROXY_KEYS_FILE={path}: not UTF-8 text ({exc})") from None
            ring._by_digest = parse_keys(text, source=str(ring.path))
        return ring

    @property
    def tenants(self) -> list[Tenant]:
        return sorted(self._by_digest.values(), key=lambda t: t.name)

    def identify(self, secret: str) -> Tenant | None:
        """The tenant whose key or token this is, or None."""
        offered = digest(secret)
        matched = False
        for known in self._plain:  # every one, without stopping early
            matched |= hmac.compare_digest(offered, known)
        tenant = self._by_digest.get(offered)
        if tenant is not None:
            return tenant
        return UNLIMITED_DEFAULT if matched else None

    def reload(self, *, only_if_changed: bool = False) -> bool:
        """Re-read the keys file; one that does not check out leaves the keys in force."""
        if self.path is None:
            return False
        try:
            stamp = _stamp_of(self.path)
            if only_if_changed and stamp == self._stamp:
                return False
            self._stamp = stamp
            tenants = parse_keys(self.path.read_text(encoding="utf-8"), source=str(self.path))
        # Not UTF-8 (saved in another encoding) too: raised out of the watching task, it
        # would end the watch for good, and no later fix of the file would be read.
        except (OSError, UnicodeDecodeError, KeysError) as exc:
            log.error("keys not reloaded, the previous keys stay in force: %s", exc)  # noqa: TRY400 (no traceback: the message says it all)
            return False
        self._by_digest = tenants
        log.info("keys reloaded from %s: %d keys", self.path, len(tenants))
        return True

    async def watch(self, interval: float) -> None:
        await every(interval, lambda: self.reload(only_if_changed=True))


def _stamp_of(path: pathlib.Path) -> tuple[int, int, int]:
    """Changes when the file is edited in place or replaced by a rename."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino

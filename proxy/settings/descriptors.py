"""File descriptors: the limit raised as far as the system allows, and what a configuration needs.

Every client connection, every upstream connection and every open file takes a descriptor.
At the limit, accepting a connection fails and legitimate clients cannot connect until
idle ones close. Many environments start a process with a soft limit of 1,024 and a far
higher hard limit (Docker since 25: 1,024 and 524,288): the soft limit is raised to the
hard one at start-up, as servers commonly do. Sizing: docs/security.md.
"""

from __future__ import annotations

import contextlib
import logging
import resource

from proxy.settings.config import Settings

log = logging.getLogger("proxy")

# Beyond connections: the listening socket, logs, the keys and routing files, Redis, the
# metrics files of several workers, the event loop's own.
OTHER_DESCRIPTORS = 64


def raise_descriptor_limit() -> int:
    """The soft limit raised to the hard limit when possible; the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # as it was; the check after says what it means
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def descriptors_needed(settings: Settings) -> int:
    """Descriptors one worker may use at its configured limits: each request in flight and
    as many waiting for a slot are a client connection; each upstream has a pool of
    PROXY_UPSTREAM_MAX_IN_FLIGHT connections and as many fresh ones (retries, probes)."""
    upstreams = len(settings.ollama_base_url) + len(settings.openai_endpoint)
    return 2 * settings.max_in_flight + 2 * upstreams * settings.upstream_max_in_flight + OTHER_DESCRIPTORS


def check_descriptor_limit(settings: Settings) -> int:
    """On start-up: raise the limit, say so when it is below what the settings need, and
    return how many client connections to accept (the limit less what upstreams and files
    may take, less the gate's headroom: edge/connection_gate.py)."""
    limit = raise_descriptor_limit()
    if limit == resource.RLIM_INFINITY:
        limit = 1 << 20
    needed = descriptors_needed(settings)
    if limit < needed:
        log.warning(
            "the descriptor limit (%d) is below the %d these settings may use (PROXY_MAX_IN_FLIGHT, "
            "PROXY_UPSTREAM_MAX_IN_FLIGHT): raise it (ulimit -n, LimitNOFILE=) or lower them; "
            "see docs/security.md", limit, needed)
    upstreams = len(settings.ollama_base_url) + len(settings.openai_endpoint)
    left = limit - 2 * upstreams * settings.upstream_max_in_flight - OTHER_DESCRIPTORS
    return max(MIN_CONNECTIONS, left * 15 // 16)


# Client connections accepted however small the limit (the gate refuses the rest).
MIN_CONNECTIONS = 64

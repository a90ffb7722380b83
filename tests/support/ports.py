"""Loopback ports, the one way tests find them."""

from __future__ import annotations

import socket

from yarl import URL


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's choice; free until someone binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def refused_url() -> URL:
    """A loopback URL where nothing listens: connections are refused at once."""
    return URL(f"http://127.0.0.1:{free_port()}")

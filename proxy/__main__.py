"""`python -m proxy`: read settings, build the app, serve. Nothing else happens here."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from proxy.access_log import AccessLogger
from proxy.app import create_app
from proxy.config import ConfigError, Settings


def _event_loop_factory() -> type[asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # optional: the gateway runs on asyncio's own loop too
        return None
    return uvloop.Loop


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"octomil-gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)
    loop_factory = _event_loop_factory()
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    print(f"octomil-gateway listening on http://{settings.host}:{settings.port}", flush=True)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log_class=AccessLogger,
        # A client that hangs up cancels its handler, and with it the upstream call.
        handler_cancellation=True,
        # After streams have drained (on_shutdown), single-shot calls get the same grace.
        shutdown_timeout=settings.shutdown_grace,
        print=None,
        loop=loop,
    )


if __name__ == "__main__":
    main()

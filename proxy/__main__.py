"""`python -m proxy`: read settings, build the app, serve. Nothing else happens here.

With PROXY_WORKERS above 1, that many processes serve the same port (SO_REUSEPORT: the
kernel spreads connections across them). Each worker has its own backends, breakers and
limits: PROXY_MAX_IN_FLIGHT and PROXY_UPSTREAM_MAX_IN_FLIGHT apply per worker.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import sys

from aiohttp import web

from proxy.access_log import AccessLogger
from proxy.app import create_app
from proxy.config import ConfigError, Settings


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # optional: the gateway runs on asyncio's own loop too
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=settings.workers > 1,
        backlog=2048,
        access_log_class=AccessLogger,
        # A client that hangs up cancels its handler, and with it the upstream call.
        handler_cancellation=True,
        # After streams have drained (on_shutdown), single-shot calls get the same grace.
        shutdown_timeout=settings.shutdown_grace,
        print=None,
        loop=_new_event_loop(),
    )


def serve_workers(settings: Settings) -> None:
    """Start the workers, pass SIGTERM/SIGINT on to them, and wait for all of them."""
    workers = [multiprocessing.Process(target=serve, args=(settings,), daemon=False) for _ in range(settings.workers)]
    for worker in workers:
        worker.start()

    def forward(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                worker.terminate() if signum == signal.SIGTERM else worker.kill()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, lambda *_: forward(signal.SIGTERM, None))
    for worker in workers:
        worker.join()
    raise SystemExit(max((w.exitcode or 0) for w in workers))


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"octomil-gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"octomil-gateway listening on http://{settings.host}:{settings.port} "
          f"({settings.workers} worker{'s' if settings.workers > 1 else ''})", flush=True)
    if settings.workers > 1:
        serve_workers(settings)
    else:
        serve(settings)


if __name__ == "__main__":
    main()

"""`python -m proxy`: read settings, build the app, serve. Nothing else happens here.

With PROXY_WORKERS above 1, that many processes serve the same port (SO_REUSEPORT: the
kernel spreads connections across them). Each worker has its own backends, breakers and
limits: PROXY_MAX_IN_FLIGHT and PROXY_UPSTREAM_MAX_IN_FLIGHT apply per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import glob
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence

from aiohttp import web
from attrs import frozen

from proxy.background import every, running
from proxy.commands import parser as cli
from proxy.edge.connection_gate import gated_loop
from proxy.observability import logs
from proxy.settings.config import Settings
from proxy.settings.descriptors import check_descriptor_limit


def _new_event_loop(connection_limit: int) -> asyncio.AbstractEventLoop:
    """uvloop when installed, else asyncio's own; its servers take at most about
    `connection_limit` client connections (edge/connection_gate.py)."""
    loop_class: type[asyncio.AbstractEventLoop]
    try:
        import uvloop
    except ImportError:  # optional: the gateway runs on asyncio's own loop too
        loop_class = type(asyncio.new_event_loop())
    else:
        loop_class = uvloop.Loop
    return gated_loop(loop_class, connection_limit)


async def _tune_gc(_app: web.Application) -> None:
    """on_startup: fewer, cheaper garbage collections on the request path.

    Every request allocates a few hundred short-lived objects, so CPython's default of a
    collection every 700 allocations runs several per request; 20,000 measured 17% more
    requests/s (docs/PERFORMANCE.md). Freezing moves everything built at start-up out of
    the collector's way for good.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


# How often a full collection runs anyway (see _sweep_cycles).
GC_SWEEP_INTERVAL = 10.0


async def _sweep_cycles(_app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: a full collection every GC_SWEEP_INTERVAL seconds.

    With the threshold above, a collection waits for 20,000 container objects to survive;
    a reference cycle of a few objects that holds a large buffer (an exception's traceback
    holding a body being read) would wait for thousands of its kind, and with the memory
    they hold the process could die first. The code breaks the cycles it knows of; this
    bounds how long any other can hold memory. With the start-up heap frozen, a sweep
    only visits what was made since: a few milliseconds.
    """

    async with running(every(GC_SWEEP_INTERVAL, gc.collect)):
        yield


async def _reload_keys_on_sighup(app: web.Application) -> None:
    """on_startup: SIGHUP re-reads the keys file at once (it is also re-read when it changes).

    Until now SIGHUP was ignored (see main): a change signalled while this process was
    starting is caught by the check right after the handler is in place.
    """
    from proxy.app_keys import KEYS  # after PROMETHEUS_MULTIPROC_DIR, as in serve()

    keys = app[KEYS]
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: keys.reload())
    keys.reload(only_if_changed=True)


async def _ignore_repeated_sigterm(_app: web.Application) -> None:
    """on_shutdown: once draining has begun, a second SIGTERM must not cut it short.

    It comes when a service manager signals the whole process group (systemd's default
    KillMode, `kill -TERM -<pgid>`) and the supervisor passes its own on to each worker.
    SIGINT still stops at once when pressed again; SIGKILL always does.
    """
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: None)


def serve(settings: Settings) -> None:
    # Imported here, not at the top: prometheus-client picks its storage (per process or
    # multiprocess files) when first imported, which must follow PROMETHEUS_MULTIPROC_DIR.
    from proxy.app import create_app
    from proxy.edge.access_log import AccessLogger

    logs.configure(settings.log_level, settings.log_format)
    connection_limit = check_descriptor_limit(settings)
    app = create_app(settings)
    app.on_startup.append(_tune_gc)  # the process's business, not the app's: tests keep the defaults
    app.cleanup_ctx.append(_sweep_cycles)
    app.on_startup.append(_reload_keys_on_sighup)
    app.on_shutdown.insert(0, _ignore_repeated_sigterm)
    web.run_app(
        app,
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
        loop=_new_event_loop(connection_limit),
    )


def _worker(settings: Settings) -> None:
    _die_with_parent()
    serve(settings)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker if the parent dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def serve_workers(settings: Settings) -> None:
    """Start the workers and supervise them: a signal is passed on to all of them, and
    a worker that dies on its own takes the others down with it, so that the service
    manager (systemd, Kubernetes) sees the failure and restarts the whole gateway."""
    metrics_dir = _metrics_dir()
    workers = [multiprocessing.Process(target=_worker, args=(settings,)) for _ in range(settings.workers)]
    for worker in workers:
        worker.start()
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: each worker drains gracefully

    def reload_keys(_signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload_keys)
    alive = {worker.sentinel: worker for worker in workers}
    failed = False
    while alive:
        for sentinel in multiprocessing.connection.wait(list(alive)):
            worker = alive.pop(sentinel)  # type: ignore[arg-type]  # wait() returns the sentinels given
            worker.join()
            _forget_worker_metrics(worker.pid)
            if not stopping:
                print(f"octomil-gateway: worker {worker.pid} exited with {worker.exitcode}; stopping",
                      file=sys.stderr, flush=True)
                failed = True
                stop(signal.SIGTERM, None)
    if metrics_dir.owned:
        shutil.rmtree(metrics_dir.path, ignore_errors=True)
    raise SystemExit(1 if failed else 0)


@frozen
class _MetricsDir:
    path: str
    owned: bool


def _metrics_dir() -> _MetricsDir:
    """Where the workers' metrics live, so that a scrape of any worker counts them all.

    A directory given in PROMETHEUS_MULTIPROC_DIR is emptied first (stale files from an
    earlier run would be added in); otherwise a private one is made and removed at exit.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.unlink(stale)
        return _MetricsDir(given, owned=False)
    path = tempfile.mkdtemp(prefix="octomil-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by the workers
    return _MetricsDir(path, owned=True)


def _forget_worker_metrics(pid: int | None) -> None:
    """A dead worker's gauges (in flight, backend state) must stop counting."""
    from prometheus_client import multiprocess

    if pid is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # unannotated in the library


def _refuse_a_taken_port(host: str, port: int) -> None:
    """Exit at once, in one line, when the address cannot be listened on.

    Checked before anything starts (workers, "listening on"), and without SO_REUSEPORT,
    so that another program on the port is never joined or mistaken for this gateway.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc.strerror}"
            print(f"octomil-gateway: {host}:{port} {reason}; choose another with PROXY_PORT (or --port)",
                  file=sys.stderr, flush=True)
            raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> None:
    # SIGHUP means "reload the keys", but its default action ends the process: ignored
    # (by the workers too, which inherit it) until each process's handler is in place.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    args, settings = cli.configure(argv)
    if args.command == "check":
        raise SystemExit(cli.check(settings, allow_degraded=args.allow_degraded, as_json=args.json))
    _refuse_a_taken_port(settings.host, settings.port)
    print(f"octomil-gateway listening on http://{settings.host}:{settings.port} "
          f"({settings.workers} worker{'s' if settings.workers > 1 else ''})", flush=True)
    if settings.workers > 1:
        serve_workers(settings)
    else:
        serve(settings)


if __name__ == "__main__":
    main()

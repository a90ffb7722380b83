"""Debian's real nginx for tests: a shipped site file from deploy/, with only its ports and
paths substituted, run under a minimal main configuration that keeps everything nginx
writes (pid, logs, temporary files) in the test's directory."""

from __future__ import annotations

import asyncio
import getpass
import os
import pathlib
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest

NGINX = pathlib.Path("/usr/sbin/nginx")

MAIN_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
{user}
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    {http_extra}
    include {dir}/site.conf;
}}
"""


def shipped_with(path: pathlib.Path, substitutions: Mapping[str, str]) -> str:
    """The shipped file with each substitution made, each asserted to occur exactly once,
    so the test runs the file as shipped and notices when it changes under it."""
    text = path.read_text()
    for old, new in substitutions.items():
        assert text.count(old) == 1, f"{path.name} should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def require_nginx() -> None:
    """Fail, not skip: CI installs nginx (.ci/run), so its absence is a broken setup."""
    if not NGINX.exists():
        pytest.fail(f"{NGINX} is missing: install Debian's nginx package (.ci/run does)")


@asynccontextmanager
async def running_nginx(directory: pathlib.Path, site: str, port: int, http_extra: str = "") -> AsyncIterator[None]:
    """nginx serving `site` (which listens on `port`) until the block ends."""
    require_nginx()
    (directory / "site.conf").write_text(site)
    # As root, nginx's workers would run as nobody, who cannot write to the test's directory.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(MAIN_CONF.format(dir=directory, user=user, http_extra=http_extra))
    process = await asyncio.create_subprocess_exec(
        str(NGINX), "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(10):
            while not await _accepts(port):
                if process.returncode is not None:
                    assert process.stderr is not None
                    pytest.fail(f"nginx did not start: {(await process.stderr.read()).decode()}")
                await asyncio.sleep(0.02)
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True

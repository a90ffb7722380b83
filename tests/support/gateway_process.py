"""The real gateway process (`python -m proxy`), the one way tests start it.

For what only the process does: its command line, start-up refusals, signals, workers,
its own listening socket, a real nginx or a fleet in front of it. Every run gets an
environment built from scratch (PATH plus the variables under test), so nothing from the
developer's shell leaks in.

- `run_to_exit` / `run_to_exit_async`: a command that is expected to end (`--help`,
  `check`, `keys`, a refused configuration).
- `spawn`: a gateway that serves, not yet waited for (a test may signal it while it starts).
- `running_gateway`: a gateway that serves, once its readiness path answers; stopped on leaving.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from attrs import define

from tests.support.paths import ROOT
from tests.support.ports import free_port

# Seconds: a gateway that wrongly starts, or will not stop, fails the test instead of hanging the suite.
RUN_TIMEOUT = 30


def gateway_env(**variables: str) -> dict[str, str]:
    """An environment from scratch: PATH and the variables given."""
    return {"PATH": os.environ["PATH"], **variables}


def run_to_exit(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """`python -m proxy ARGS` to its end, with its output."""
    return subprocess.run([sys.executable, "-m", "proxy", *args], cwd=ROOT, env=gateway_env(**variables),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)


async def run_to_exit_async(*args: str, **variables: str) -> tuple[int, str, str]:
    """The same, for a command that talks to upstreams served by the test's own event loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", *args, cwd=ROOT, env=gateway_env(**variables),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(RUN_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def assert_refused_naming(
    result: subprocess.CompletedProcess[str], *variables: str, secrets: tuple[str, ...] = (),
) -> str:
    """The one stderr line of a refused start (exit 2), after checking that it names every
    one of `variables` and shows none of `secrets`."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("octomil-gateway: invalid configuration")
    for variable in variables:
        assert variable in line
    assert "Traceback" not in result.stderr
    for secret in secrets:
        assert secret not in result.stderr
    return line


@define
class GatewayProcess:
    process: asyncio.subprocess.Process
    port: int
    # Where stdout and stderr go, when the test reads them afterwards.
    stdout_path: os.PathLike[str] | None = None
    stderr_path: os.PathLike[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def output(self) -> str:
        return self.stdout() + self.stderr()

    async def ready(self, path: str = "/readyz") -> None:
        """Until `path` answers 200; fails at once if the process exits first."""
        async with asyncio.timeout(RUN_TIMEOUT):
            while await probe(self.base + path) != 200:
                assert self.process.returncode is None, (
                    f"the gateway exited at start-up with status {self.process.returncode}: {self.output()[-2000:]}")
                await asyncio.sleep(0.05)

    async def get_json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.base + path, headers=headers) as response:
            return response.status, await response.json()

    async def terminate(self) -> int:
        """SIGTERM (a graceful stop), then its exit status; SIGKILL if it will not stop."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), RUN_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


def _read(path: os.PathLike[str] | None) -> str:
    assert path is not None, "this gateway's output was not kept"
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


async def spawn(
    env: dict[str, str], *, port: int | None = None, log_dir: os.PathLike[str] | None = None,
    stdout_pipe: bool = False, cwd: os.PathLike[str] | None = None,
) -> GatewayProcess:
    """`python -m proxy` on a free loopback port (or `port`), not yet waited for, in the
    repository (or `cwd`, where relative paths in `env` then resolve).

    With `log_dir`, its stdout and stderr are kept there (appended: a restarted replica
    keeps one log); with `stdout_pipe`, stdout can be read as it comes.
    """
    port = port or free_port()
    stdout_path = stderr_path = None
    stdout: Any = asyncio.subprocess.PIPE if stdout_pipe else asyncio.subprocess.DEVNULL
    stderr: Any = asyncio.subprocess.DEVNULL
    if log_dir is not None:
        stdout_path, stderr_path = os.path.join(log_dir, "stdout"), os.path.join(log_dir, "stderr")
        stdout = stdout if stdout_pipe else open(stdout_path, "ab")  # noqa: SIM115, ASYNC230 (a local file for the child; closed below)
        stderr = open(stderr_path, "ab")  # noqa: SIM115, ASYNC230 (a local file for the child; closed below)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", cwd=cwd or ROOT, env=gateway_env(**{**env, "PROXY_PORT": str(port)}),
            stdout=stdout, stderr=stderr)
    finally:
        for stream in (stdout, stderr):
            if hasattr(stream, "close"):
                stream.close()  # the child has its own copy
    return GatewayProcess(process=process, port=port, stdout_path=None if stdout_pipe else stdout_path,
                          stderr_path=stderr_path)


@asynccontextmanager
async def running_gateway(
    env: dict[str, str], *, ready: str = "/readyz", log_dir: os.PathLike[str] | None = None, graceful: bool = False,
) -> AsyncIterator[GatewayProcess]:
    """A serving gateway once `ready` answers 200. On leaving: SIGTERM and its exit awaited
    with `graceful` (the test then reads `returncode`), else SIGKILL."""
    gateway = await spawn(env, log_dir=log_dir)
    try:
        await gateway.ready(ready)
        yield gateway
    finally:
        if graceful:
            await gateway.terminate()
        else:
            await gateway.kill()


async def probe(url: str) -> int | None:
    """The status of a GET on a fresh connection, or None when the connection is refused."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status
    except aiohttp.ClientConnectionError:
        return None


async def probe_until(url: str, done: Any) -> int | None:
    """Probe `url` until `done(status)`; the caller bounds the wait."""
    while True:
        status = await probe(url)
        if done(status):
            return status
        await asyncio.sleep(0.05)

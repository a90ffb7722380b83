"""Starting the pieces of a benchmark: emulator and gateway processes pinned to cores, and
the external load generators (wrk for closed-loop load, hey for a fixed request rate)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from attrs import frozen

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
CORES = os.cpu_count() or 1
# The gateway gets core 0; upstream emulator and load generator share the last core.
GATEWAY_CORE, LOAD_CORE = "0", str(CORES - 1)
FD_LIMIT = 65536


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(FD_LIMIT, hard) if hard != resource.RLIM_INFINITY else FD_LIMIT
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}: {process.args}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {limit} s")


@contextlib.contextmanager
def pinned(args: list[str], core: str, env: dict[str, str] | None = None, port: int | None = None,
           cwd: pathlib.Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    """A process pinned to `core` (where taskset exists), stopped on exit; run in `cwd` (the
    repository: `python -m proxy` runs the gateway of the tree it is started in)."""
    command = ["taskset", "-c", core, *args] if _has_taskset() and CORES > 1 else args
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **(env or {})}, preexec_fn=raise_fd_limit,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        if port is not None:
            wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _has_taskset() -> bool:
    return subprocess.run(["which", "taskset"], capture_output=True).returncode == 0


@contextlib.contextmanager
def emulator(*, tokens: int = 32, token_delay: float = 0.0, latency: float = 0.0) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "bench.emulator", "--port", str(port), "--tokens", str(tokens),
            "--token-delay", str(token_delay), "--latency", str(latency)]
    with pinned(args, LOAD_CORE, port=port):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def gateway(upstream: str, kind: str = "ollama", core: str = GATEWAY_CORE, tree: pathlib.Path = ROOT,
            **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        "PROXY_PORT": str(port), "PROXY_API_TOKENS": TOKEN, "PROXY_LOG_LEVEL": "WARNING",
        "OLLAMA_BASE_URL": upstream if kind == "ollama" else "off",
        "OPENAI_API_ENDPOINT": f"{upstream}/v1" if kind == "openai" else "",
        **settings,
    }
    with pinned([sys.executable, "-m", "proxy"], core, env=env, port=port, cwd=tree) as process:
        yield f"http://127.0.0.1:{port}", process


@contextlib.contextmanager
def floor(upstream: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """bench/floor.py, the least aiohttp pass-through, on the gateway's core."""
    port = free_port()
    args = [sys.executable, "-m", "bench.floor", "--port", str(port), "--upstream", upstream, "--token", TOKEN]
    with pinned(args, GATEWAY_CORE, port=port) as process:
        yield f"http://127.0.0.1:{port}", process


def children(pid: int) -> list[int]:
    """The direct child processes of `pid` (a supervisor's workers)."""
    found: list[int] = []
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@frozen
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, body: str, *, connections: int, seconds: int, headers: dict[str, str], core: str) -> LoadResult:
    """Closed-loop load: `connections` each send a request as soon as the last is answered."""
    lines = ['wrk.method = "POST"', f"wrk.body = [[{body}]]", 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    if _has_taskset() and CORES > 1:
        command = ["taskset", "-c", core, *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    if "Latency Distribution" not in out:
        raise RuntimeError(f"wrk measured nothing:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # The distribution lines only ("     99%    1.07ms"), not a "71.99%" in the thread stats.
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(errors_match.group(1)) if errors_match else 0
    errors += sum(map(int, socket_errors.groups())) if socket_errors else 0
    return LoadResult(rps=rps, p50_ms=p50, p99_ms=p99, errors=errors)


def hey(url: str, body: str, *, rate: int, seconds: int, headers: dict[str, str], core: str) -> LoadResult:
    """Load at `rate` requests/s from hey: one worker per 250 requests/s, each throttled.

    hey's workers tick together, so the load comes in bursts of `workers` requests; fewer,
    faster workers keep those bursts small (a worker falls behind only if one request
    takes longer than 4 ms, which the frontier reports as saturation).
    """
    per_worker = min(rate, 250)
    workers = max(1, rate // per_worker)
    command = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(per_worker), "-m", "POST",
               "-T", "application/json", "-d", body]
    for k, v in headers.items():
        command += ["-H", f"{k}: {v}"]
    command.append(url)
    if _has_taskset() and CORES > 1:
        command = ["taskset", "-c", core, *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = float(re.search(r"50% in ([\d.]+) secs", out).group(1)) * 1000  # type: ignore[union-attr]
    p99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1000  # type: ignore[union-attr]
    statuses = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    errors = sum(int(n) for code, n in statuses.items() if code != "200")
    return LoadResult(rps=rps, p50_ms=p50, p99_ms=p99, errors=errors)

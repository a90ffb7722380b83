"""Python function calls per single-shot request, gateway beside floor: a count, not a time.

    python -m bench.calls [--requests 2000] [--top N] [--set NAME=VALUE ...]

On a machine shared with other work every timing moves by tens of percent from run to
run; the number of Python function calls a request makes does not. Each server runs in a
process of its own with cProfile switched on by SIGUSR1 after a warm-up and off by
SIGUSR2 after exactly `--requests` requests (hey -n, 8 connections); the count is split
by the package the called function lives in. cProfile's own overhead makes its times
meaningless here, so only the counts are printed. `--top N` also lists the gateway's N
most-called functions (calls per request), which is where to look for a change's effect.
`--set` passes settings to the gateway, `{upstream}` standing for the emulator's URL (e.g.
--set OTEL_EXPORTER_OTLP_ENDPOINT={upstream} to count a traced request's calls).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType

from bench.processes import LOAD_CORE, ROOT, TOKEN, emulator, free_port, wait_for_port

BODY = '{"model_id":"bench","input_data":"hi","parameters":{"max_tokens":8}}'
GROUPS = (("/proxy/", "gateway code"), ("/bench/floor.py", "floor code"), ("/aiohttp/", "aiohttp"),
          ("/asyncio/", "asyncio"), ("/prometheus_client/", "prometheus-client"), ("/cattrs", "cattrs"),
          ("/attr", "attrs"), ("/yarl/", "yarl"), ("/multidict/", "multidict"))


def serve_profiled(module: str, output: str) -> None:
    """Run `module` as __main__ (argv already set), profiling between SIGUSR1 and SIGUSR2."""
    profiler = cProfile.Profile()

    def start(_signal: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(output + ".part")
        os.replace(output + ".part", output)  # whole, or not there yet

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    runpy.run_module(module, run_name="__main__")


def _hey(url: str, requests: int) -> None:
    subprocess.run(["taskset", "-c", LOAD_CORE, "hey", "-n", str(requests), "-c", "8", "-m", "POST",
                    "-T", "application/json", "-d", BODY, "-H", f"Authorization: Bearer {TOKEN}", url],
                   check=True, capture_output=True)


def count(kind: str, upstream: str, requests: int, *, path: str = "/api/v1/inference",
          drive: Callable[[str, int], None] = _hey, warm_up: int = 200, settings: dict[str, str] | None = None,
          ) -> Counter[tuple[str, int, str]]:
    """Calls of each function (file, line, name) over exactly `requests` calls of
    `drive(url, requests)` to `kind`, after `warm_up` calls (`drive` sends them to `path`);
    `settings` are the gateway's extra settings (`{upstream}` for the emulator's URL)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "stats")
        if kind == "gateway":
            module, argv = "proxy", ["proxy"]
        else:
            module, argv = "bench.floor", ["floor", "--port", str(port), "--upstream", upstream, "--token", TOKEN]
        code = f"import sys; sys.argv = {argv!r}; import bench.calls as c; c.serve_profiled({module!r}, {output!r})"
        env = {**os.environ, "PROXY_PORT": str(port), "PROXY_API_TOKENS": TOKEN, "PROXY_LOG_LEVEL": "WARNING",
               "OLLAMA_BASE_URL": upstream, "OPENAI_API_ENDPOINT": ""}
        if kind == "gateway":
            env.update({name: value.format(upstream=upstream) for name, value in (settings or {}).items()})
        server = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", code], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, server)
            url = f"http://127.0.0.1:{port}{path}"
            drive(url, warm_up)  # warm-up: pools, caches, first-call imports
            server.send_signal(signal.SIGUSR1)
            drive(url, requests)
            server.send_signal(signal.SIGUSR2)
            while not os.path.exists(output):
                time.sleep(0.05)
            stats = pstats.Stats(output)
        finally:
            server.terminate()
            server.wait()
    return Counter({function: total_calls
                    for function, (_, total_calls, _, _, _) in stats.stats.items()})  # type: ignore[attr-defined]


def by_group(functions: Counter[tuple[str, int, str]]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for (filename, _, _), total_calls in functions.items():
        group = next((name for fragment, name in GROUPS if fragment in filename), "other (stdlib, C)")
        calls[group] += total_calls
    return calls


def _where(function: tuple[str, int, str]) -> str:
    filename, line, name = function
    for marker in ("/site-packages/", "/python3.11/", str(ROOT) + "/"):
        filename = filename.split(marker)[-1]
    return f"{name} ({filename}:{line})" if line else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=0, metavar="N", help="also list the gateway's N most-called")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a gateway setting")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    with emulator() as upstream:
        functions = {kind: count(kind, upstream, args.requests, settings=settings) for kind in ("floor", "gateway")}
    counted = {kind: by_group(calls) for kind, calls in functions.items()}
    groups = sorted(set(counted["gateway"]) | set(counted["floor"]), key=lambda g: -counted["gateway"][g])
    print("| functions called in | gateway calls/request | floor calls/request |\n|---|---|---|")
    for group in groups:
        print(f"| {group} | {counted['gateway'][group] / args.requests:.0f} | "
              f"{counted['floor'][group] / args.requests:.0f} |")
    print(f"| all | {sum(counted['gateway'].values()) / args.requests:.0f} | "
          f"{sum(counted['floor'].values()) / args.requests:.0f} |")
    if args.top:
        print("\n| gateway function | calls/request |\n|---|---|")
        for function, calls in functions["gateway"].most_common(args.top):
            print(f"| {_where(function)} | {calls / args.requests:.2f} |")


if __name__ == "__main__":
    main()

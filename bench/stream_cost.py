"""What relaying a stream costs per token: the gateway beside the floor, on the same streams.

    python -m bench.stream_cost [--rounds 5] [--streams 20] [--tokens 1000] [--calls 10] [--top 25]
                                [--set NAME=VALUE ...]

Two measures that hold up on a machine shared with other work:

- CPU per stream: the server process's utime + stime (/proc/PID/stat) over `--streams`
  streams of `--tokens` tokens each (no delay between tokens), asked one after the other
  by a client pinned with the emulator to the last core. Rounds alternate floor and
  gateway, so both see the same neighbours; the median round is reported, with the
  tokens/s each round saw (noisy: shown, not relied on).
- Calls per token: each server runs under cProfile switched on by SIGUSR1 after 3 warm-up
  streams and off by SIGUSR2 after exactly `--calls` more (bench/calls.py); the function
  calls counted (a coroutine's or generator's resumption counts as a call) are divided
  by the tokens relayed. A count does not move with the machine's load. `--top` lists the
  gateway's own functions called most often per token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp

from bench import calls, clients, profile
from bench.processes import LOAD_CORE, cpu_seconds, emulator, floor, gateway

PATH = "/api/v1/inference/stream"


async def _streams(url: str, count: int, tokens: int) -> float:
    """`count` streams of `tokens` tokens asked one after the other; tokens/s over them all."""
    _, body, is_token, headers = clients.gateway_stream_request("", tokens)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            timing = await clients.time_stream(session, url, body, is_token, headers)
            if timing.tokens != tokens:
                raise RuntimeError(f"{timing.tokens} tokens relayed of {tokens}")
    return count * tokens / (time.perf_counter() - started)


def cpu_rounds(rounds: int, streams: int, tokens: int, settings: dict[str, str]) -> None:
    per_stream: dict[str, list[float]] = {"floor": [], "gateway": []}
    with emulator(tokens=tokens) as upstream, floor(upstream) as (floor_url, floor_process), \
            gateway(upstream, **settings) as (gateway_url, gateway_process):
        servers = {"floor": (floor_url + PATH, floor_process.pid),
                   "gateway": (gateway_url + PATH, gateway_process.pid)}
        for url, _ in servers.values():
            asyncio.run(_streams(url, 3, tokens))  # warm-up: pools, caches, first-call imports
        for round_ in range(rounds):
            for name, (url, pid) in servers.items():
                before = cpu_seconds(pid)
                rate = asyncio.run(_streams(url, streams, tokens))
                ms = (cpu_seconds(pid) - before) / streams * 1000
                per_stream[name].append(ms)
                print(f"round {round_ + 1} {name:<8} {ms:6.1f} ms CPU per {tokens:,}-token stream "
                      f"({ms * 1000 / tokens:.1f} µs/token) at {rate:,.0f} tokens/s", flush=True)
    floor_ms, gateway_ms = (statistics.median(per_stream[n]) for n in ("floor", "gateway"))
    print(f"\nmedian CPU per {tokens:,}-token stream: floor {floor_ms:.1f} ms, gateway {gateway_ms:.1f} ms "
          f"(gateway/floor {gateway_ms / floor_ms:.2f}: where both are CPU-bound, the gateway relays "
          f"{floor_ms / gateway_ms:.0%} of the floor's tokens/s)")


async def _streams_for(url: str, seconds: float, tokens: int) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        await _streams(url, 1, tokens)


def sampled(seconds: int, tokens: int, settings: dict[str, str]) -> None:
    """py-spy's shares by stage (bench/profile.py's stages) of each server under the streams."""
    profiles: dict[str, dict[str, float]] = {}
    with emulator(tokens=tokens) as upstream:
        for name, server in (("floor", floor(upstream)), ("gateway", gateway(upstream, **settings))):
            with server as (url, process), tempfile.TemporaryDirectory() as tmp:
                asyncio.run(_streams(url + PATH, 3, tokens))
                out = pathlib.Path(tmp) / "raw.txt"
                spy = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "py-spy"), "record", "--format",
                                        "raw", "--rate", "500", "--duration", str(seconds), "--nonblocking",
                                        "--pid", str(process.pid), "--output", str(out)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                asyncio.run(_streams_for(url + PATH, seconds + 1, tokens))
                spy.wait()
                if keep := os.environ.get("BENCH_PROFILE_KEEP"):
                    pathlib.Path(f"{keep}-{name}.txt").write_text(out.read_text())
                profiles[name] = profile.shares(out)
    stages = sorted(set(profiles["gateway"]) | set(profiles["floor"]), key=lambda s: -profiles["gateway"].get(s, 0))
    print("\n| stage | gateway share | floor share |\n|---|---|---|")
    for stage in stages:
        print(f"| {stage} | {profiles['gateway'].get(stage, 0.0):.1%} | {profiles['floor'].get(stage, 0.0):.1%} |")


def call_counts(streams: int, tokens: int, top: int) -> None:
    def drive(url: str, count: int) -> None:
        asyncio.run(_streams(url, count, tokens))

    relayed = streams * tokens
    with emulator(tokens=tokens) as upstream:
        stats = {kind: calls.count(kind, upstream, streams, path=PATH, drive=drive, warm_up=3)
                 for kind in ("floor", "gateway")}
    counted = {kind: calls.by_group(functions) for kind, functions in stats.items()}
    groups = sorted(set(counted["gateway"]) | set(counted["floor"]), key=lambda g: -counted["gateway"][g])
    print("\n| functions called in | gateway calls/token | floor calls/token |\n|---|---|---|")
    for group in groups:
        print(f"| {group} | {counted['gateway'][group] / relayed:.1f} | {counted['floor'][group] / relayed:.1f} |")
    print(f"| all | {sum(counted['gateway'].values()) / relayed:.1f} | "
          f"{sum(counted['floor'].values()) / relayed:.1f} |")
    if top:
        own = [(n / relayed, f"{os.path.relpath(file, calls.ROOT)}:{line} {function}")
               for (file, line, function), n in stats["gateway"].items() if "/proxy/" in file]
        print("\nthe gateway's own functions called most often (calls per token):")
        for per_token, where in sorted(own, reverse=True)[:top]:
            print(f"  {per_token:5.2f}  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=20, help="streams per CPU round")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=10, metavar="STREAMS", help="streams profiled (0: none)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--py-spy", type=int, default=0, metavar="SECONDS", help="also sample each for SECONDS")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CORE)})  # the client beside the emulator, off the server's core
    settings = dict(item.split("=", 1) for item in args.set)
    if args.rounds:
        cpu_rounds(args.rounds, args.streams, args.tokens, settings)
    if args.py_spy:
        sampled(args.py_spy, args.tokens, settings)
    if args.calls:
        call_counts(args.calls, args.tokens, args.top)


if __name__ == "__main__":
    main()

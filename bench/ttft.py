"""Time to first token: direct, the floor and the gateway taking turns, stream by stream.

    python -m bench.ttft [--streams 300] [--tokens 3] [--token-delay 0.002] [--set NAME=VALUE ...]
                         [--baseline TREE]

A stream's time to first token is its set-up: the request path, opening the upstream
stream, the first read and the response's start. One stream is asked at a time from a
client pinned with the emulator to the last core, the servers on core 0; direct, the floor
and the gateway take turns (one stream each, then again, the order turning by one every
round), so a neighbour's load on a shared machine lands on all alike. The tokens after the
first come `--token-delay` apart, so the first token is alone in its read, as from a real
model. Printed: each one's p50 and p90, and each server's p50 minus direct's (the time it
adds). `--baseline` adds the gateway of another checkout (a clone of main, say) to the
turns, for a before and after measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib

import aiohttp

from bench import clients
from bench.processes import LOAD_CORE, emulator, floor, gateway


async def _taking_turns(targets: dict[str, clients.Target], runs: int) -> dict[str, list[clients.StreamTiming]]:
    """`runs` streams from each target, one from each in turn, the order turning by one
    every round: whoever goes first or right after another server is no one in particular."""
    timed: dict[str, list[clients.StreamTiming]] = {name: [] for name in targets}
    names = list(targets)
    async with aiohttp.ClientSession() as session:
        for url, body, is_token, headers in targets.values():
            await clients.time_stream(session, url, body, is_token, headers)  # warm the connections
        for round_ in range(runs):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                url, body, is_token, headers = targets[name]
                timed[name].append(await clients.time_stream(session, url, body, is_token, headers))
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=300, help="streams timed per server")
    parser.add_argument("--tokens", type=int, default=3)
    parser.add_argument("--token-delay", type=float, default=0.002, metavar="SECONDS")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a gateway setting")
    parser.add_argument("--baseline", type=pathlib.Path, metavar="TREE", help="also the gateway of this checkout")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CORE)})  # the client beside the emulator, off the servers' core
    settings = dict(item.split("=", 1) for item in args.set)
    with contextlib.ExitStack() as running:
        upstream = running.enter_context(emulator(tokens=args.tokens, token_delay=args.token_delay))
        targets = {"direct": clients.direct_stream_request(upstream, args.tokens)}
        servers = {"floor": floor(upstream), "gateway": gateway(upstream, **settings)}
        if args.baseline is not None:
            servers["baseline"] = gateway(upstream, tree=args.baseline.resolve(), **settings)
        for name, server in servers.items():
            url, _ = running.enter_context(server)
            targets[name] = clients.gateway_stream_request(url, args.tokens)
        timed = asyncio.run(_taking_turns(targets, args.streams))
    ttft = {name: [t.ttft_ms for t in timings] for name, timings in timed.items()}
    p = clients.percentile
    print(f"time to first token, {args.streams} streams each of {args.tokens} tokens, taking turns (ms)")
    print("| | p50 | p90 | p50 added to direct's |\n|---|---|---|---|")
    for name, values in ttft.items():
        added = "" if name == "direct" else f"{p(values, 50) - p(ttft['direct'], 50):.3f}"
        print(f"| {name} | {p(values, 50):.3f} | {p(values, 90):.3f} | {added} |")
    for name in ttft.keys() - {"direct", "floor"}:
        print(f"\n{name}: p50 over the floor's {p(ttft[name], 50) - p(ttft['floor'], 50):.3f} ms")


if __name__ == "__main__":
    main()

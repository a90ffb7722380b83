"""Time to first token: direct, the floor and the gateway taking turns, stream by stream.

    python -m bench.ttft [--streams 300] [--tokens 3] [--token-delay 0.002] [--set NAME=VALUE ...]

A stream's time to first token is its set-up: the request path, opening the upstream
stream, the first read and the response's start. One stream is asked at a time from a
client pinned with the emulator to the last core, the servers on core 0; direct, the floor
and the gateway take turns (one stream each, then again), so a neighbour's load on a shared
machine lands on all three alike. The tokens after the first come `--token-delay` apart, so
the first token is alone in its read, as from a real model. Printed: each one's p50 and p90,
and the floor's and the gateway's p50 minus direct's (the time each adds).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from bench import clients
from bench.processes import LOAD_CORE, emulator, floor, gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=300, help="streams timed per server")
    parser.add_argument("--tokens", type=int, default=3)
    parser.add_argument("--token-delay", type=float, default=0.002, metavar="SECONDS")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a gateway setting")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CORE)})  # the client beside the emulator, off the servers' core
    settings = dict(item.split("=", 1) for item in args.set)
    with emulator(tokens=args.tokens, token_delay=args.token_delay) as upstream, \
            floor(upstream) as (floor_url, _), gateway(upstream, **settings) as (gateway_url, _):
        timed = asyncio.run(clients.alternating_timings({
            "direct": clients.direct_stream_request(upstream, args.tokens),
            "floor": clients.gateway_stream_request(floor_url, args.tokens),
            "gateway": clients.gateway_stream_request(gateway_url, args.tokens)}, args.streams))
    ttft = {name: [t.ttft_ms for t in timings] for name, timings in timed.items()}
    p = clients.percentile
    print(f"time to first token, {args.streams} streams each of {args.tokens} tokens, taking turns (ms)")
    print("| | p50 | p90 | p50 added to direct's |\n|---|---|---|---|")
    for name, values in ttft.items():
        added = "" if name == "direct" else f"{p(values, 50) - p(ttft['direct'], 50):.3f}"
        print(f"| {name} | {p(values, 50):.3f} | {p(values, 90):.3f} | {added} |")
    print(f"\nthe gateway's p50 over the floor's: {p(ttft['gateway'], 50) - p(ttft['floor'], 50):.3f} ms")


if __name__ == "__main__":
    main()

"""Where a single-shot request's CPU goes: the gateway beside the floor, on the same load.

    python -m bench.profile [--rounds 3] [--seconds 5] [--connections 64] [--py-spy SECONDS]
                            [--set NAME=VALUE ...]

Two measures, both chosen because they hold up on a machine shared with other work
(where requests/s moves by tens of percent from run to run):

- CPU per request: the process's utime + stime (/proc/PID/stat) over a wrk run, divided
  by the requests wrk completed. Rounds alternate floor and gateway, so both see the same
  neighbours; the median round is reported. Time the hypervisor or a neighbour takes from
  the core is not counted, but a busier cache still shows as a few percent.
- Where it goes: py-spy samples of the gateway (and of the floor) under the same load,
  each sample given to a stage by its innermost frame in the application's own code
  (proxy/ or bench/floor.py), so a stage includes the library work it asks for (the
  aiohttp client under `upstream call`, aiohttp's json response under `response`).
  Samples with no application frame are aiohttp's server, the client's callbacks, or
  the event loop.

`--set` passes settings to the gateway (e.g. --set PROXY_LOG_LEVEL=INFO); `{upstream}` stands
for the emulator's URL (--set OTEL_EXPORTER_OTLP_ENDPOINT={upstream} traces to it).
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from bench.processes import LOAD_CORE, TOKEN, cpu_seconds, emulator, floor, gateway, wrk

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = '{"model_id":"bench","input_data":"hi","parameters":{"max_tokens":8}}'
PATH = "/api/v1/inference"

# (module path fragment, function or "", stage): the first match, innermost frame first, wins.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("proxy/edge/context.py", "add_context_headers", "signals: context headers"),
    ("proxy/edge/cors.py", "", "signals: CORS"),
    ("aiohttp_cors/", "", "signals: CORS"),
    ("proxy/edge/admission.py", "", "middlewares: admission"),
    ("proxy/edge/observe.py", "", "metrics"),
    ("proxy/observability/metrics.py", "", "metrics"),
    ("prometheus_client/", "", "metrics"),
    ("proxy/edge/access_log.py", "", "access log"),
    ("proxy/observability/logs.py", "", "access log"),
    ("proxy/tracing/span_queue.py", "", "tracing: export queue thread"),
    ("proxy/tracing/exporter_process.py", "", "tracing: export queue thread"),
    ("proxy/tracing/otlp_export.py", "", "tracing: export queue thread"),
    ("proxy/tracing/otlp_encoding.py", "", "tracing: export queue thread"),
    ("proxy/tracing/", "", "tracing: request path"),
    ("proxy/edge/tracing.py", "", "tracing: request path"),
    ("proxy/serving/attempt_spans.py", "", "tracing: request path"),
    ("proxy/edge/", "", "middlewares: context, errors, auth"),
    ("proxy/tenants/keyring.py", "", "middlewares: context, errors, auth"),
    ("proxy/surfaces/request_bodies.py", "", "validation"),
    ("proxy/surfaces/octomil/request_models.py", "", "validation"),
    ("proxy/surfaces/json_io.py", "json_response", "response building"),
    ("proxy/surfaces/json_io.py", "", "validation"),
    ("proxy/serving/router.py", "", "routing and breakers"),
    ("proxy/serving/model_table.py", "", "routing and breakers"),
    ("proxy/backends/breaker.py", "", "routing and breakers"),
    ("proxy/tenants/", "", "limiter"),
    ("proxy/serving/", "", "serving layer (service, outcome, drain)"),
    ("proxy/backends/upstream.py", "", "upstream call"),
    ("proxy/backends/assemble.py", "", "single shot assembled from the stream"),
    ("proxy/backends/", "", "backend translation"),
    ("proxy/surfaces/sse_relay.py", "", "SSE relay"),
    ("proxy/surfaces/event_stream.py", "", "SSE relay"),
    ("proxy/surfaces/", "", "handler"),
    ("proxy/", "", "other gateway code"),
    ("bench/floor.py", "", "handler"),
)
_ENTRY_POINTS = frozenset({"main", "<module>", "run", "serve"})
_CLIENT = ("aiohttp/client", "aiohttp/connector.py", "aiohttp/streams.py")


def stage_of(stack: list[str]) -> str:
    """`stack` root first, each frame "function (path:line)"."""
    for depth in range(len(stack) - 1, -1, -1):
        frame = stack[depth]
        function, _, where = frame.partition(" (")
        if function in _ENTRY_POINTS or "proxy/__main__.py" in where:
            continue  # the process's start: under every sample
        for fragment, name, stage in STAGES:
            if fragment in where and (not name or name == function):
                inner = " ".join(stack[depth + 1:])
                if stage == "handler" and any(c in inner for c in _CLIENT):
                    return "upstream call"  # the floor's (or a handler's) own client call
                if stage == "handler" and "web_response.py" in inner:
                    return "response building"
                return stage
    whole = " ".join(stack)
    if "span_queue.py" in whole:  # the queue's thread inside the exporter's HTTP client (PROXY_TRACE_EXPORT=thread)
        return "tracing: export queue thread"
    if "aiohttp/web_" in whole or "aiohttp/http_" in whole or "_http_parser" in whole:
        return "aiohttp server (no app frame)"
    if any(c in whole for c in _CLIENT) or "client_proto" in whole:
        return "aiohttp client callbacks (no app frame)"
    if "asyncio/" in whole or "uvloop" in whole or stack[-1].startswith("run_app "):
        return "event loop (uvloop: I/O and callbacks in C)"
    return "other"


def shares(raw: pathlib.Path) -> dict[str, float]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            # Thread name and process first; the frames after.
            counts[stage_of(stack.split(";"))] += int(count)
    total = sum(counts.values()) or 1
    return {stage: n / total for stage, n in counts.most_common()}


def cpu_per_request(url: str, pid: int, connections: int, seconds: int) -> tuple[float, float]:
    """(µs of the process's CPU per request, requests/s) over one wrk run."""
    before = cpu_seconds(pid)
    load = wrk(url + PATH, BODY, connections=connections, seconds=seconds, headers=AUTH, core=LOAD_CORE)
    if load.errors:  # a timeout of wrk's own on an overloaded machine: said, not fatal
        print(f"  ({load.errors} errors or wrk timeouts from {url})")
    return (cpu_seconds(pid) - before) / (load.rps * seconds) * 1e6, load.rps


def sample(url: str, pid: int, connections: int, seconds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "raw.txt"
        spy = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
                                "--rate", "500", "--duration", str(seconds), "--nonblocking", "--pid", str(pid),
                                "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wrk(url + PATH, BODY, connections=connections, seconds=seconds + 1, headers=AUTH, core=LOAD_CORE)
        spy.wait()
        if keep := os.environ.get("BENCH_PROFILE_KEEP"):
            pathlib.Path(f"{keep}-{pid}.txt").write_text(out.read_text())
        return shares(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--py-spy", type=int, default=0, metavar="SECONDS", help="also sample each for SECONDS")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--stream", action="store_true", help="the stream endpoint instead (8 tokens, no delay)")
    args = parser.parse_args()
    global PATH
    if args.stream:
        PATH = "/api/v1/inference/stream"
    settings = dict(item.split("=", 1) for item in args.set)
    per_request: dict[str, list[float]] = {"floor": [], "gateway": []}
    with emulator() as upstream, floor(upstream) as (floor_url, floor_process), \
            gateway(upstream, **{k: v.format(upstream=upstream) for k, v in settings.items()}) as (
                gateway_url, gateway_process):
        servers = {"floor": (floor_url, floor_process.pid), "gateway": (gateway_url, gateway_process.pid)}
        for url, _ in servers.values():
            wrk(url + PATH, BODY, connections=8, seconds=2, headers=AUTH, core=LOAD_CORE)  # warm-up
        for round_ in range(args.rounds):
            for name, (url, pid) in servers.items():
                us, rps = cpu_per_request(url, pid, args.connections, args.seconds)
                per_request[name].append(us)
                print(f"round {round_ + 1} {name:<8} {us:6.0f} µs CPU/request at {rps:,.0f} requests/s", flush=True)
        floor_us, gateway_us = (statistics.median(per_request[n]) for n in ("floor", "gateway"))
        print(f"\nmedian CPU per request: floor {floor_us:.0f} µs, gateway {gateway_us:.0f} µs "
              f"(gateway/floor {gateway_us / floor_us:.2f}: where both are CPU-bound, the gateway "
              f"serves {floor_us / gateway_us:.0%} of the floor's requests/s)")
        if args.py_spy:
            profiles = {name: sample(url, pid, args.connections, args.py_spy)
                        for name, (url, pid) in servers.items()}
            stages = sorted(set(profiles["gateway"]) | set(profiles["floor"]),
                            key=lambda s: -profiles["gateway"].get(s, 0))
            print("\n| stage | gateway share | gateway µs/request | floor share | floor µs/request |")
            print("|---|---|---|---|---|")
            for stage in stages:
                g, f = profiles["gateway"].get(stage, 0.0), profiles["floor"].get(stage, 0.0)
                print(f"| {stage} | {g:.1%} | {g * gateway_us:.0f} | {f:.1%} | {f * floor_us:.0f} |")


if __name__ == "__main__":
    main()

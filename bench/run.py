"""`make bench`: every scenario of docs/PERFORMANCE.md, each beside its direct-to-upstream baseline
and, for single shots and streams, beside the floor (bench/floor.py: the least an aiohttp
pass-through can do on the same stack) measured in the same run.

    python -m bench.run [--quick] [--soak SECONDS] [--json results.json]

Pinning (where taskset and two cores exist): the gateway runs on core 0; the upstream
emulator and the load generator share the last core. A direct baseline runs the load
generator on core 0 instead (the gateway is not running then), so direct and gateway
figures use the same two cores. Every figure is printed in one table at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from bench import clients, paired
from bench.processes import (
    CORES,
    GATEWAY_CORE,
    LOAD_CORE,
    ROOT,
    TOKEN,
    LoadResult,
    children,
    cpu_seconds,
    emulator,
    floor,
    gateway,
    hey,
    raise_fd_limit,
    rss_kib,
    wrk,
)
from proxy.tenants.keyring import stored_hash

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GATEWAY_BODY = '{"model_id":"bench","input_data":"hi","parameters":{"max_tokens":8}}'
DIRECT = {
    "ollama": ("/api/chat", '{"model":"bench","messages":[{"role":"user","content":"hi"}],"stream":false,'
                            '"options":{"num_predict":8}}'),
    "openai": ("/v1/chat/completions", '{"model":"bench","messages":[{"role":"user","content":"hi"}],'
                                       '"stream":false,"max_tokens":8}'),
}

Row = tuple[str, str, str, str, str]  # scenario, metric, gateway, floor, direct / target
rows: list[Row] = []
results: dict[str, Any] = {}


def row(scenario: str, metric: str, gateway_value: str, baseline: str, floor_value: str = "") -> None:
    rows.append((scenario, metric, gateway_value, floor_value, baseline))
    print(f"  {scenario:<28} {metric:<34} {gateway_value:>14} {floor_value:>14}   {baseline}", flush=True)


def shares(gateway_value: float, floor_value: float, direct_value: float) -> str:
    return f"{gateway_value / direct_value:.0%} of direct, {gateway_value / floor_value:.0%} of floor"


def keys_file(directory: pathlib.Path) -> str:
    """A keys file with the bench's token as a key with per-key limits far above the load
    (so they are checked and counted on every request, never reached)."""
    path = directory / "keys.toml"
    path.write_text(f'[keys."bench"]\nhash = "{stored_hash(TOKEN)}"\nrequests_per_minute = 100000000\n'
                    "tokens_per_minute = 10000000000\nconcurrent_requests = 100000\n")
    return str(path)


def _inference_load(url: str, seconds: int) -> dict[int, LoadResult]:
    wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=8, seconds=2, headers=AUTH, core=LOAD_CORE)  # warm-up
    return {c: wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=c, seconds=seconds, headers=AUTH,
                   core=LOAD_CORE) for c in (1, 64)}


def single_shot(seconds: int) -> None:
    """Direct, the floor and the gateway against one emulator, one after the other. The
    floor speaks the contract to Ollama only: beside the OpenAI-wire gateway it is the
    same floor, measured again in that run."""
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"": {}, " + keys file, limits": {"PROXY_KEYS_FILE": keys_file(pathlib.Path(tmp)),
                                                     "PROXY_API_TOKENS": ""},
                    " + access log": {"PROXY_LOG_LEVEL": "INFO"}}
        for kind, (path, body) in DIRECT.items():
            with emulator() as upstream:
                direct = {c: wrk(upstream + path, body, connections=c, seconds=seconds, headers={},
                                 core=GATEWAY_CORE) for c in (1, 64)}
                with floor(upstream) as (url, _):
                    least = _inference_load(url, seconds)
                for variant, settings in variants.items():
                    if variant and kind != "ollama":
                        continue
                    with gateway(upstream, kind, **settings) as (url, _):
                        via = _inference_load(url, seconds)
                    _single_shot_rows(f"single shot {kind}{variant}", direct, least, via)


def _single_shot_rows(scenario: str, direct: dict[int, LoadResult], least: dict[int, LoadResult],
                      via: dict[int, LoadResult]) -> None:
    for c in (1, 64):
        d, f, g = direct[c], least[c], via[c]
        name = f"{scenario} c={c}"
        row(name, "requests/s", f"{g.rps:,.0f}", f"direct {d.rps:,.0f} ({shares(g.rps, f.rps, d.rps)})",
            f"{f.rps:,.0f}")
        row(name, "added latency p50 / p99 (ms)", f"{g.p50_ms - d.p50_ms:.3f} / {g.p99_ms - d.p99_ms:.3f}",
            f"direct {d.p50_ms:.3f} / {d.p99_ms:.3f}", f"{f.p50_ms - d.p50_ms:.3f} / {f.p99_ms - d.p99_ms:.3f}")
        if g.errors or d.errors or f.errors:
            row(name, "errors", str(g.errors), f"direct {d.errors}", str(f.errors))
        results[name] = {"gateway": repr(g), "floor": repr(f), "direct": repr(d)}


def _cpu_per_request(url: str, pid: int, seconds: int) -> tuple[float, float]:
    wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=8, seconds=2, headers=AUTH, core=LOAD_CORE)
    before = cpu_seconds(pid)
    load = wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=32, seconds=seconds, headers=AUTH,
               core=LOAD_CORE)
    return (cpu_seconds(pid) - before) / (load.rps * seconds) * 1e6, load.rps


def cpu_per_request(seconds: int) -> None:
    """The server's own CPU time per single-shot request: the floor, and the gateway without
    and with a keys file (per-key limits in memory) and the JSON access log
    (PROXY_LOG_LEVEL=INFO, the default). Steadier than requests/s on a shared machine,
    since time the hypervisor or a neighbour takes away is not counted."""
    with tempfile.TemporaryDirectory() as tmp, emulator() as upstream:
        with floor(upstream) as (url, process):
            least, _ = _cpu_per_request(url, process.pid, seconds)
        variants = {"access log off": {}, "access log on": {"PROXY_LOG_LEVEL": "INFO"},
                    "keys file, limits": {"PROXY_KEYS_FILE": keys_file(pathlib.Path(tmp)), "PROXY_API_TOKENS": ""}}
        for variant, settings in variants.items():
            with gateway(upstream, "ollama", **settings) as (url, process):
                per_request_us, rps = _cpu_per_request(url, process.pid, seconds)
            row(f"cpu per request, {variant}", "CPU µs per request", f"{per_request_us:.0f}",
                f"gateway/floor {per_request_us / least:.2f}, at {rps:,.0f} requests/s, 32 connections",
                f"{least:.0f}")
            results[f"cpu per request {variant}"] = {"gateway_us": per_request_us, "floor_us": least}


ROUTES_WITH_CACHE = """
[models.bench]
kinds = ["chat", "embeddings"]
cache = "private"
backends = [{ backend = "ollama", model = "bench" }]
"""


# Exports every second (batches of 512 at this load come sooner anyway), so the spans of a
# run are all exported, and counted, in the 1.5 s after it.
TRACING = {"OTEL_EXPORTER_OTLP_ENDPOINT": "{upstream}", "OTEL_BSP_SCHEDULE_DELAY": "1000"}


def feature_costs(seconds: int, rounds: int, baseline: pathlib.Path | None = None) -> None:
    """The gateway's CPU per single-shot request with tracing and the answer cache off and on
    (access log off), beside the floor. Rounds alternate the variants, and the median of each
    is shown, so a colleague's load on the shared machine does not land on one variant only.
    Tracing's exporter process (a child of the gateway, on the same pinned core) is measured
    apart: "+ exporter" is the gateway's CPU and its exporter's together. With `baseline` (another
    checkout, e.g. of main), its gateway is measured too, tracing off and on, in the same rounds."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as routes:
        routes.write(ROUTES_WITH_CACHE)
    ratio = {**TRACING, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}
    variants: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "floor": ({}, {}),
        "both off": ({}, {}),
        "tracing on (every request sampled), exporter process": (TRACING, {}),
        "tracing on (every request sampled), exporter thread": ({**TRACING, "PROXY_TRACE_EXPORT": "thread"}, {}),
        "tracing on, 1 in 4 sampled": ({**ratio, "OTEL_TRACES_SAMPLER_ARG": "0.25"}, {}),
        "tracing on, 1 in 20 sampled": ({**ratio, "OTEL_TRACES_SAMPLER_ARG": "0.05"}, {}),
        "tracing on, 1 in 100 sampled": ({**ratio, "OTEL_TRACES_SAMPLER_ARG": "0.01"}, {}),
        "cache on, request not cacheable": ({"PROXY_ROUTES_FILE": routes.name}, {}),
        "cache on, every request a hit": ({"PROXY_ROUTES_FILE": routes.name}, {"X-Gateway-Cache": "use"}),
    }
    if baseline is not None:
        variants |= {"baseline tree, both off": ({}, {}), "baseline tree, tracing on": (TRACING, {})}
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    with emulator() as upstream:
        for _ in range(rounds):
            for name, (env, headers) in variants.items():
                env = {k: v.format(upstream=upstream) for k, v in env.items()}
                tree = baseline if baseline is not None and name.startswith("baseline") else ROOT
                server = floor(upstream) if name == "floor" else gateway(upstream, "ollama", tree=tree, **env)
                with server as (url, process):
                    measured[name].append(_cpu_with_children(url, process.pid, seconds, headers))
    os.unlink(routes.name)
    baseline = statistics.median(own for own, _ in measured["both off"])
    for name, values in measured.items():
        own = statistics.median(v[0] for v in values)
        row(f"cpu per request, {name}", "gateway CPU µs per request", f"{own:.0f}",
            f"{own / baseline - 1:+.1%} vs both off; rounds {', '.join(f'{v[0]:.0f}' for v in values)}")
        if any(v[1] for v in values):
            total = statistics.median(v[0] + v[1] for v in values)
            row(f"cpu per request, {name}", "gateway + exporter CPU µs per request", f"{total:.0f}",
                f"{total / baseline - 1:+.1%} vs both off; exporter alone "
                f"{', '.join(f'{v[1]:.0f}' for v in values)}")
        results[f"cpu per request, {name}"] = values


def _cpu_with_children(url: str, pid: int, seconds: int, headers: dict[str, str]) -> tuple[float, float]:
    """(µs of CPU per request of the process, and of its child processes) over one wrk run after a warm-up."""
    wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=8, seconds=2, headers={**AUTH, **headers},
        core=LOAD_CORE)
    time.sleep(1.5)  # an exporter started by the warm-up's spans has finished starting
    before = cpu_seconds(pid), {child: cpu_seconds(child) for child in children(pid)}
    load = wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=32, seconds=seconds,
               headers={**AUTH, **headers}, core=LOAD_CORE)
    time.sleep(1.5)  # the last spans are exported
    own = cpu_seconds(pid) - before[0]
    spawned = sum(cpu_seconds(child) - before[1].get(child, 0.0) for child in children(pid))
    requests = load.rps * seconds
    return own / requests * 1e6, spawned / requests * 1e6


def tracing_paired(seconds: int, rounds: int, baseline: pathlib.Path | None) -> None:
    """Tracing's cost with all its variants loaded at the same time (bench/paired.py)."""
    variants = paired.VARIANTS | (paired.BASELINE_VARIANTS if baseline else {})
    with emulator() as upstream:
        measured = [paired.one_round(upstream, variants, baseline, seconds, 8, n) for n in range(rounds)]
    for r in paired.report(measured):
        row(f"tracing paired, {r['variant']}", "CPU µs per request: gateway / + exporter",
            f"{r['own_us']:.0f} / {r['total_us']:.0f}",
            f"{r['own_vs_off']:+.1%} / {r['total_vs_off']:+.1%} vs tracing off in the same rounds")
        results[f"tracing paired, {r['variant']}"] = r


def frontier(seconds: int, rates: list[int]) -> None:
    """Highest offered rate at which the gateway's added p99 stays under each bound."""
    path, body = DIRECT["ollama"]
    added: dict[int, float] = {}
    with emulator() as upstream:
        direct = {r: hey(upstream + path, body, rate=r, seconds=seconds, headers={}, core=GATEWAY_CORE)
                  for r in rates}
        with gateway(upstream) as (url, _):
            for rate in rates:
                via = hey(url + "/api/v1/inference", GATEWAY_BODY, rate=rate, seconds=seconds, headers=AUTH,
                          core=LOAD_CORE)
                keeps_up = via.rps >= 0.9 * rate and via.errors == 0
                added[rate] = via.p99_ms - direct[rate].p99_ms if keeps_up else math.inf
                shown = f"{added[rate]:.2f}" if keeps_up else "saturated"
                row("frontier ollama", f"added p99 at {rate:,}/s (ms)", shown,
                    f"served {via.rps:,.0f}/s; direct p99 {direct[rate].p99_ms:.2f}")
                if not keeps_up:
                    break
    for bound in (1, 5, 50):
        best = max((r for r, a in added.items() if a < bound), default=0)
        row("frontier ollama", f"highest rate with added p99 < {bound} ms", f"{best:,}/s", "")
    results["frontier"] = added


def _streams(upstream: str, tokens: int, runs: int) -> dict[str, list[clients.StreamTiming]]:
    """The same stream timed direct, through the floor and through the gateway."""
    timed = {"direct": asyncio.run(clients.stream_timings(clients.direct_stream_request(upstream, tokens), runs))}
    for name, server in (("floor", floor), ("gateway", gateway)):
        with server(upstream) as (url, _):
            timed[name] = asyncio.run(clients.stream_timings(clients.gateway_stream_request(url, tokens), runs))
    return timed


def streaming(runs: int) -> None:
    with emulator(token_delay=0.01) as upstream:
        timed = _streams(upstream, 20, runs)
    ttft = {name: [t.ttft_ms for t in timings] for name, timings in timed.items()}
    gaps = {name: [g for t in timings for g in t.gaps_ms] for name, timings in timed.items()}
    p = clients.percentile

    def added(values: dict[str, list[float]], server: str) -> str:
        return " / ".join(f"{p(values[server], q) - p(values['direct'], q):.3f}" for q in (50, 99))

    row("stream 20 tok, 10 ms apart", "added TTFT p50 / p99 (ms)", added(ttft, "gateway"),
        f"direct {p(ttft['direct'], 50):.3f} / {p(ttft['direct'], 99):.3f}", added(ttft, "floor"))
    row("stream 20 tok, 10 ms apart", "added gap p50 / p99 (ms)", added(gaps, "gateway"),
        f"direct {p(gaps['direct'], 50):.3f} / {p(gaps['direct'], 99):.3f}", added(gaps, "floor"))
    results["stream 20 tok"] = {name: {"ttft_p50": p(ttft[name], 50), "ttft_p99": p(ttft[name], 99),
                                       "gap_p50": p(gaps[name], 50), "gap_p99": p(gaps[name], 99)}
                                for name in ttft}

    # Taking turns: on a shared machine the relay rate moves by a factor of two within
    # minutes, which one-after-the-other runs would read as a difference between servers.
    with emulator(tokens=1000) as upstream, floor(upstream) as (floor_url, _), \
            gateway(upstream) as (gateway_url, _):
        timed = asyncio.run(clients.alternating_timings({
            "direct": clients.direct_stream_request(upstream, 1000),
            "floor": clients.gateway_stream_request(floor_url, 1000),
            "gateway": clients.gateway_stream_request(gateway_url, 1000)}, 9))
    rate = {name: clients.median([t.tokens / t.total_s for t in timings]) for name, timings in timed.items()}
    assert all(t.tokens == 1000 for t in timed["gateway"]), "tokens lost in the relay"
    row("stream 1,000 tok, no delay", "tokens/s relayed (median of 9, taking turns)", f"{rate['gateway']:,.0f}",
        f"direct {rate['direct']:,.0f} ({shares(rate['gateway'], rate['floor'], rate['direct'])})",
        f"{rate['floor']:,.0f}")
    results["streaming"] = {"tokens_per_s": rate["gateway"], "floor_tokens_per_s": rate["floor"],
                            "direct_tokens_per_s": rate["direct"]}


def streams_that_fit(wanted: int) -> int:
    """As many of `wanted` streams as this machine's descriptor limit lets one gateway hold.

    Each stream takes two descriptors (client and upstream), and the gateway's connection
    gate keeps two per upstream pool slot for upstream connections (settings/descriptors.py):
    with the pool sized to the streams, n streams fit when 15/16 of (limit - 64 - 2n) >= n.
    """
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return min(wanted, 15 * (limit - 64) // 46 - 16)


def many_streams(wanted: int) -> None:
    raise_fd_limit()
    count = streams_that_fit(wanted)
    limits = {"PROXY_MAX_IN_FLIGHT": str(count), "PROXY_UPSTREAM_MAX_IN_FLIGHT": str(count),
              "LLM_BACKEND_TIMEOUT": "120"}
    with emulator(token_delay=1.0) as upstream, gateway(upstream, **limits) as (url, process):
        asyncio.run(clients.stream_timings(clients.gateway_stream_request(url, 2), 3))  # warm
        idle = rss_kib(process.pid)
        peak = [idle]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                peak.append(rss_kib(process.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        outcome = asyncio.run(clients.many_streams(url, count, tokens=20))
        stop.set()
        sampler.join()
    per_stream = (max(peak) - idle) / count
    row(f"{count:,} open streams", "completed / failed", f"{outcome.completed:,} / {outcome.failed:,}",
        f"of {count:,}, in {outcome.seconds:.1f} s")
    for reason, times in sorted(outcome.reasons.items(), key=lambda r: -r[1])[:3]:
        row(f"{count:,} open streams", "failure", f"{times:,}", reason)
    row(f"{count:,} open streams", "gateway RSS idle -> peak (MiB)", f"{idle / 1024:.0f} -> {max(peak) / 1024:.0f}",
        "")
    row(f"{count:,} open streams", "memory per stream (KiB)", f"{per_stream:.1f}", "target < 64")
    results["many_streams"] = {"completed": outcome.completed, "failed": outcome.failed,
                               "idle_kib": idle, "peak_kib": max(peak), "per_stream_kib": per_stream}


def batch() -> None:
    inputs, concurrency, latency = 1000, 16, 0.010
    ideal = math.ceil(inputs / concurrency) * latency
    path, _ = DIRECT["ollama"]
    bodies = [json.dumps({"model": "bench", "messages": [{"role": "user", "content": f"item {i}"}],
                          "stream": False, "options": {"num_predict": 8}}).encode() for i in range(inputs)]
    with emulator(latency=latency) as upstream:
        direct = asyncio.run(clients.timed_requests(upstream + path, bodies, concurrency, {}))
        with gateway(upstream) as (url, _):
            asyncio.run(clients.gateway_batch(url, 32, concurrency))  # warm
            wall, succeeded = asyncio.run(clients.gateway_batch(url, inputs, concurrency))
    row("batch 1,000 @16, 10 ms", "wall time (s)", f"{wall:.3f}",
        f"ideal {ideal:.3f}, direct {direct:.3f} ({wall / ideal - 1:+.1%} vs ideal)")
    row("batch 1,000 @16, 10 ms", "items succeeded", f"{succeeded:,}", f"of {inputs:,}")
    results["batch"] = {"wall_s": wall, "ideal_s": ideal, "direct_s": direct, "succeeded": succeeded}


def soak(seconds: int) -> None:
    """Steady mixed load: single shots at a fixed rate plus a steady set of streams."""
    warmup = max(10, seconds // 10)
    with emulator(token_delay=0.01) as upstream, gateway(upstream) as (url, process):
        until = time.monotonic() + seconds
        load = subprocess.Popen(
            ["hey", "-z", f"{seconds}s", "-c", "16", "-q", "50", "-m", "POST", "-T", "application/json",
             "-d", GATEWAY_BODY, "-H", f"Authorization: Bearer {TOKEN}", url + "/api/v1/inference"],
            stdout=subprocess.PIPE, text=True)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            start = time.monotonic()
            while not stop.wait(1.0):
                samples.append((time.monotonic() - start, rss_kib(process.pid)))

        sampler = threading.Thread(target=sample)
        sampler.start()
        streams = asyncio.run(clients.steady_streams(url, 32, 20, until))
        out, _ = load.communicate()
        stop.set()
        sampler.join()
    after_warmup = next(kib for t, kib in samples if t >= warmup)
    end = samples[-1][1]
    single = float(out.split("Requests/sec:")[1].split()[0])
    row(f"soak {seconds} s mixed", "RSS after warm-up -> end (MiB)", f"{after_warmup / 1024:.1f} -> {end / 1024:.1f}",
        f"{end / after_warmup - 1:+.1%} (target < +5%)")
    row(f"soak {seconds} s mixed", "load served", f"{single:,.0f} req/s + {streams:,} streams", "")
    results["soak"] = {"seconds": seconds, "rss_after_warmup_kib": after_warmup, "rss_end_kib": end,
                       "samples": samples}


def workers(seconds: int) -> None:
    """PROXY_WORKERS=1 against 2. One worker has core 0 to itself; two workers may use both
    cores, so the second shares core 1 with the emulator and wrk: on two cores this shows
    the per-request cost of a worker in multiprocess mode and how evenly SO_REUSEPORT
    spreads 64 connections, not how throughput grows with cores (docs/PERFORMANCE.md)."""
    all_cores = ",".join(map(str, range(CORES)))
    with emulator() as upstream:
        for count in (1, 2):
            with gateway(upstream, core=GATEWAY_CORE if count == 1 else all_cores,
                         PROXY_WORKERS=str(count)) as (url, process):
                wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=8, seconds=2, headers=AUTH, core=LOAD_CORE)
                pids = children(process.pid) if count > 1 else [process.pid]
                before = {pid: cpu_seconds(pid) for pid in pids}
                result = wrk(url + "/api/v1/inference", GATEWAY_BODY, connections=64, seconds=seconds,
                             headers=AUTH, core=LOAD_CORE)
                used = {pid: cpu_seconds(pid) - before[pid] for pid in pids}
            total = sum(used.values())
            spread = " / ".join(f"{u / total:.0%}" for u in sorted(used.values(), reverse=True))
            row("workers (SO_REUSEPORT)", f"{count} worker(s), c=64, requests/s", f"{result.rps:,.0f}",
                f"CPU {total / (result.rps * seconds) * 1e6:.0f} µs/request; CPU split between workers {spread}; "
                f"wrk and emulator on core {LOAD_CORE}")
            results[f"workers {count}"] = {"rps": result.rps, "cpu_s": used}


def machine() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                     platform.processor())
    return f"{CORES} cores ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, 1,000 streams, 60 s soak")
    parser.add_argument("--soak", type=int, default=None, help="soak seconds (default 600, quick 60)")
    parser.add_argument("--json", default=None, help="write raw results here")
    parser.add_argument("--only", default=None, metavar="NAMES",
                        help="comma-separated scenarios to run, e.g. 'single shot,streaming' (default: all)")
    parser.add_argument("--baseline", type=pathlib.Path, default=None, metavar="TREE",
                        help="another checkout whose gateway 'features cpu' and 'tracing paired' measure too")
    args = parser.parse_args()
    seconds = 3 if args.quick else 10
    scenarios: list[tuple[str, Callable[[], None]]] = [
        ("single shot", lambda: single_shot(seconds)),
        ("cpu per request", lambda: cpu_per_request(seconds)),
        ("features cpu", lambda: feature_costs(seconds, 2 if args.quick else 3, args.baseline)),
        ("tracing paired", lambda: tracing_paired(seconds, 3 if args.quick else 7, args.baseline)),
        ("frontier", lambda: frontier(seconds, [250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500])),
        ("streaming", lambda: streaming(20 if args.quick else 100)),
        ("many streams", lambda: many_streams(1000 if args.quick else 10_000)),
        ("batch", batch),
        ("workers", lambda: workers(seconds)),
        ("soak", lambda: soak(args.soak or (60 if args.quick else 600))),
    ]
    print(f"machine: {machine()}\npinning: gateway on core {GATEWAY_CORE}, emulator and load on core {LOAD_CORE}\n")
    wanted = None if args.only is None else {name.strip() for name in args.only.split(",")}
    for name, scenario in scenarios:
        if wanted is not None and name not in wanted:
            continue
        print(f"[{name}]", flush=True)
        scenario()
    print("\n| scenario | metric | gateway | floor | direct / target |\n|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": machine(), "rows": rows, "results": results}, out, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())

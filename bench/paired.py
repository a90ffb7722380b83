"""Tracing's cost measured side by side: every variant served and loaded at the same time.

    python -m bench.paired [--rounds 7] [--seconds 8] [--connections 8] [--baseline TREE]

On a machine shared with other work, CPU per request measured one variant after another
moves by 20% between rounds (a neighbour's build lands on one round and not the next),
more than the differences tracing is about. Here each round starts every variant (the
floor, the gateway with tracing off, on with the exporter process, on with the exporter
thread, ratio sampling, the JSON access log on, and with --baseline another checkout's
gateway off, on and 1 in 20), each as its own process on the gateway's core, warms them
up, and loads them all at once with one wrk each: the variants share the core and its
neighbours for the same seconds. Each process's utime + stime (/proc) over the run,
divided by the requests its wrk completed, is its CPU per request; an exporter process (a
child of its gateway) is counted apart. Reported per variant: the median over rounds, and
the median of its per-round ratio to tracing off measured in that same round. The order in
which the variants start and are loaded turns by one each round (a fixed order favoured
some positions by a few percent).
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.processes import LOAD_CORE, ROOT, TOKEN, children, cpu_seconds, emulator, floor, gateway, wrk

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = '{"model_id":"bench","input_data":"hi","parameters":{"max_tokens":8}}'
TRACING = {"OTEL_EXPORTER_OTLP_ENDPOINT": "{upstream}", "OTEL_BSP_SCHEDULE_DELAY": "1000"}
RATIO = {**TRACING, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}
VARIANTS: dict[str, dict[str, str]] = {
    "floor": {},
    "tracing off": {},
    "tracing on, exporter process": TRACING,
    "tracing on, exporter thread": {**TRACING, "PROXY_TRACE_EXPORT": "thread"},
    "tracing on, 1 in 20 sampled": {**RATIO, "OTEL_TRACES_SAMPLER_ARG": "0.05"},
    "tracing on, 1 in 100 sampled": {**RATIO, "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    # Not tracing, but measured the same way for the same reason: the JSON access log's cost.
    "access log on (tracing off)": {"PROXY_LOG_LEVEL": "INFO"},
}
BASELINE_VARIANTS = {"baseline: tracing off": {}, "baseline: tracing on": TRACING,
                     "baseline: tracing on, 1 in 20 sampled": VARIANTS["tracing on, 1 in 20 sampled"]}
# This tree's variant beside the baseline's same one, compared round by round.
AGAINST_BASELINE = {"tracing off": "baseline: tracing off", "tracing on, exporter process": "baseline: tracing on",
                    "tracing on, 1 in 20 sampled": "baseline: tracing on, 1 in 20 sampled"}


def one_round(upstream: str, variants: dict[str, dict[str, str]], baseline: pathlib.Path | None,
              seconds: int, connections: int, rotation: int = 0) -> dict[str, tuple[float, float]]:
    """{variant: (own CPU µs per request, its exporter's)} with every variant loaded at once.

    The variants start, and their loads are launched, in an order rotated by `rotation`: the
    first and last started are not always the same ones."""
    names = list(variants)
    order = names[rotation % len(names):] + names[:rotation % len(names)]
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[str, int]] = {}
        for name in order:
            env = variants[name]
            tree = baseline if baseline is not None and name.startswith("baseline") else ROOT
            env = {k: v.format(upstream=upstream) for k, v in env.items()}
            server = floor(upstream) if name == "floor" else gateway(upstream, "ollama", tree=tree, **env)
            url, process = stack.enter_context(server)
            servers[name] = (url, process.pid)
        _load_all(servers, 2, connections)  # warm-up; a traced gateway starts its exporter here
        _settle([pid for _, pid in servers.values()])
        before = {name: _cpu(pid) for name, (_, pid) in servers.items()}
        loads = _load_all(servers, seconds, connections)
        time.sleep(1.5)  # the last spans are exported
        after = {name: _cpu(pid) for name, (_, pid) in servers.items()}
    measured = {}
    for name in names:
        requests = loads[name] * seconds
        own = (after[name][0] - before[name][0]) / requests * 1e6
        spawned = sum(cpu - before[name][1].get(child, 0.0) for child, cpu in after[name][1].items())
        measured[name] = (own, spawned / requests * 1e6)
    return measured


def _settle(pids: list[int]) -> None:
    """Until the exporters have started (importing the SDK takes a second of CPU) and
    exported the warm-up's spans: no child process used more than 10 ms in half a second."""
    for _ in range(40):
        before = {child: cpu_seconds(child) for pid in pids for child in children(pid)}
        time.sleep(0.5)
        if all(cpu_seconds(child) - cpu < 0.01 for child, cpu in before.items()):
            return


def _cpu(pid: int) -> tuple[float, dict[int, float]]:
    return cpu_seconds(pid), {child: cpu_seconds(child) for child in children(pid)}


def _load_all(servers: dict[str, tuple[str, int]], seconds: int, connections: int) -> dict[str, float]:
    """requests/s of each server, all loaded at the same time."""
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = {name: pool.submit(wrk, url + "/api/v1/inference", BODY, connections=connections,
                                     seconds=seconds, headers=AUTH, core=LOAD_CORE)
                   for name, (url, _) in servers.items()}
        return {name: future.result().rps for name, future in futures.items()}


def report(rounds: list[dict[str, tuple[float, float]]]) -> list[dict[str, Any]]:
    rows = []
    for name in rounds[0]:
        own = [r[name][0] for r in rounds]
        total = [r[name][0] + r[name][1] for r in rounds]
        reference = "baseline: tracing off" if name.startswith("baseline") else "tracing off"
        rows.append({
            "variant": name, "own_us": statistics.median(own), "total_us": statistics.median(total),
            "own_vs_off": statistics.median(r[name][0] / r[reference][0] - 1 for r in rounds),
            "total_vs_off": statistics.median((r[name][0] + r[name][1]) / r[reference][0] - 1 for r in rounds),
            "rounds_own": own, "rounds_exporter": [r[name][1] for r in rounds],
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8, help="per variant")
    parser.add_argument("--baseline", type=pathlib.Path, default=None, metavar="TREE",
                        help="another checkout (e.g. main's) measured tracing off, on, and 1 in 20 too")
    args = parser.parse_args()
    variants = VARIANTS | (BASELINE_VARIANTS if args.baseline else {})
    rounds = []
    with emulator() as upstream:
        for number in range(args.rounds):
            rounds.append(one_round(upstream, variants, args.baseline, args.seconds, args.connections, number))
            shown = ", ".join(f"{n} {own:.0f}+{exp:.0f}" for n, (own, exp) in rounds[-1].items())
            print(f"round {number + 1}: {shown}", flush=True)
    print("\n| variant | CPU µs per request, gateway | vs tracing off (paired) "
          "| gateway + exporter | vs tracing off (paired) | rounds (gateway) |\n|---|---|---|---|---|---|")
    for row in report(rounds):
        print(f"| {row['variant']} | {row['own_us']:.0f} | {row['own_vs_off']:+.1%} | {row['total_us']:.0f} "
              f"| {row['total_vs_off']:+.1%} | {', '.join(f'{v:.0f}' for v in row['rounds_own'])} |")
    if args.baseline:
        print()
        for ours, theirs in AGAINST_BASELINE.items():
            ratios = [r[ours][0] / r[theirs][0] - 1 for r in rounds]
            totals = [(r[ours][0] + r[ours][1]) / (r[theirs][0] + r[theirs][1]) - 1 for r in rounds]
            print(f"{ours} against the baseline's, paired: gateway median {statistics.median(ratios):+.1%} "
                  f"(rounds {', '.join(f'{v:+.1%}' for v in ratios)}); "
                  f"gateway + exporter median {statistics.median(totals):+.1%}")


if __name__ == "__main__":
    main()

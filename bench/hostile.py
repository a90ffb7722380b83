"""What each attack of issue 15 costs a real gateway process, and what a bystander sees.

    python -m bench.hostile                   # this tree
    python -m bench.hostile --tree /path/old  # another checkout (e.g. before the fixes)

The gateway (`python -m proxy`, so with the production GC tuning) runs in front of the
hostile upstream of bench/hostile_upstream.py, which runs in this process. Figures per
attack: the gateway's RSS before, at its peak (VmHWM) and after; the longest /livez
answer seen while the attack runs (polled every 20 ms: the event-loop stall); what a
well-behaved client got meanwhile; and for the stream attack, how long until `done: true`.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from bench.hostile_upstream import HostileUpstream, gzip_of_zeros
from bench.processes import ROOT, free_port
from proxy.tenants.keyring import stored_hash

TOKEN = "bench-token-0123456789"
SLOW_KEY = "bench-slow-key-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MIB = 1 << 20
ASK = {"model_id": "ok", "input_data": "hi"}


def status_kib(pid: int, field: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Gateway:
    def __init__(self, tree: pathlib.Path, upstream: str, keys: pathlib.Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ["PATH"], "PYTHONPATH": str(tree), "PROXY_PORT": str(self.port),
            "PROXY_API_TOKENS": TOKEN, "PROXY_KEYS_FILE": str(keys), "OLLAMA_BASE_URL": upstream,
            "OPENAI_API_ENDPOINT": "", "PROXY_LOG_LEVEL": "ERROR", "PROXY_MAX_IN_FLIGHT": "64",
            "PROXY_QUEUE_TIMEOUT": "0.5", "PROXY_IDLE_TIMEOUT": "20", "PROXY_BODY_TIMEOUT": "15",
        }
        self.process = subprocess.Popen([sys.executable, "-m", "proxy"], cwd=tree, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(300):
            try:
                async with session.get(self.base + "/livez") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("the gateway did not start")

    def rss_mib(self) -> float:
        return round(status_kib(self.process.pid, "VmRSS") / 1024, 1)

    def peak_mib(self) -> float:
        return round(status_kib(self.process.pid, "VmHWM") / 1024, 1)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


async def worst_livez(session: aiohttp.ClientSession, base: str, until: asyncio.Event) -> float:
    """The longest /livez round trip, in ms, until `until` is set."""
    worst = 0.0
    while not until.is_set():
        started = time.perf_counter()
        try:
            async with session.get(base + "/livez") as response:
                await response.read()
        except aiohttp.ClientError:
            pass
        worst = max(worst, (time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)
    return round(worst, 1)


async def measured(gateway: Gateway, session: aiohttp.ClientSession,
                   attack: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    before = gateway.rss_mib()
    done = asyncio.Event()
    stall = asyncio.ensure_future(worst_livez(session, gateway.base, done))
    try:
        figures = await attack()
    finally:
        done.set()
    await asyncio.sleep(1.0)
    return {"rss_before_mib": before, "rss_peak_mib": gateway.peak_mib(), "rss_after_mib": gateway.rss_mib(),
            "livez_worst_ms": await stall, **figures}


async def victim(session: aiohttp.ClientSession, base: str) -> int | str:
    """What a well-behaved client gets, on a connection of its own."""
    try:
        async with aiohttp.ClientSession() as fresh, fresh.post(
                base + "/api/v1/inference", json=ASK, headers=AUTH) as response:
            await response.read()
            return response.status
    except aiohttp.ClientError as exc:
        return type(exc).__name__


async def posts(session: aiohttp.ClientSession, base: str, model: str, count: int) -> list[int | str]:
    statuses: list[int | str] = []
    for _ in range(count):
        try:
            async with session.post(base + "/api/v1/inference", json={**ASK, "model_id": model},
                                    headers=AUTH) as response:
                await response.read()
                statuses.append(response.status)
        except aiohttp.ClientError as exc:
            statuses.append(type(exc).__name__)
    return statuses


async def gzip_bomb_answer(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    statuses = await posts(session, base, "gzip-bomb", 1)
    return {"attacker_statuses": statuses, "victim_status": await victim(session, base)}


async def gzip_bomb_errors(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    statuses = await posts(session, base, "gzip-error", 5)
    return {"attacker_statuses": sorted(set(map(str, statuses))), "victim_status": await victim(session, base)}


async def over_cap_answers(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    statuses = await posts(session, base, "over-cap", 10)
    return {"attacker_statuses": sorted(set(map(str, statuses))), "victim_status": await victim(session, base)}


def request_bomb() -> bytes:
    """500 MiB of JSON as about 500 KB of gzip."""
    return gzip.compress(b'{"model_id": "ok", "input_data": "' + b" " * (500 * MIB) + b'"}', 9)


async def compressed_requests(session: aiohttp.ClientSession, base: str, bomb: bytes) -> dict[str, Any]:

    async def one() -> int | str:
        try:
            async with session.post(base + "/api/v1/inference", data=bomb, headers={
                    "Content-Encoding": "gzip", "Content-Type": "application/json"}) as response:
                await response.read()
                return response.status
        except aiohttp.ClientError as exc:
            return type(exc).__name__

    statuses = await asyncio.gather(*(one() for _ in range(8)))
    return {"attacker_statuses": sorted(set(map(str, statuses))), "body_kib": len(bomb) // 1024,
            "victim_status": await victim(session, base)}


async def trickled_bodies(session: aiohttp.ClientSession, base: str, port: int) -> dict[str, Any]:
    """100 connections from a key limited to 1 concurrent request send a body at a trickle."""
    body = json.dumps(ASK).encode()
    head = (f"POST /api/v1/inference HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SLOW_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    writers = []
    for _ in range(100):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body[:1])
        writers.append(writer)
    await asyncio.sleep(1.0)
    statuses = [await victim(session, base) for _ in range(5)]
    for writer in writers:
        writer.close()
    return {"victim_statuses": statuses}


async def broken_stream(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    started = time.perf_counter()
    last = b""
    try:
        async with asyncio.timeout(30), session.post(
                base + "/api/v1/inference/stream", json={**ASK, "model_id": "broken-chunk"}, headers=AUTH) as response:
            async for line in response.content:
                if line.startswith(b"data:"):
                    last = line
    except TimeoutError:
        return {"seconds_to_done": None, "note": "no done: true within 30 s"}
    final = json.loads(last[5:]) if last else {}
    return {"seconds_to_done": round(time.perf_counter() - started, 2), "done": final.get("done"),
            "code": final.get("error", {}).get("code")}


async def main(tree: pathlib.Path) -> dict[str, Any]:
    hostile = HostileUpstream()
    # Made now, not while an attack is measured: this process also times /livez.
    gzip_of_zeros(hostile.bomb_mib)
    gzip_of_zeros(hostile.error_bomb_mib)
    runner = web.AppRunner(hostile.app())
    await runner.setup()
    upstream_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", upstream_port).start()
    bomb = request_bomb()
    results: dict[str, Any] = {"tree": str(tree)}
    with tempfile.TemporaryDirectory() as scratch:
        keys = pathlib.Path(scratch) / "keys.toml"
        keys.write_text(f'[keys.slow]\nhash = "{stored_hash(SLOW_KEY)}"\nconcurrent_requests = 1\n')
        attacks: dict[str, Callable[[aiohttp.ClientSession, Gateway], Awaitable[dict[str, Any]]]] = {
            "1_gzip_bomb_answer": lambda s, g: gzip_bomb_answer(s, g.base),
            "1_gzip_bomb_errors_x5": lambda s, g: gzip_bomb_errors(s, g.base),
            "2_compressed_requests_x8": lambda s, g: compressed_requests(s, g.base, bomb),
            "3_trickled_bodies_x100": lambda s, g: trickled_bodies(s, g.base, g.port),
            "4_over_cap_answers_x10": lambda s, g: over_cap_answers(s, g.base),
            "5_broken_chunked_stream": lambda s, g: broken_stream(s, g.base),
        }
        for name, attack in attacks.items():
            gateway = Gateway(tree, f"http://127.0.0.1:{upstream_port}", keys)  # a fresh process each
            try:
                timeout = aiohttp.ClientTimeout(total=120)
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    await gateway.ready(session)
                    results[name] = await measured(gateway, session, lambda s=session, g=gateway, a=attack: a(s, g))
            finally:
                gateway.stop()
            print(name, results[name], flush=True)
    await runner.cleanup()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=pathlib.Path, default=ROOT)
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    figures = asyncio.run(main(args.tree.resolve()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")

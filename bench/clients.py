"""Asyncio clients that time what wrk cannot: tokens of a stream, many open streams, a batch."""

from __future__ import annotations

import asyncio
import collections
import itertools
import statistics
import time
from collections.abc import Callable

import aiohttp
import orjson
from attrs import frozen

from bench.processes import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@frozen
class StreamTiming:
    ttft_ms: float
    gaps_ms: list[float]
    tokens: int
    total_s: float


def _gateway_token(line: bytes) -> bool:
    return line.startswith(b"data: ") and b'"done":false' in line


def _ollama_token(line: bytes) -> bool:
    return b'"done":false' in line


async def time_stream(session: aiohttp.ClientSession, url: str, body: dict, is_token: Callable[[bytes], bool],
                      headers: dict[str, str] | None = None) -> StreamTiming:
    started = time.perf_counter()
    stamps: list[float] = []
    async with session.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json",
                                                                   **(headers or {})}) as response:
        response.raise_for_status()
        async for line in response.content:
            if is_token(line):
                stamps.append(time.perf_counter())
    end = time.perf_counter()
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
    return StreamTiming(ttft_ms=(stamps[0] - started) * 1000, gaps_ms=gaps, tokens=len(stamps), total_s=end - started)


def gateway_stream_request(gateway: str, tokens: int) -> tuple[str, dict, Callable[[bytes], bool], dict[str, str]]:
    body = {"model_id": "bench", "input_data": "hi", "parameters": {"max_tokens": tokens}}
    return f"{gateway}/api/v1/inference/stream", body, _gateway_token, AUTH


def direct_stream_request(upstream: str, tokens: int) -> tuple[str, dict, Callable[[bytes], bool], dict[str, str]]:
    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": tokens}}
    return f"{upstream}/api/chat", body, _ollama_token, {}


async def stream_timings(target: tuple[str, dict, Callable[[bytes], bool], dict[str, str]], runs: int,
                         ) -> list[StreamTiming]:
    url, body, is_token, headers = target
    async with aiohttp.ClientSession() as session:
        await time_stream(session, url, body, is_token, headers)  # warm the connection
        return [await time_stream(session, url, body, is_token, headers) for _ in range(runs)]


Target = tuple[str, dict, Callable[[bytes], bool], dict[str, str]]


async def alternating_timings(targets: dict[str, Target], runs: int) -> dict[str, list[StreamTiming]]:
    """`runs` streams from each target, taking turns (one from each, then again), so a
    neighbour's load on the shared machine lands on every target alike."""
    async with aiohttp.ClientSession() as session:
        for url, body, is_token, headers in targets.values():
            await time_stream(session, url, body, is_token, headers)  # warm the connections
        timed: dict[str, list[StreamTiming]] = {name: [] for name in targets}
        for _ in range(runs):
            for name, (url, body, is_token, headers) in targets.items():
                timed[name].append(await time_stream(session, url, body, is_token, headers))
        return timed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


@frozen
class ManyStreams:
    opened: int
    completed: int
    failed: int
    seconds: float
    reasons: dict[str, int]


async def many_streams(gateway: str, count: int, tokens: int, ramp_batch: int = 250) -> ManyStreams:
    """`count` streams open at once; each must end with a clean done event.

    Connections are opened 250 every 0.1 s (2,500/s), about the rate one gateway core
    accepts and starts streams; the streams last longer than the ramp, so all are open
    together at its end. A faster burst overflows the listen backlog and is refused by
    the kernel (connection reset), which is a measure of the ramp, not of the streams.
    """
    url, body, _, headers = gateway_stream_request(gateway, tokens)
    payload = orjson.dumps(body)
    headers = {"Content-Type": "application/json", **headers}
    completed = failed = 0
    reasons: collections.Counter[str] = collections.Counter()

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal completed, failed
        try:
            async with session.post(url, data=payload, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=600)) as response:
                raw = await response.read()
            last = raw.rstrip().rsplit(b"\n", 1)[-1]
            if response.status == 200 and b'"done":true' in last and b'"error"' not in last:
                completed += 1
            else:
                failed += 1
                reasons[f"HTTP {response.status}: {last[:120].decode(errors='replace')}"] += 1
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            failed += 1
            reasons[f"{type(exc).__name__}: {exc}"[:160]] += 1

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, asyncio.TaskGroup() as group:
        for i in range(count):
            group.create_task(one(session))
            if i % ramp_batch == ramp_batch - 1:
                await asyncio.sleep(0.1)
    return ManyStreams(opened=count, completed=completed, failed=failed, seconds=time.perf_counter() - started,
                       reasons=dict(reasons))


async def timed_requests(url: str, bodies: list[bytes], concurrency: int, headers: dict[str, str]) -> float:
    """Seconds to send every body with `concurrency` requests in flight (the direct batch baseline)."""
    pending = iter(bodies)
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json", **headers}) as session:

        async def worker() -> None:
            for body in pending:
                async with session.post(url, data=body) as response:
                    await response.read()

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    return time.perf_counter() - started


async def gateway_batch(gateway: str, inputs: int, concurrency: int) -> tuple[float, int]:
    body = {"model_id": "bench", "inputs": [{"input_data": f"item {i}"} for i in range(inputs)],
            "max_concurrency": concurrency, "parameters": {"max_tokens": 8}}
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.post(
        f"{gateway}/api/v1/inference/batch", data=orjson.dumps(body),
        headers={"Content-Type": "application/json", **AUTH},
    ) as response:
        answer = await response.json(loads=orjson.loads)
    return time.perf_counter() - started, answer["succeeded"]


async def steady_streams(gateway: str, concurrent: int, tokens: int, until: float) -> int:
    """Keep `concurrent` streams running until the monotonic time `until`; returns streams done."""
    url, body, is_token, headers = gateway_stream_request(gateway, tokens)
    done = 0
    async with aiohttp.ClientSession() as session:

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < until:
                await time_stream(session, url, body, is_token, headers)
                done += 1

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrent):
                group.create_task(loop())
    return done

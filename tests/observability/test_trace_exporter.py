"""The trace exporter process (proxy/tracing/exporter_process.py), with the real gateway process.

The gateway pipes its finished spans to a child process that encodes and exports them.
Whatever happens to that child or to the collector, requests are answered; spans that could
not be exported are counted (or, in the child, logged); the child is started again after it
dies; and it never outlives the gateway. The same for the export in a thread of the gateway
(PROXY_TRACE_EXPORT=thread).
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from proxy.tracing.exporter_process import ExporterProcess
from proxy.tracing.recorder import CLIENT
from proxy.tracing.span_wire import MAX_FRAME, WireSpan
from tests.support.app import AUTH, TOKEN, RunningUpstream
from tests.support.gateway_process import RUN_TIMEOUT, GatewayProcess, running_gateway
from tests.support.metrics import parse, value
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.waiting import eventually

EXPORTER_MODULE = b"proxy.tracing.exporter_main"


def traced_env(ollama: RunningUpstream, receiver: TestServer, **more: str) -> dict[str, str]:
    return {"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": str(ollama.url), "OPENAI_API_ENDPOINT": "",
            "OTEL_EXPORTER_OTLP_ENDPOINT": str(receiver.make_url("")), "OTEL_BSP_SCHEDULE_DELAY": "50", **more}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


async def chat(session: aiohttp.ClientSession, gateway: GatewayProcess, request_id: str) -> None:
    """One single-shot chat, which must be answered in full whatever the exporter's state."""
    async with session.post(f"{gateway.base}/v1/chat/completions", headers={"X-Request-ID": request_id},
                            json={"model": "gemma3:1b", "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status == 200
        assert (await response.json())["choices"][0]["message"]["content"]


async def batch(session: aiohttp.ClientSession, gateway: GatewayProcess, items: int) -> None:
    """A batch: one server span and a client span per item."""
    inputs = [{"input_data": f"item {i}"} for i in range(items)]
    async with session.post(f"{gateway.base}/api/v1/inference/batch",
                            json={"model_id": "gemma3:1b", "inputs": inputs}) as response:
        assert response.status == 200
        assert (await response.json())["succeeded"] == items


async def metric(session: aiohttp.ClientSession, gateway: GatewayProcess, name: str, **labels: str) -> float:
    async with session.get(f"{gateway.base}/metrics") as response:
        return value(parse(await response.text()), name, **labels)


async def fill_until_dropped(session: aiohttp.ClientSession, gateway: GatewayProcess) -> None:
    """Batches (21 spans each), every one answered, until the gateway drops a span for a full queue."""
    for _ in range(100):
        await batch(session, gateway, 20)
        if await metric(session, gateway, "gateway_trace_spans_dropped_total", reason="queue_full") > 0:
            return
    raise AssertionError("no span was ever dropped: is the queue bounded?")


def exporters_of(pid: int) -> list[int]:
    """The gateway's exporter processes (its children running proxy.tracing.exporter_main)."""
    found = []
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = pathlib.Path(f"/proc/{child}/cmdline")
            if cmdline.exists() and EXPORTER_MODULE in cmdline.read_bytes():
                found.append(int(child))
    return found


async def the_exporter(gateway: GatewayProcess) -> int:
    async def found() -> list[int]:
        return exporters_of(gateway.process.pid)

    exporters = await eventually(found, RUN_TIMEOUT)
    assert len(exporters) == 1
    return exporters[0]


def is_gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by its parent counts as exited) or reaped."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def until_gone(pid: int) -> None:
    async def gone() -> bool:
        return is_gone(pid)

    await eventually(gone, RUN_TIMEOUT)


async def test_a_dead_exporter_costs_spans_never_requests_and_is_started_again(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    spans, server = receiver
    async with running_gateway(traced_env(ollama, server)) as gateway:
        await chat(session, gateway, "before-1")
        await spans.trace_of("before-1", 2)
        first = await the_exporter(gateway)

        os.kill(first, signal.SIGKILL)
        await until_gone(first)
        await chat(session, gateway, "while-dead-1")  # answered in full
        dropped = "gateway_trace_spans_dropped_total"

        async def counted() -> bool:  # the two spans of while-dead-1, counted once piping them failed
            return await metric(session, gateway, dropped, reason="exporter_down") >= 2

        await eventually(counted, RUN_TIMEOUT)

        # Started again with the next spans, a second later: traces flow again.
        async def restarted() -> bool:
            await chat(session, gateway, "meanwhile")
            return await metric(session, gateway, "gateway_trace_exporter_restarts_total") >= 1

        await eventually(restarted, RUN_TIMEOUT, every=0.1)
        second = await the_exporter(gateway)
        assert second != first
        await chat(session, gateway, "after-1")
        server_span, client_span = await spans.trace_of("after-1", 2)
        assert client_span.parent_span_id == server_span.span_id
        assert not any(s.attributes.get("gateway.request_id") == "while-dead-1" for s in spans.spans)


async def test_the_exporter_runs_below_the_gateways_priority(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    """Sharing a core with the gateway, the exporter yields to the requests (nice +10)."""
    spans, server = receiver
    async with running_gateway(traced_env(ollama, server)) as gateway:
        await chat(session, gateway, "niced-1")
        await spans.trace_of("niced-1", 2)  # exported: the exporter is past its start
        exporter = await the_exporter(gateway)
        gateway_niceness = os.getpriority(os.PRIO_PROCESS, gateway.process.pid)
        assert os.getpriority(os.PRIO_PROCESS, exporter) == min(gateway_niceness + 10, 19)


async def test_a_stuck_exporter_fills_the_queue_and_further_spans_are_dropped_and_counted(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    spans, server = receiver
    env = traced_env(ollama, server, OTEL_BSP_MAX_QUEUE_SIZE="8", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4")
    async with running_gateway(env) as gateway:
        await chat(session, gateway, "before-2")
        await spans.trace_of("before-2", 2)
        exporter = await the_exporter(gateway)
        os.kill(exporter, signal.SIGSTOP)  # reads nothing more: its pipe fills, then the gateway's queue
        try:
            await fill_until_dropped(session, gateway)
        finally:
            os.kill(exporter, signal.SIGCONT)
        # Unstuck, it exports again (once the backlog is through: until then spans may still be
        # dropped); it was never restarted, nothing was lost to a dead exporter.
        async def exported_again() -> bool:
            await chat(session, gateway, "after-2")
            return any(s.attributes.get("gateway.request_id") == "after-2" for s in spans.spans)

        await eventually(exported_again, RUN_TIMEOUT, every=0.2)
        assert await metric(session, gateway, "gateway_trace_exporter_restarts_total") == 0
        dropped = "gateway_trace_spans_dropped_total"
        assert await metric(session, gateway, dropped, reason="exporter_down") == 0


async def test_the_exporter_exports_what_is_queued_and_exits_when_the_gateway_stops(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    spans, server = receiver
    # Exports a minute apart: only the stop can send these spans before the test ends.
    env = traced_env(ollama, server, OTEL_BSP_SCHEDULE_DELAY="60000")
    async with running_gateway(env, graceful=True) as gateway:
        await chat(session, gateway, "at-stop-1")
        exporter = await the_exporter(gateway)
        assert spans.spans == []
    assert gateway.returncode == 0
    await until_gone(exporter)
    server_span, client_span = await spans.trace_of("at-stop-1", 2)
    assert client_span.parent_span_id == server_span.span_id


async def test_no_exporter_outlives_a_killed_gateway(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    _, server = receiver
    async with running_gateway(traced_env(ollama, server)) as gateway:
        await chat(session, gateway, "killed-1")
        exporter = await the_exporter(gateway)
        gateway.process.kill()  # SIGKILL: no cleanup at all in the gateway
        await gateway.process.wait()
    await until_gone(exporter)


async def test_a_stuck_exporter_does_not_hold_up_the_gateways_stop(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    _, server = receiver
    # A 1 s export timeout bounds the exporter's flush at shutdown; a stuck one is then killed.
    env = traced_env(ollama, server, OTEL_EXPORTER_OTLP_TIMEOUT="1000", OTEL_BSP_MAX_QUEUE_SIZE="8",
                     OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4")
    async with running_gateway(env, graceful=True) as gateway:
        await chat(session, gateway, "stuck-1")
        exporter = await the_exporter(gateway)
        os.kill(exporter, signal.SIGSTOP)
        await fill_until_dropped(session, gateway)  # the pipe and the queue are full: a write is blocked
    assert gateway.returncode == 0
    await until_gone(exporter)


async def test_a_collector_that_is_down_costs_spans_never_requests(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
    tmp_path: pathlib.Path,
) -> None:
    spans, server = receiver
    spans.unavailable = True  # 503: retried with backoff, within the 1 s export timeout, then given up
    env = traced_env(ollama, server, OTEL_EXPORTER_OTLP_TIMEOUT="1000")
    async with running_gateway(env, log_dir=tmp_path) as gateway:
        await chat(session, gateway, "while-down-1")  # answered in full

        async def logged() -> bool:  # by the exporter process, on the gateway's standard error
            return "spans dropped since the last report: 2 export_failed" in gateway.output()

        await eventually(logged, RUN_TIMEOUT)
        assert spans.spans == []

        spans.unavailable = False  # back: the next spans get through
        await chat(session, gateway, "after-down-1")
        server_span, client_span = await spans.trace_of("after-down-1", 2)
        assert client_span.parent_span_id == server_span.span_id
        assert await metric(session, gateway, "gateway_trace_exporter_restarts_total") == 0


async def test_exported_from_a_thread_spans_arrive_and_what_the_collector_refuses_is_counted(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    spans, server = receiver
    env = traced_env(ollama, server, PROXY_TRACE_EXPORT="thread", OTEL_EXPORTER_OTLP_TIMEOUT="1000")
    async with running_gateway(env) as gateway:
        await chat(session, gateway, "threaded-1")
        server_span, client_span = await spans.trace_of("threaded-1", 2)
        assert client_span.parent_span_id == server_span.span_id
        assert exporters_of(gateway.process.pid) == []  # no child process

        spans.unavailable = True
        await chat(session, gateway, "threaded-down-1")  # answered in full

        async def counted() -> bool:
            return await metric(session, gateway, "gateway_trace_spans_dropped_total", reason="export_failed") == 2

        await eventually(counted, RUN_TIMEOUT)


def captured_prompt(number: int, size: int) -> WireSpan:
    """A span with its prompt captured (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)."""
    return ("chat gemma3:1b", number + 1, number + 1, 1, "", 0, False, CLIENT, 1_000, 2_000,
            {"gateway.request_id": f"long-{number}", "gen_ai.input.messages": "p" * size}, (), 0, None)


async def test_spans_over_the_pipes_frame_limit_go_in_parts_and_one_over_it_alone_is_counted(
    receiver: tuple[OtlpReceiver, TestServer],
) -> None:
    """Long prompts captured: a batch of them is more than one frame of the pipe (64 MiB), and
    each export request to the collector is at most 4 MiB."""
    spans, server = receiver
    dropped: Counter[str] = Counter()
    exporter = ExporterProcess({
        "endpoint": str(server.make_url("/v1/traces")), "headers": (), "export_timeout": 10.0, "export_every": 0.05,
        "queue_size": 2048, "batch_size": 512, "resource": (("service.name", "gateway-under-test"),),
        "version": "1.2.3"}, lambda reason, count: dropped.update({reason: count}))
    try:
        batch = [captured_prompt(n, 1024 * 1024) for n in range(70)] + [captured_prompt(70, MAX_FRAME)]
        assert await asyncio.to_thread(exporter.deliver, batch)
        assert dropped == {"too_large": 1}
        await spans.wait_until(lambda received: len(received) == 70, limit=RUN_TIMEOUT)
        assert sorted(s.attributes["gateway.request_id"] for s in spans.spans) == sorted(f"long-{n}" for n in range(70))
        assert all(len(s.attributes["gen_ai.input.messages"]) == 1024 * 1024 for s in spans.spans)
        assert max(spans.spans_per_request) == 3  # 3 spans of 1 MiB fit in a 4 MiB export request, 4 do not
    finally:
        await asyncio.to_thread(exporter.shutdown, 5.0)


async def test_a_collector_stuck_at_the_stop_holds_up_an_exporting_thread_no_longer_than_the_export_timeout(
    ollama: RunningUpstream, receiver: tuple[OtlpReceiver, TestServer], session: aiohttp.ClientSession,
) -> None:
    spans, server = receiver
    spans.stuck = asyncio.Event()  # reads each export and never answers
    # Exports a minute apart: the stop sends these spans, into a collector that never answers; unbounded,
    # the stop would never end (running_gateway's stop then kills it and raises).
    env = traced_env(ollama, server, PROXY_TRACE_EXPORT="thread", OTEL_EXPORTER_OTLP_TIMEOUT="1000",
                     OTEL_BSP_SCHEDULE_DELAY="60000")
    async with running_gateway(env, graceful=True) as gateway:
        await chat(session, gateway, "stuck-at-stop-1")
    assert gateway.returncode == 0
    assert spans.spans == []
    spans.stuck.set()

"""A real fleet for tests: gateway processes (`python -m proxy`) sharing a real Redis, and a
real nginx running deploy/fleet/nginx-fleet.conf to balance them round-robin, every file
of it in a temporary directory.

Nothing here is a stand-in: the processes are what a deployment runs (deploy/fleet/).
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
from typing import Any

import aiohttp
from attrs import define, field
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway_process import spawn
from tests.support.nginx_server import running_nginx, shipped_with
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.tenant_keys import ADMIN, bearer
from tests.support.waiting import eventually

SHIPPED = ROOT / "deploy" / "fleet" / "nginx-fleet.conf"

def render_fleet_site(gateway_ports: list[int], listen_port: int) -> str:
    """deploy/fleet/nginx-fleet.conf with compose's names replaced by this machine's ports.

    Debian's nginx predates `resolve` (1.27.3), so the replicas are listed instead of
    resolved by name; every other line is the shipped one.
    """
    return shipped_with(SHIPPED, {
        "resolver 127.0.0.11 valid=5s ipv6=off;": "",
        "server gateway:8000 resolve;": " ".join(f"server 127.0.0.1:{port};" for port in gateway_ports),
        "listen 8080;": f"listen 127.0.0.1:{listen_port};",
    })


@define
class Gateway:
    port: int
    log_dir: pathlib.Path  # its stdout and stderr, kept across restarts
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@define
class Fleet:
    directory: pathlib.Path
    env: dict[str, str]
    size: int
    gateways: list[Gateway] = field(factory=list)
    port: int = 0
    _nginx: contextlib.AsyncExitStack = field(factory=contextlib.AsyncExitStack)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.gateways = [Gateway(port=free_port(), log_dir=self.directory / f"gateway-{i}") for i in range(self.size)]
        for gateway in self.gateways:
            await self._start_gateway(gateway)
        await self._start_nginx()
        async with aiohttp.ClientSession() as session:
            for gateway in self.gateways:  # every replica has counted the whole fleet
                await eventually(lambda gateway=gateway: self._sees_fleet(session, gateway), limit=30)

    async def _start_gateway(self, gateway: Gateway) -> None:
        gateway.log_dir.mkdir(exist_ok=True)
        gateway.process = (await spawn(self.env, port=gateway.port, log_dir=gateway.log_dir)).process

    async def _sees_fleet(self, session: aiohttp.ClientSession, gateway: Gateway) -> bool:
        try:
            health = await self.health(session, gateway)
        except aiohttp.ClientConnectionError:
            return False
        return bool(health["redis"]["up"] and health["redis"]["replicas"] == self.size)

    async def metrics(self, session: aiohttp.ClientSession, gateway: Gateway) -> dict[tuple[str, str], float]:
        """{(sample name, its labels as sorted "k=v" pairs): value} from the gateway's /metrics."""
        async with session.get(f"{gateway.url}/metrics") as response:
            text = await response.text()
        return {
            (sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
        }

    async def health(self, session: aiohttp.ClientSession, gateway: Gateway) -> dict[str, Any]:
        async with session.get(f"{gateway.url}/api/v1/health", headers=bearer(ADMIN)) as response:
            body: dict[str, Any] = await response.json()
            return body

    async def _start_nginx(self) -> None:
        self.port = free_port()
        prefix = self.directory / "nginx"
        prefix.mkdir()
        site = render_fleet_site([g.port for g in self.gateways], self.port)
        await self._nginx.enter_async_context(running_nginx(prefix, site, self.port))

    async def kill_gateway(self, gateway: Gateway) -> None:
        """As a crash: SIGKILL, no draining, nothing settled."""
        assert gateway.process is not None
        gateway.process.kill()
        await gateway.process.wait()

    async def stop(self) -> None:
        await self._nginx.aclose()
        for gateway in self.gateways:
            if gateway.process is not None and gateway.process.returncode is None:
                gateway.process.send_signal(signal.SIGTERM)
        for gateway in self.gateways:
            if gateway.process is not None:
                try:
                    await asyncio.wait_for(gateway.process.wait(), 30)
                except TimeoutError:
                    gateway.process.kill()
                    await gateway.process.wait()

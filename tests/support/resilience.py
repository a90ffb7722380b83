"""What the fault and resilience tests share: a minimal request, and a check that nothing
is left in flight after a failure."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient


def ask(model: str) -> dict[str, str]:
    return {"model_id": model, "input_data": "hi"}


async def assert_nothing_in_flight(gateway: TestClient) -> None:
    """Every counter of requests in flight is back to zero (checked until it settles)."""
    async with asyncio.timeout(10):
        while True:
            body = await (await gateway.get("/api/v1/health")).json()
            counts = [body["in_flight"], *(b["in_flight"] for b in body["backends"])]
            if not any(counts):
                return
            await asyncio.sleep(0.01)


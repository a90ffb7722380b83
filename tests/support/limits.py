"""What the limit tests share: the request they send, what it reserves and uses, and the
checks of a refusal and of a metric."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from prometheus_client import REGISTRY

RESERVED = 18  # the reservation of ask(): prompt estimate 8 + max_tokens 10

USED = 12  # what the OpenAI test server reports using



def ask(model: str = "gpt-test", max_tokens: int = 10) -> dict[str, Any]:
    return {"model_id": model, "input_data": "hi", "parameters": {"max_tokens": max_tokens}}


async def assert_rate_limited(response: ClientResponse, limit: str) -> dict[str, Any]:
    assert response.status == 429, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["code"] == "rate_limited"
    assert body["limit"] == limit
    assert body["retryable"] is True
    assert int(response.headers["Retry-After"]) >= 1
    assert body["retry_after"] == int(response.headers["Retry-After"])
    return body


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


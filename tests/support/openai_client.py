"""The official `openai` client, pointed at an in-process gateway."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from openai import AsyncOpenAI

from tests.support.app import TOKEN


def client_for(gateway: TestClient, token: str = TOKEN) -> AsyncOpenAI:
    # No retries: every answer the test sees is the gateway's first.
    return AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key=token, max_retries=0)

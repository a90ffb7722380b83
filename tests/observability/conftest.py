"""What the tracing tests share: an OTLP/HTTP receiver decoding what the gateway exports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from tests.support.otlp_receiver import OtlpReceiver


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[OtlpReceiver, TestServer]:
    receiver = OtlpReceiver()
    return receiver, await aiohttp_server(receiver.app())

"""The in-process gateway's test token and the types of the fixtures in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient
from attrs import define
from yarl import URL

from tests.support.upstreams.recorder import Recorder

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@define
class RunningUpstream:
    url: URL
    recorder: Recorder


GatewayFactory = Callable[..., Awaitable[TestClient]]

"""The Octomil Python SDK, unchanged, pointed at the gateway: stream_predict and embed work.

The SDK runs as a separate process from its own environment (`make test` builds it and
sets OCTOMIL_SDK_PYTHON), talking HTTP to the gateway like any deployed client.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys

import pytest
from aiohttp.test_utils import TestClient

from tests.support.app import TOKEN
from tests.support.paths import ROOT
from tests.support.upstreams.ollama import transcript

SDK_PYTHON = os.environ.get("OCTOMIL_SDK_PYTHON")
CLIENT = ROOT / "tests" / "support" / "sdk_client.py"

pytestmark = pytest.mark.skipif(not SDK_PYTHON, reason="OCTOMIL_SDK_PYTHON is not set (make test sets it)")


async def test_stream_predict_and_embed_work_unchanged(gateway: TestClient, tmp_path: pathlib.Path) -> None:
    base = str(gateway.make_url("/"))
    # HOME and the cache go to a temporary folder: the SDK writes an install id and a cache there.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "OCTOMIL_CACHE_DIR": str(tmp_path / "cache")}
    process = await asyncio.create_subprocess_exec(
        SDK_PYTHON or sys.executable, str(CLIENT), base, TOKEN,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    result = json.loads(stdout)

    streamed = result["streamed"]
    assert "".join(t["token"] for t in streamed) == "2 + 2 = 4\n"
    assert [t["done"] for t in streamed] == [False] * (len(streamed) - 1) + [True]
    assert {t["provider"] for t in streamed} == {"ollama"}
    assert isinstance(streamed[-1]["latency_ms"], float | int)
    assert result["chat"] == "2 + 2 = 4\n"

    recorded = json.loads(transcript("embed_list")["body"])
    assert result["embeddings"] == [768, 768]
    assert result["first_values"] == [v[:3] for v in recorded["embeddings"]]
    assert result["usage"]["prompt_tokens"] == recorded["prompt_eval_count"]
    # The SDK logs a warning on "[DONE]"; the gateway never sends it.
    assert b"Failed to parse SSE data" not in stderr

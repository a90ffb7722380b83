"""The routing table: one public name for clients, each backend's own name upstream.

The upstream test servers record the model name each request carried; that record is
what these tests read.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys

import pytest
from aiohttp.test_utils import TestClient

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.paths import ROOT
from tests.support.sse import events

INFER = "/api/v1/inference"

TABLE = """
unknown_models = "refuse"

[models."phi-4-mini"]
kinds = ["chat"]
max_tokens = { default = 64, max = 128 }
backends = [
  { backend = "ollama", model = "missing-phi4-mini" },
  { backend = "openai", model = "gpt-4o-mini" },
]

[models."cloud-only"]
backends = [{ backend = "openai", model = "gpt-test" }]

[models."embed-small"]
kinds = ["embeddings"]
backends = [
  { backend = "ollama", model = "nomic-embed-text" },
  { backend = "openai", model = "text-embedding-3-small" },
]
"""


@pytest.fixture
def routes_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "routes.toml"
    path.write_text(TABLE)
    return path


@pytest.fixture
async def routed(
    make_gateway: GatewayFactory, ollama: RunningUpstream, openai: RunningUpstream, routes_file: pathlib.Path,
) -> TestClient:
    return await make_gateway(ollama_base_url=ollama.url, openai_endpoint=openai.url, routes_file=str(routes_file),
                              routes_reload=0.02)


async def test_a_mapped_fallback_reaches_the_second_backend_under_its_own_name(
    routed: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    response = await routed.post(INFER, json={"model_id": "phi-4-mini", "input_data": "hi"})
    assert response.status == 200
    body = await response.json()
    assert body["provider"] == "openai"
    assert body["model_id"] == "phi-4-mini"  # the client's name, not a backend's
    # The replayed Ollama 404s "missing*" models: the record of names shows the mapping.
    assert ollama.recorder.models() == ["missing-phi4-mini"]
    assert openai.recorder.models() == ["gpt-4o-mini"]


async def test_a_model_on_one_backend_never_touches_the_other(
    routed: TestClient, ollama: RunningUpstream, openai: RunningUpstream,
) -> None:
    response = await routed.post("/api/v1/inference/stream", json={"model_id": "cloud-only", "input_data": "hi"})
    assert events(await response.read())[-1]["provider"] == "openai"
    assert ollama.recorder.requests == []
    assert openai.recorder.models() == ["gpt-test"]


async def test_max_tokens_gets_the_models_default_and_is_held_to_its_ceiling(
    routed: TestClient, openai: RunningUpstream,
) -> None:
    await routed.post(INFER, json={"model_id": "phi-4-mini", "input_data": "hi"})
    await routed.post(INFER, json={"model_id": "phi-4-mini", "input_data": "hi", "parameters": {"max_tokens": 4096}})
    await routed.post(INFER, json={"model_id": "phi-4-mini", "input_data": "hi", "parameters": {"max_tokens": 16}})
    assert [r.json["max_tokens"] for r in openai.recorder.requests] == [64, 128, 16]


async def test_an_unlisted_model_is_refused_when_the_table_says_so(routed: TestClient) -> None:
    response = await routed.post(INFER, json={"model_id": "gemma3:1b", "input_data": "hi"})
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "model_not_found"
    assert "not in the routing table" in body["message"]


async def test_a_model_is_only_served_for_its_kinds(routed: TestClient, ollama: RunningUpstream) -> None:
    chat = await routed.post(INFER, json={"model_id": "embed-small", "input_data": "hi"})
    assert chat.status == 404
    assert "serves embeddings, not chat" in (await chat.json())["message"]
    embedded = await routed.post("/api/v1/embeddings", json={"model_id": "embed-small", "input": "Hello world"})
    assert embedded.status == 200
    assert ollama.recorder.models() == ["nomic-embed-text"]


async def test_without_a_table_names_pass_through_unchanged(
    gateway: TestClient, ollama: RunningUpstream,
) -> None:
    await gateway.post(INFER, json={"model_id": "gemma3:1b", "input_data": "hi"})
    assert ollama.recorder.models() == ["gemma3:1b"]


def rewrite(path: pathlib.Path, text: str, stamp: int) -> None:
    """New contents with a new mtime, even within the file system's time resolution."""
    path.write_text(text)
    os.utime(path, (stamp, stamp))


async def test_a_changed_file_is_reloaded_and_a_bad_change_is_ignored(
    routed: TestClient, openai: RunningUpstream, routes_file: pathlib.Path,
) -> None:
    rewrite(routes_file, TABLE.replace('model = "gpt-test"', 'model = "gpt-renamed"'), stamp=1)

    async def cloud_only_name() -> str:
        await routed.post(INFER, json={"model_id": "cloud-only", "input_data": "hi"})
        return openai.recorder.models()[-1]

    for _ in range(500):  # bounded: up to about 10 s of 0.02 s reload periods
        if await cloud_only_name() == "gpt-renamed":
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the changed routing file was never reloaded")

    rewrite(routes_file, "[models.broken\n", stamp=2)
    await asyncio.sleep(0.2)  # several reload periods
    assert await cloud_only_name() == "gpt-renamed"  # the last good table stays in force


async def test_models_lists_the_mapping_and_what_each_backend_has(routed: TestClient) -> None:
    response = await routed.get("/api/v1/models")
    assert response.status == 200
    body = await response.json()
    assert body["routing"] == "table"
    by_name = {m["model_id"]: m for m in body["models"]}
    assert set(by_name) == {"phi-4-mini", "cloud-only", "embed-small"}
    assert by_name["cloud-only"]["backends"] == [{"backend": "openai", "model": "gpt-test", "available": True}]
    assert by_name["phi-4-mini"]["backends"][0] == {
        "backend": "ollama", "model": "missing-phi4-mini", "available": False}
    assert by_name["phi-4-mini"]["max_tokens"] == {"default": 64, "max": 128}
    assert body["backends"]["ollama"] == ["qwen3:32b"]  # the replayed /api/tags
    assert body["backends"]["openai"] == ["gpt-test"]


@pytest.mark.parametrize(("table", "named"), [
    (TABLE.replace('backend = "openai", model = "gpt-test"', 'backend = "opneai", model = "gpt-test"'),
     "line 13: models.'cloud-only'.backends[0].backend 'opneai' is not a configured backend"),
    (TABLE.replace('kinds = ["embeddings"]', 'kinds = ["embedding"]'),
     "line 16: models['embed-small'].kinds[0]: must be one of 'chat', 'embeddings'"),
    (TABLE.replace("max = 128", "max = 32"),
     "line 6: models.'phi-4-mini'.max_tokens.default exceeds max_tokens.max"),
    ("[models.x\n", "Expected ']'"),
])
def test_an_invalid_table_stops_start_up_naming_the_line_and_field(
    tmp_path: pathlib.Path, table: str, named: str,
) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(table)
    env = {"PATH": os.environ["PATH"], "PROXY_API_TOKENS": "t", "OLLAMA_BASE_URL": "http://127.0.0.1:1",
           "OPENAI_API_ENDPOINT": "http://127.0.0.1:1/v1", "PROXY_ROUTES_FILE": str(path), "PROXY_PORT": "1"}
    result = subprocess.run([sys.executable, "-m", "proxy"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr

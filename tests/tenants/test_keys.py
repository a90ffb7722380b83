"""API keys as tenants: the keys file, its reloads, the `keys` command, and what a key may do.

A key is known by the SHA-256 of its secret; the secret itself is never stored. Plain
PROXY_API_TOKENS keep working next to the file. Every path under /api/v1 and /v1 needs a
key; a key limited to some models is refused the others with 403 before any upstream is
asked.
"""

from __future__ import annotations

import asyncio
import pathlib
import signal
import subprocess

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.tenants.keyring import KeyRing, KeysError, parse_keys
from tests.support.app import AUTH, GatewayFactory, RunningUpstream
from tests.support.gateway_process import run_to_exit, spawn
from tests.support.ports import free_port
from tests.support.tenant_keys import (
    ADMIN,
    bearer,
    keys_toml,
    read_text,
    secret_of,
    write_bytes,
    write_keys,
    write_text,
)
from tests.support.waiting import eventually

INFER = "/api/v1/inference"
ASK = {"model_id": "gpt-test", "input_data": "hi"}


@pytest.fixture
def keys_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_keys(tmp_path / "keys.toml", {
        "alice": {"requests_per_minute": 100},
        "narrow": {"models": ["gpt-test"]},
    })


@pytest.fixture
async def keyed(make_gateway: GatewayFactory, openai: RunningUpstream, keys_path: pathlib.Path) -> TestClient:
    """A gateway with a keys file and the plain test token, and no default Authorization."""
    return await make_gateway(headers={}, openai_endpoint=openai.url, keys_file=str(keys_path), keys_reload=0.02)


def run_keys(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_to_exit("keys", *args, **(env or {}))


async def accepted(client: TestClient, headers: dict[str, str]) -> bool:
    response = await client.get("/api/v1/models", headers=headers)
    assert response.status in (200, 401)
    return response.status == 200


async def wait_for_acceptance(client: TestClient, headers: dict[str, str], wanted: bool) -> None:
    async def reached() -> bool:
        return await accepted(client, headers) == wanted

    await eventually(reached)


async def test_a_key_from_the_file_and_a_plain_token_are_both_accepted(keyed: TestClient) -> None:
    for headers in (bearer("alice"), AUTH):
        response = await keyed.post(INFER, json=ASK, headers=headers)
        assert response.status == 200, await response.text()


async def test_a_wrong_secret_is_refused_and_the_file_holds_no_secret(
    keyed: TestClient, keys_path: pathlib.Path, openai: RunningUpstream,
) -> None:
    response = await keyed.post(INFER, json=ASK, headers={"Authorization": f"Bearer {secret_of('alice')}x"})
    assert response.status == 401
    assert (await response.json())["code"] == "unauthorized"
    assert openai.recorder.requests == []
    assert secret_of("alice") not in read_text(keys_path)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models", "/v1"])
async def test_paths_under_v1_need_a_key_too(keyed: TestClient, path: str) -> None:
    refused = await keyed.get(path)
    assert refused.status == 401
    refusal = await refused.json()
    # OpenAI's shape under /v1/, the contract's for the bare /v1.
    assert (refusal["error"] if path.startswith("/v1/") else refusal)["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # With a key, the request gets past auth, to whatever the route answers.
    allowed = await keyed.get(path, headers=bearer("alice"))
    assert allowed.status != 401
    body = await allowed.json()
    assert "error" not in body or body["error"]["code"] != "unauthorized"


async def test_a_path_that_only_starts_like_v1_is_not_taken_for_it(keyed: TestClient) -> None:
    response = await keyed.get("/v1beta/models")
    assert response.status == 404
    assert (await response.json())["code"] == "not_found"  # the contract's shape: not a /v1 path


async def test_a_key_is_refused_models_it_may_not_use_before_any_upstream_is_asked(
    keyed: TestClient, openai: RunningUpstream,
) -> None:
    allowed = await keyed.post(INFER, json=ASK, headers=bearer("narrow"))
    assert allowed.status == 200
    for path, body in ((INFER, {**ASK, "model_id": "other-model"}),
                       ("/api/v1/inference/stream", {**ASK, "model_id": "other-model"}),
                       ("/api/v1/embeddings", {"model_id": "embed-model", "input": "hi"})):
        refused = await keyed.post(path, json=body, headers=bearer("narrow"))
        assert refused.status == 403
        error = await refused.json()
        assert error["code"] == "forbidden"
        assert "narrow" in error["message"] and body["model_id"] in error["message"]
    assert len(openai.recorder.requests) == 1


async def test_a_batch_item_for_a_forbidden_model_fails_alone(keyed: TestClient) -> None:
    response = await keyed.post("/api/v1/inference/batch", headers=bearer("narrow"),
                                json={"model_id": "other-model", "inputs": [{"input_data": "hi"}]})
    assert response.status == 200
    [item] = (await response.json())["results"]
    assert item["status"] == 403


async def test_keys_added_to_the_file_are_accepted_without_a_restart(
    keyed: TestClient, keys_path: pathlib.Path,
) -> None:
    assert not await accepted(keyed, bearer("newcomer"))
    write_keys(keys_path, {"alice": {}, "newcomer": {}})
    await wait_for_acceptance(keyed, bearer("newcomer"), True)
    write_keys(keys_path, {"newcomer": {}})  # and a removed key stops working
    await wait_for_acceptance(keyed, bearer("alice"), False)


async def test_a_broken_change_to_the_keys_file_keeps_the_keys_in_force(
    keyed: TestClient, keys_path: pathlib.Path, caplog: pytest.LogCaptureFixture,
) -> None:
    write_text(keys_path, keys_toml({"alice": {"requests_per_minute": "lots"}}))

    async def refusals() -> set[str]:
        return {r.getMessage() for r in caplog.records if "keys not reloaded" in r.getMessage()}

    [refusal] = await eventually(refusals)
    assert "keys.alice.requests_per_minute" in refusal
    assert await accepted(keyed, bearer("narrow"))


async def test_a_keys_file_that_is_not_utf8_is_refused_and_the_file_is_still_watched(
    keyed: TestClient, keys_path: pathlib.Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # Saved by an editor in Latin-1: a comment with an e-acute is not UTF-8.
    write_bytes(keys_path, b"# caf\xe9\n" + keys_toml({"alice": {}}).encode())

    async def refusals() -> list[str]:
        return [r.getMessage() for r in caplog.records if "keys not reloaded" in r.getMessage()]

    [refusal, *_] = await eventually(refusals)
    assert "utf-8" in refusal.lower()
    assert await accepted(keyed, bearer("narrow"))  # the keys in force stay
    write_keys(keys_path, {"newcomer": {}})  # the fixed file is still picked up
    await wait_for_acceptance(keyed, bearer("newcomer"), True)


async def test_keys_add_prints_the_secret_once_and_stores_only_its_hash(
    make_gateway: GatewayFactory, openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "keys.toml"
    added = run_keys("add", "carol", "--tokens-per-minute", "5000", "--model", "gpt-test", env={
        "PROXY_KEYS_FILE": str(path)})
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("ogw_") and len(secret) > 40 and "\n" not in secret
    assert "only time" in added.stderr and secret not in added.stderr
    stored = path.read_text()
    assert secret not in stored
    [tenant] = parse_keys(stored).values()
    assert (tenant.name, tenant.limits.tokens_per_minute, tenant.models) == ("carol", 5000, frozenset({"gpt-test"}))
    listed = run_keys("list", "--file", str(path))
    assert listed.stdout.split("\t")[0] == "carol" and "sha256" not in listed.stdout

    client = await make_gateway(headers={}, openai_endpoint=openai.url, api_tokens=(), keys_file=str(path))
    response = await client.post(INFER, json=ASK, headers={"Authorization": f"Bearer {secret}"})
    assert response.status == 200


def test_keys_add_refuses_a_name_taken_and_leaves_the_file_as_it_was(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "keys.toml"
    assert run_keys("add", "dave", "--file", str(path)).returncode == 0
    before = path.read_text()
    again = run_keys("add", "dave", "--file", str(path))
    assert again.returncode == 2 and "exists already" in again.stderr and again.stdout == ""
    assert path.read_text() == before


@pytest.mark.parametrize(("table", "problem"), [
    ('[keys.a]\nhash = "sha256:abc"\n', "line 2: keys.a.hash: expected 'sha256:'"),
    ("[keys.a]\nrequests_per_minute = 5\n", "keys.a.hash: required field missing"),
    ('[keys.a]\nhash = "sha256:' + "0" * 64 + '"\nconcurrent_requests = 0\n', "line 3: keys.a.concurrent_requests"),
    ('[keys.a]\nhash = "sha256:' + "0" * 64 + '"\nadmin = "yes"\n', "line 3: keys.a.admin: expected true or false"),
    ('[keys.a]\nhash = "sha256:' + "0" * 64 + '"\nrpm = 5\n', "line 3: keys.a.rpm: unknown field"),
    ('[keys.default]\nhash = "sha256:' + "0" * 64 + '"\n', "keys.default: the name 'default' is reserved"),
    ('[keys.a]\nhash = "sha256:' + "0" * 64 + '"\n[keys.b]\nhash = "sha256:' + "0" * 64 + '"\n',
     "keys.b.hash: the same secret as keys.a"),
    ("[keys.a\n", "keys.toml: Expected ']'"),
])
def test_a_keys_file_that_does_not_check_out_names_the_line_and_field(table: str, problem: str) -> None:
    with pytest.raises(KeysError) as refused:
        parse_keys(table, "keys.toml")
    assert problem in str(refused.value)


@pytest.mark.parametrize(("content", "problem"), [
    (b'[keys.a]\nhash = "sha256:' + b"0" * 64 + b'"\ntokens_per_minute = -1\n',
     "{path}: line 3: keys.a.tokens_per_minute"),
    (b"# caf\xe9\n", "PROXY_KEYS_FILE={path}: not UTF-8 text"),
], ids=["bad-field", "not-utf8"])
def test_the_gateway_refuses_to_start_with_a_bad_keys_file(
    tmp_path: pathlib.Path, content: bytes, problem: str,
) -> None:
    path = tmp_path / "keys.toml"
    path.write_bytes(content)
    result = run_to_exit(PROXY_KEYS_FILE=str(path), OPENAI_API_ENDPOINT="http://127.0.0.1:9/v1",
                         PROXY_PORT=str(free_port()))
    assert result.returncode == 2, result.stderr
    assert problem.format(path=path) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_keys_file_is_enough_to_start_without_plain_tokens(tmp_path: pathlib.Path) -> None:
    path = write_keys(tmp_path / "keys.toml", {})
    ring = KeyRing.load(str(path))
    tenant = ring.identify(secret_of(ADMIN))
    assert tenant is not None and tenant.admin
    assert ring.identify("anything else") is None


async def test_sighup_reloads_the_keys_file_of_a_running_gateway_and_is_harmless_while_it_starts(
    openai: RunningUpstream, tmp_path: pathlib.Path,
) -> None:
    path = write_keys(tmp_path / "keys.toml", {})
    env = {"PROXY_KEYS_FILE": str(path),
           "PROXY_KEYS_RELOAD": "3600",  # only the signal can make it re-read the file in time
           "OLLAMA_BASE_URL": "off", "OPENAI_API_ENDPOINT": str(openai.url), "PROXY_WORKERS": "2"}
    gateway = await spawn(env, stdout_pipe=True)
    process = gateway.process
    assert process.stdout is not None
    assert b"listening" in await asyncio.wait_for(process.stdout.readline(), 30)
    # The workers are starting now: a SIGHUP must not stop them (its default action would).
    process.send_signal(signal.SIGHUP)
    try:
        base = gateway.base
        # A new connection per request, so the kernel spreads them over both workers.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:

            async def status(name: str) -> int:
                async with session.get(f"{base}/api/v1/models", headers=bearer(name)) as response:
                    return response.status

            async with asyncio.timeout(30):
                while True:
                    try:
                        assert await status(ADMIN) == 200
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            assert await status("late") == 401
            write_keys(path, {"late": {}})
            process.send_signal(signal.SIGHUP)  # to the supervisor, which passes it to both workers
            async def both_reloaded() -> bool:
                # Every answer is 200, whichever worker gives it.
                return [await status("late") for _ in range(10)] == [200] * 10

            await eventually(both_reloaded)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)

"""Start-up configuration, through the real entry point `python -m proxy`.

A configuration that cannot make a working gateway stops start-up with exit status 2 and
one line on stderr that names the variable; a valid one serves. Each run gets an
environment built from scratch (PATH plus the variables under test), and no secret it
was given ever shows in its output.
"""

from __future__ import annotations

import pathlib
import subprocess

import aiohttp
import orjson
import pytest

from proxy.settings.config import Settings
from tests.support.gateway_process import assert_refused_naming, run_to_exit, running_gateway
from tests.support.ports import refused_url

API_TOKEN = "cfg-token-7f3a9c"
OPENAI_KEY = "sk-cfg-secret-51b2"
SECRETS = (API_TOKEN, OPENAI_KEY)


def refused_naming(result: subprocess.CompletedProcess[str], *variables: str) -> str:
    return assert_refused_naming(result, *variables, secrets=SECRETS)
# --- refused configurations ---------------------------------------------------------------------


def test_no_api_tokens_refuses_to_start_and_says_how_to_fix_it() -> None:
    line = refused_naming(run_to_exit(OPENAI_API_KEY=OPENAI_KEY), "PROXY_API_TOKENS")
    assert "PROXY_AUTH_DISABLED" in line


def test_api_tokens_of_only_separators_count_as_none() -> None:
    refused_naming(run_to_exit(PROXY_API_TOKENS=" , ,"), "PROXY_API_TOKENS")


@pytest.mark.parametrize(("variables", "named"), [
    pytest.param({"PROXY_PORT": "abc"}, ["PROXY_PORT"], id="port-not-a-number"),
    pytest.param({"PROXY_PORT": "70000"}, ["PROXY_PORT"], id="port-out-of-range"),
    pytest.param({"LLM_BACKEND_TIMEOUT": "-1"}, ["LLM_BACKEND_TIMEOUT"], id="timeout-negative"),
    pytest.param({"LLM_BACKEND_TIMEOUT": "0"}, ["LLM_BACKEND_TIMEOUT"], id="timeout-zero"),
    pytest.param({"LLM_BACKEND_TIMEOUT": "nan"}, ["LLM_BACKEND_TIMEOUT"], id="timeout-nan"),
    pytest.param({"LLM_BACKEND_TIMEOUT": "soon"}, ["LLM_BACKEND_TIMEOUT"], id="timeout-not-a-number"),
    pytest.param({"OLLAMA_BASE_URL": "ftp://x"}, ["OLLAMA_BASE_URL"], id="ollama-url-not-http"),
    pytest.param({"OLLAMA_BASE_URL": "localhost:11434"}, ["OLLAMA_BASE_URL"], id="ollama-url-no-scheme"),
    pytest.param({"OPENAI_API_ENDPOINT": "not a url"}, ["OPENAI_API_ENDPOINT"], id="openai-url-garbage"),
    pytest.param({"OLLAMA_BASE_URL": "off"}, ["OLLAMA_BASE_URL", "OPENAI_API_ENDPOINT"], id="no-backend"),
    pytest.param({"PROXY_AUTH_DISABLED": "maybe"}, ["PROXY_AUTH_DISABLED"], id="auth-disabled-not-a-bool"),
    pytest.param({"PROXY_CORS_ORIGINS": "app.example.com"}, ["PROXY_CORS_ORIGINS"], id="cors-origin-no-scheme"),
    pytest.param({"PROXY_CORS_ORIGINS": "https://app.example.com/app"}, ["PROXY_CORS_ORIGINS"],
                 id="cors-origin-with-path"),
    pytest.param({"PROXY_CORS_ORIGINS": "https://*.example.com"}, ["PROXY_CORS_ORIGINS"], id="cors-origin-wildcard"),
    pytest.param({"PROXY_CORS_ORIGINS": "null"}, ["PROXY_CORS_ORIGINS"], id="cors-origin-null"),
    pytest.param({"PROXY_CORS_ORIGINS": "ftp://files.example.com"}, ["PROXY_CORS_ORIGINS"], id="cors-origin-not-http"),
    pytest.param({"PROXY_CORS_ORIGINS": "*,https://app.example.com"}, ["PROXY_CORS_ORIGINS"],
                 id="cors-star-among-origins"),
    pytest.param({"PROXY_CORS_ORIGINS": "*", "PROXY_AUTH_DISABLED": "true"},
                 ["PROXY_CORS_ORIGINS", "PROXY_AUTH_DISABLED"], id="cors-star-without-auth"),
    pytest.param({"PROXY_CORS_MAX_AGE": "-1"}, ["PROXY_CORS_MAX_AGE"], id="cors-max-age-negative"),
    pytest.param({"PROXY_CORS_MAX_AGE": "100000"}, ["PROXY_CORS_MAX_AGE"], id="cors-max-age-over-a-day"),
    pytest.param({"PROXY_CORS_MAX_AGE": "soon"}, ["PROXY_CORS_MAX_AGE"], id="cors-max-age-not-a-number"),
    pytest.param({"PROXY_PLAYGROUND": "maybe"}, ["PROXY_PLAYGROUND"], id="playground-not-a-bool"),
])
def test_invalid_setting_exits_2_with_one_line_naming_it(variables: dict[str, str], named: list[str]) -> None:
    result = run_to_exit(PROXY_API_TOKENS=API_TOKEN, OPENAI_API_KEY=OPENAI_KEY, **variables)
    refused_naming(result, *named)


def test_every_bad_variable_is_named_in_one_run() -> None:
    refused_naming(run_to_exit(PROXY_PORT="abc", LLM_BACKEND_TIMEOUT="-1"), "PROXY_PORT", "PROXY_API_TOKENS",
                          "LLM_BACKEND_TIMEOUT")


def test_refused_url_does_not_echo_its_password() -> None:
    result = run_to_exit(PROXY_API_TOKENS=API_TOKEN, OLLAMA_BASE_URL="ftp://admin:hunter2-secret@ollama.internal")
    line = refused_naming(result, "OLLAMA_BASE_URL")
    assert "hunter2-secret" not in line


def test_refused_origin_does_not_echo_its_password() -> None:
    result = run_to_exit(PROXY_API_TOKENS=API_TOKEN, PROXY_CORS_ORIGINS="https://me:hunter2-secret@app.example.com")
    line = refused_naming(result, "PROXY_CORS_ORIGINS")
    assert "hunter2-secret" not in line


# --- a valid configuration serves ------------------------------------------------------------------


async def test_valid_configuration_serves_health_and_stops_cleanly_on_sigterm(tmp_path: pathlib.Path) -> None:
    variables = {
        "PROXY_API_TOKENS": API_TOKEN,
        "OLLAMA_BASE_URL": str(refused_url()),
        "OPENAI_API_ENDPOINT": str(refused_url()) + "/v1",
        "OPENAI_API_KEY": OPENAI_KEY,
    }
    async with running_gateway(variables, ready="/livez", log_dir=tmp_path, graceful=True) as running:
        status, body = await running.get_json("/api/v1/health", {"Authorization": f"Bearer {API_TOKEN}"})
        assert status == 503  # both backends are dead
        assert body["status"] == "unavailable"
        backends = body["backends"]
        assert isinstance(backends, list)
        assert [(b["name"], b["healthy"]) for b in backends] == [("ollama", False), ("openai", False)]
        assert OPENAI_KEY not in orjson.dumps(body).decode()

        status, body = await running.get_json("/api/v1/health", {})
        assert status == 401
        assert body["code"] == "unauthorized"
    assert running.returncode == 0  # SIGTERM is a graceful shutdown, not a crash
    output = running.output()
    assert f"listening on http://127.0.0.1:{running.port}" in output  # loopback unless told otherwise
    records = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    # The access log ran (one JSON object per line), so there was output to leak into.
    assert [(r["route"], r["status"]) for r in records if r.get("event") == "access"] == [
        ("/api/v1/health", 503), ("/api/v1/health", 401)]
    for secret in SECRETS:
        assert secret not in output
    assert "Traceback" not in output


async def test_auth_disabled_starts_without_tokens_and_serves_without_one(tmp_path: pathlib.Path) -> None:
    variables = {"PROXY_AUTH_DISABLED": "true", "OLLAMA_BASE_URL": str(refused_url())}
    async with running_gateway(variables, ready="/livez", log_dir=tmp_path, graceful=True) as running:
        status, body = await running.get_json("/api/v1/health", {})
        assert status == 503
        assert [b["name"] for b in body["backends"]] == ["ollama"]  # type: ignore[union-attr]
    assert running.returncode == 0


# --- unit level -----------------------------------------------------------------------------------


def test_default_host_is_loopback() -> None:
    assert Settings().host == "127.0.0.1"


def test_settings_repr_hides_tokens_and_api_key() -> None:
    text = repr(Settings(api_tokens=(API_TOKEN,), openai_api_key=OPENAI_KEY))
    for secret in SECRETS:
        assert secret not in text


async def test_cors_origins_are_matched_as_browsers_write_them_and_the_playground_is_served(
    tmp_path: pathlib.Path,
) -> None:
    variables = {
        "PROXY_API_TOKENS": API_TOKEN,
        "OLLAMA_BASE_URL": str(refused_url()),
        # Upper case, a default port and a trailing slash: a browser sends none of them.
        "PROXY_CORS_ORIGINS": "HTTPS://App.Example.com:443/, http://localhost:5173",
        "PROXY_CORS_MAX_AGE": "120",
        "PROXY_PLAYGROUND": "true",
    }
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    async with (
        running_gateway(variables, ready="/livez", log_dir=tmp_path, graceful=True) as running,
        aiohttp.ClientSession() as session,
    ):
        async with session.options(f"{running.base}/api/v1/inference/stream", headers=preflight) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
            assert response.headers["Access-Control-Max-Age"] == "120"
        async with session.get(f"{running.base}/playground/") as page:
            assert page.status == 200
            assert b"octomil-gateway playground" in await page.read()
    assert running.returncode == 0

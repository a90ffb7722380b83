"""The settings of keys, limits and Redis, through the real entry point: a bad value stops
start-up with exit status 2 and one line naming the variable, and never echoes a password."""

from __future__ import annotations

import pytest

from tests.support.app import GatewayFactory
from tests.support.gateway_process import assert_refused_naming, run_to_exit

API_TOKEN = "fleet-cfg-token-2b8d"
OPENAI_KEY = "sk-fleet-cfg-secret-93e1"


@pytest.mark.parametrize(("variables", "named"), [
    pytest.param({"PROXY_REDIS_FAILURE": "sometimes"}, ["PROXY_REDIS_FAILURE"], id="failure-policy-unknown"),
    pytest.param({"PROXY_REDIS_URL": "http://cache:6379"}, ["PROXY_REDIS_URL"], id="redis-url-not-redis"),
    pytest.param({"PROXY_REDIS_URL": "redis://cache:notaport/0"}, ["PROXY_REDIS_URL"], id="redis-url-bad-port"),
    pytest.param({"PROXY_REDIS_URL": "redis://[::1/0"}, ["PROXY_REDIS_URL"], id="redis-url-bad-ipv6"),
    pytest.param({"PROXY_REDIS_TIMEOUT": "0"}, ["PROXY_REDIS_TIMEOUT"], id="redis-timeout-zero"),
    pytest.param({"PROXY_REDIS_LEASE": "-5"}, ["PROXY_REDIS_LEASE"], id="redis-lease-negative"),
    pytest.param({"PROXY_REDIS_PREFIX": "two words"}, ["PROXY_REDIS_PREFIX"], id="redis-prefix-with-space"),
    pytest.param({"PROXY_KEYS_RELOAD": "never"}, ["PROXY_KEYS_RELOAD"], id="keys-reload-not-a-number"),
    pytest.param({"PROXY_RESERVED_COMPLETION_TOKENS": "0"}, ["PROXY_RESERVED_COMPLETION_TOKENS"],
                 id="reserved-completion-zero"),
    pytest.param({"PROXY_KEYS_FILE": "/nonexistent/keys.toml"}, ["PROXY_KEYS_FILE"], id="keys-file-missing"),
])
def test_invalid_fleet_setting_exits_2_naming_it(variables: dict[str, str], named: list[str]) -> None:
    result = run_to_exit(PROXY_API_TOKENS=API_TOKEN, OPENAI_API_KEY=OPENAI_KEY,
                         OPENAI_API_ENDPOINT="http://127.0.0.1:9/v1", **variables)
    assert result.returncode == 2, result.stderr
    assert all(variable in result.stderr for variable in named)
    if "PROXY_KEYS_FILE" not in variables:
        assert_refused_naming(result, *named, secrets=(API_TOKEN, OPENAI_KEY))


def test_a_refused_redis_url_does_not_echo_its_password() -> None:
    result = run_to_exit(PROXY_API_TOKENS=API_TOKEN, PROXY_REDIS_URL="http://:hunter2-secret@cache:6379/0")
    line = assert_refused_naming(result, "PROXY_REDIS_URL", secrets=(API_TOKEN, "hunter2-secret"))
    assert "hunter2-secret" not in line


async def test_health_shows_the_redis_url_without_any_password(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(
        ollama_base_url="http://127.0.0.1:9", redis_url="redis://:user-pw@127.0.0.1:9/0?password=query-pw")
    body = await (await gateway.get("/api/v1/health")).json()
    assert body["redis"]["url"] == "redis://127.0.0.1:9/0"
    assert "pw" not in str(body)


def test_a_keys_file_stands_in_for_tokens_in_the_safety_check() -> None:
    line = assert_refused_naming(run_to_exit(OPENAI_API_ENDPOINT="http://127.0.0.1:9/v1"), "PROXY_API_TOKENS")
    assert "PROXY_KEYS_FILE" in line

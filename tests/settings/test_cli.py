"""The command line: --help documents every option and variable; `check` validates the
configuration and probes the backends, with exit statuses scripts can rely on."""

from __future__ import annotations

import re

import orjson

from proxy.settings.environment import ENVIRONMENT
from tests.support.app import RunningUpstream
from tests.support.gateway_process import run_to_exit, run_to_exit_async
from tests.support.paths import ROOT
from tests.support.ports import refused_url

TOKEN = "cli-token-1234"


def test_help_documents_every_option_and_environment_variable() -> None:
    result = run_to_exit("--help")
    assert result.returncode == 0
    for variable in ENVIRONMENT:
        assert f"  {variable.name}  (default: {variable.default})" in result.stdout
    for option in ("--host", "--port", "--workers", "--log-level", "--log-format", "--routes-file"):
        assert option in result.stdout
    assert "check" in result.stdout and "serve" in result.stdout
    check_help = run_to_exit("check", "--help")
    assert "--allow-degraded" in check_help.stdout and "Exit status" in check_help.stdout


def test_the_help_the_configuration_page_and_the_configuration_name_the_same_variables() -> None:
    documented = {variable.name for variable in ENVIRONMENT}
    page = (ROOT / "docs" / "configuration.md").read_text()
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", page, re.MULTILINE))
    source = (ROOT / "proxy" / "settings" / "config.py").read_text()
    read = set(re.findall(r'"((?:PROXY|OLLAMA|OPENAI|LLM|OTEL)_[A-Z0-9_]+)"', source))
    assert documented == listed
    assert read <= documented, f"read but not documented: {read - documented}"
    assert documented - read == set(), f"documented but never read: {documented - read}"


async def test_check_probes_every_backend_and_fails_when_one_is_down(ollama: RunningUpstream) -> None:
    variables = {"PROXY_API_TOKENS": TOKEN, "OLLAMA_BASE_URL": str(ollama.url),
                 "OPENAI_API_ENDPOINT": "http://user:s3cret-pass@127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-hidden"}
    status, out, err = await run_to_exit_async("check", **variables)
    assert status == 1, err
    lines = out.splitlines()
    assert lines[0] == "configuration: valid"
    assert re.match(r"ok   ollama +http://127\.0\.0\.1:\d+ +[\d.]+ ms$", lines[1])
    assert lines[2].startswith("FAIL openai")
    assert "s3cret-pass" not in out + err and "sk-hidden" not in out + err

    status, out, _ = await run_to_exit_async("check", "--allow-degraded", "--json", **variables)
    assert status == 0
    report = orjson.loads(out)
    assert [(b["name"], b["healthy"]) for b in report["backends"]] == [("ollama", True), ("openai", False)]


async def test_check_passes_when_every_backend_answers(ollama: RunningUpstream) -> None:
    status, out, _ = await run_to_exit_async("check", PROXY_API_TOKENS=TOKEN, OLLAMA_BASE_URL=str(ollama.url))
    assert status == 0
    assert out.splitlines()[1].startswith("ok   ollama")


def test_check_refuses_an_invalid_configuration_with_status_2() -> None:
    result = run_to_exit("check", OLLAMA_BASE_URL=str(refused_url()))
    assert result.returncode == 2
    assert "PROXY_API_TOKENS is empty" in result.stderr and result.stdout == ""


def test_options_win_over_variables_before_or_after_the_subcommand() -> None:
    for args in (("--port", "70000", "check"), ("check", "--port", "70000"), ("serve", "--port", "70000")):
        result = run_to_exit(*args, PROXY_API_TOKENS=TOKEN, PROXY_PORT="8000")
        assert result.returncode == 2, args
        assert "PROXY_PORT=70000 is not a TCP port" in result.stderr

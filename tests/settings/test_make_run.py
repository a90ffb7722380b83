"""What `make run` and `python -m proxy` do when their port is taken: refuse at once, in one
line that names the port and the variable to change, before starting anything else.

A plain HTTP server holds the port and answers 2xx on every path, so a launcher that only
waited for a 2xx would take it for the gateway."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.support.gateway_process import gateway_env, run_to_exit
from tests.support.paths import ROOT
from tests.support.ports import free_port


class _AnswersEverything(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def taken_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AnswersEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_gateway_refuses_a_taken_port_in_one_line(taken_port: int) -> None:
    result = run_to_exit(PROXY_PORT=str(taken_port), PROXY_API_TOKENS="make-run-token-1234")
    assert result.returncode == 2
    assert result.stdout == ""  # no "listening on" for a port it never had
    assert result.stderr.splitlines() == [
        f"octomil-gateway: 127.0.0.1:{taken_port} is already in use; choose another with PROXY_PORT (or --port)"]


@pytest.mark.parametrize("variable", ["PROXY_PORT", "LOCAL_MODEL_PORT"])
def test_make_run_refuses_a_taken_port_before_starting_anything(taken_port: int, variable: str) -> None:
    other = {"PROXY_PORT": "LOCAL_MODEL_PORT", "LOCAL_MODEL_PORT": "PROXY_PORT"}[variable]
    result = subprocess.run(
        ["bash", "deploy/run-local.sh"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        env=gateway_env(PY=sys.executable, PROXY_API_TOKENS="make-run-token-1234",
                        **{variable: str(taken_port), other: str(free_port())}))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"port {taken_port} on 127.0.0.1 is already in use; choose another with {variable} "
        f"(e.g. {variable}={taken_port + 10} make run)"]
    # Refused before the model server or the gateway was started: nothing else was said.
    assert result.stdout == ""

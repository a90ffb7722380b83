"""Node clients (tests/support/node, installed by the Makefile's `npm ci`), each run as a
separate Node process talking HTTP to the gateway like any deployed application."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

from tests.support.paths import ROOT

NODE_CLIENTS = ROOT / "tests" / "support" / "node"


def needs_package(name: str) -> pytest.MarkDecorator:
    """Skip where the npm package is not installed (`make test` installs them all)."""
    return pytest.mark.skipif(not (NODE_CLIENTS / "node_modules" / name).is_dir(),
                              reason=f"npm {name} is not installed in tests/support/node (make test runs npm ci)")


async def run_node(script: str, *args: str) -> dict[str, Any]:
    """What the script printed: one JSON object. A script that fails fails the test, with its stderr."""
    process = await asyncio.create_subprocess_exec(
        "node", str(NODE_CLIENTS / script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ["PATH"]}, cwd=NODE_CLIENTS,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout)
    return result

"""Every example in README.md and docs/ runs against a real gateway process, so the documentation
cannot drift from the product.

Page by page: its files are written into a fresh directory, its setup examples run there, then
`python -m proxy` starts in it with the Ollama replay server and the OpenAI test server as its
backends, a token in PROXY_API_TOKENS and .dev-token, and a free PROXY_PORT; every other example
runs in page order (sh in bash, python in the project's Python) and must exit 0 and print what
the page shows (tests/docs_examples.py). Variables an example exports carry over to the next
ones and to the gateway, as in one terminal. docs/testing.md describes the markers.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys

import pytest

from tests.support.app import TOKEN, RunningUpstream
from tests.support.docs_examples import Example, Page, check_output, read_page
from tests.support.gateway_process import spawn
from tests.support.paths import ROOT
from tests.support.ports import free_port

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Set by bash itself or by the test; never carried from one example to the next.
NOT_CARRIED = {"PWD", "OLDPWD", "SHLVL", "_", "EXAMPLE_STATE"}


def test_every_page_marks_its_examples_correctly() -> None:
    problems = [problem for page in PAGES for problem in read_page(page).problems]
    assert problems == []


def test_the_pages_hold_runnable_examples() -> None:
    """The parser finds what the pages hold (a parser that found nothing would pass every page)."""
    pages = {path.name: read_page(path) for path in PAGES}
    assert [e.language for e in pages["README.md"].examples if e.phase == "run"] == ["sh", "sh", "python", "python"]
    assert any(e.output_language == "json" for e in pages["api.md"].examples)
    assert [f.name for f in pages["routing.md"].files] == ["routes.toml"]
    assert sum(e.phase != "skip" for page in pages.values() for e in page.examples) >= 30


@pytest.mark.parametrize("path", [p for p in PAGES if any(e.phase != "skip" for e in read_page(p).examples)],
                         ids=lambda p: p.name)
async def test_the_examples_of(path: pathlib.Path, ollama: RunningUpstream, openai: RunningUpstream,
                               tmp_path: pathlib.Path) -> None:
    page = read_page(path)
    port = free_port()
    env = {"PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "LANG": "C.UTF-8", "OLLAMA_BASE_URL": str(ollama.url), "OPENAI_API_ENDPOINT": str(openai.url),
           "PROXY_API_TOKENS": TOKEN, "PROXY_PORT": str(port),
           "GW": f"http://127.0.0.1:{port}", "TOKEN": TOKEN}
    for file in page.files:
        (tmp_path / file.name).write_text(file.content, encoding="utf-8")
    (tmp_path / ".dev-token").write_text(TOKEN + "\n", encoding="utf-8")  # as `make run` leaves it
    for example in examples(page, "setup"):
        env.update(await run(example, env, tmp_path))
    # In the page's directory, so that relative paths the examples exported (keys.toml) resolve.
    gateway = await spawn(env, port=port, log_dir=tmp_path, cwd=tmp_path)
    try:
        await gateway.ready()
        for example in examples(page, "run"):
            env.update(await run(example, env, tmp_path))
    finally:
        await gateway.kill()


def examples(page: Page, phase: str) -> list[Example]:
    return [example for example in page.examples if example.phase == phase]


async def run(example: Example, env: dict[str, str], work: pathlib.Path) -> dict[str, str]:
    """Run one example; return the variables it exported."""
    state = work / ".example-state"
    if example.language == "sh":
        script = f"trap 'env -0 > \"$EXAMPLE_STATE\"' EXIT\n{example.code}"
        command = ["bash", "-e", "-o", "pipefail", "-c", script]
    else:
        (work / "example.py").write_text(example.code, encoding="utf-8")
        command = [sys.executable, "example.py"]
    state.unlink(missing_ok=True)
    process = await asyncio.create_subprocess_exec(
        *command, cwd=work, env={**env, "EXAMPLE_STATE": str(state)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(90):
        out, err = await process.communicate()
    stdout = out.decode()
    assert process.returncode == 0, \
        f"{example.where()} exited {process.returncode}:\n{example.code}\nstdout:\n{stdout}\nstderr:\n{err.decode()}"
    check_output(example, stdout)
    if not state.exists():
        return {}
    exported = dict(item.split("=", 1) for item in state.read_text().split("\0") if "=" in item)
    return {name: value for name, value in exported.items() if name not in NOT_CARRIED and env.get(name) != value}

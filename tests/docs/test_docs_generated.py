"""docs/configuration.md and docs/errors.md are generated (`make docs`): the committed pages must be
exactly what the generator writes today, so a new variable or error class cannot go undocumented."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

from proxy import errors
from proxy.commands.docs import pages
from tests.support.paths import ROOT as REPO


def test_the_committed_pages_are_what_make_docs_writes() -> None:
    for path, text in pages().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is out of date: run make docs"


def test_check_mode_names_a_stale_page_and_fails(tmp_path: pathlib.Path) -> None:
    """`--check` is what CI can run: 0 on the committed pages, 1 naming the page when one is stale."""
    for name in ("configuration.md", "errors.md"):
        shutil.copy(REPO / "docs" / name, tmp_path / name)
    assert check(tmp_path).returncode == 0
    stale = tmp_path / "errors.md"
    stale.write_text(stale.read_text(encoding="utf-8").replace("| 401 |", "| 402 |"), encoding="utf-8")
    result = check(tmp_path)
    assert result.returncode == 1
    assert f"{stale} is out of date: run make docs" in result.stderr
    assert "configuration.md" not in result.stderr


def check(docs: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy.commands.docs", "--check", "--docs", str(docs)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_errors_page_has_a_row_per_error_class_with_its_status_and_code() -> None:
    rows = set(re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \| (yes|no) \|", (REPO / "docs" / "errors.md").read_text(),
                          re.MULTILINE))
    expected = {(str(errors.InvalidInput.status), "invalid_input", "no"),
                (str(errors.RateLimited.status), "rate_limited", "yes"),
                (str(errors.UpstreamTimeout.status), "request_timeout", "yes"),
                (str(errors.LimitsUnavailable.status), "limits_unavailable", "yes")}
    assert expected <= rows
    codes = {code for _, code, _ in rows}
    assert codes == {cls.code for cls in _all(errors.GatewayError)}


def _all(cls: type[errors.GatewayError]) -> list[type[errors.GatewayError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _all(child))]

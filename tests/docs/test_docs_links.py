"""Every relative link in README.md and docs/ leads to a file that exists and, when it names a
section, to a heading of that page (by GitHub's anchor rule), so moving a section breaks a test,
not a reader's click."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

from markdown_it import MarkdownIt

from tests.support.paths import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in links(page):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto: ...
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.name}: {target} (no such section in {file.name})")
    assert broken == []


def test_the_readme_links_every_documentation_page() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    pages = set((ROOT / "docs").glob("*.md"))
    assert pages - linked == set()


def links(page: pathlib.Path) -> Iterator[str]:
    for token in MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8")):
        for child in token.children or ():
            if child.type in ("link_open", "image") and (href := child.attrs.get("href") or child.attrs.get("src")):
                yield str(href)


def anchors(page: pathlib.Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
    titles = [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "heading_open"]
    return {re.sub(r"[^\w\- ]", "", title.replace("`", "").lower()).replace(" ", "-") for title in titles}


# Files the pages tell people to make; they are not in the repository.
MADE_BY_USERS = {"deploy/gateway.env"}
REPO_PATH = re.compile(r"(?<![\w/.])((?:tests|deploy|proxy|bench|docs)/[\w./-]*\w)")


def test_every_path_the_pages_name_exists() -> None:
    """`tests/...`, `proxy/...`, `deploy/...` named in the text: a refactor that moves a file
    must move its mention too."""
    missing = [f"{page.name}: {path}" for page in PAGES for path in REPO_PATH.findall(page.read_text(encoding="utf-8"))
               if path not in MADE_BY_USERS and not (ROOT / path).exists()]
    assert missing == []

"""The examples of a documentation page, found with a CommonMark parser, and how their output is
held to the output the page shows. tests/docs/test_docs_examples.py runs them; docs/testing.md
("Examples are tests") describes the markers for people writing pages.

A fenced `sh`/`python` block is an example. An HTML comment on the line just before a fence
marks it: `<!-- example: skip (why) -->`, `<!-- example: setup -->` (run before the gateway
starts) or `<!-- example: file NAME -->` (any fence: written to NAME in the working directory).
A `json` or `text` fence on the line right after an example is the output it must give.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from attrs import evolve, frozen
from markdown_it import MarkdownIt

SHELL = {"sh", "bash", "shell"}
PYTHON = {"python", "py"}
# What a line of plain output is known by: up to the first space, `{`, `:` or `=`.
FIRST_WORD = re.compile(r"[^\s{:=]+|")
MARKER = re.compile(r"<!--\s*example:\s*(?P<kind>skip|setup|file)\b\s*(?P<rest>.*?)\s*-->", re.DOTALL)


@frozen
class Example:
    page: pathlib.Path
    line: int  # 1-based line of the fence, for messages
    language: str  # "sh" or "python"
    code: str
    phase: str  # "setup" (before the gateway starts), "run", or "skip"
    output_language: str | None = None
    output: str | None = None

    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


@frozen
class PageFile:
    name: str
    content: str


@frozen
class Page:
    examples: tuple[Example, ...]
    files: tuple[PageFile, ...]
    problems: tuple[str, ...]  # mistakes in how the page marks its examples


def read_page(path: pathlib.Path) -> Page:
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    examples: list[Example] = []
    files: list[PageFile] = []
    problems: list[str] = []
    marker: tuple[int, re.Match[str]] | None = None  # (the line after the comment, its match)
    example_end: int | None = None  # where the last example's fence ended, for its output block
    for token in tokens:
        if token.map is None:
            continue
        start, end = token.map
        if token.type == "html_block" and (found := MARKER.search(token.content)):
            marker = (end, found)
            continue
        if token.type == "code_block":
            problems.append(f"{path.name}:{start + 1}: an indented code block; fence it (```sh, ```text, ...)")
        if token.type != "fence":
            marker = None
            continue
        language = token.info.split()[0] if token.info.strip() else ""
        mark = marker[1] if marker is not None and marker[0] == start else None
        follows_example, example_end, marker = example_end == start, None, None
        if follows_example and mark is None and language in ("json", "text"):
            examples[-1] = evolve(examples[-1], output_language=language, output=token.content)
        elif mark is not None and mark["kind"] == "file":
            files.append(PageFile(mark["rest"], token.content))
        elif language in SHELL | PYTHON:
            phase = "run" if mark is None else mark["kind"]
            if mark is not None and phase == "skip" and not mark["rest"].strip("() "):
                problems.append(f"{path.name}:{start + 1}: a skipped example must say why: "
                                "<!-- example: skip (why) -->")
            examples.append(Example(path, start + 1, "sh" if language in SHELL else "python", token.content, phase))
            example_end = end
        elif mark is not None:
            problems.append(f"{path.name}:{start + 1}: '{mark['kind']}' marks a {language or 'plain'} block")
    return Page(tuple(examples), tuple(files), tuple(problems))


def check_output(example: Example, stdout: str) -> None:
    """Hold what an example printed to the output its page shows."""
    if example.output is None:  # the page shows no output: exiting 0 is what it promises
        return
    shown = example.output
    if example.output_language == "json":
        try:
            expected = json.loads(shown)
        except ValueError as exc:
            raise AssertionError(f"{example.where()}: the output the page shows is not JSON: {exc}") from None
        try:
            actual = json.loads(stdout)
        except ValueError:
            raise AssertionError(f"{example.where()}: the output is not JSON:\n{stdout[:2000]}") from None
        same_shape(expected, actual, f"{example.where()}: $")
    elif all(line.startswith("data:") for line in shown.splitlines() if line.strip()):
        check_events(example, shown, stdout)
    else:
        lines = [line.strip().lower() for line in stdout.splitlines()]
        for line in filter(str.strip, shown.splitlines()):
            first = FIRST_WORD.match(line.strip().lower())[0]  # type: ignore[index]
            assert any(actual.startswith(first) for actual in lines), \
                f"{example.where()}: no line starts with {first!r}:\n{stdout[:2000]}"


def check_events(example: Example, shown: str, stdout: str) -> None:
    """Server-Sent Events: the first and the last event hold the fields of the page's."""
    def events(text: str) -> list[Any]:
        payloads = [line[len("data:"):].strip() for line in text.splitlines() if line.startswith("data:")]
        return [json.loads(payload) for payload in payloads if payload != "[DONE]"]

    expected, actual = events(shown), events(stdout)
    assert actual, f"{example.where()}: no events:\n{stdout[:2000]}"
    same_shape(expected[0], actual[0], f"{example.where()}: first event")
    same_shape(expected[-1], actual[-1], f"{example.where()}: last event")
    assert ("data: [DONE]" in shown) == ("data: [DONE]" in stdout), f"{example.where()}: [DONE] differs"


def same_shape(expected: Any, actual: Any, at: str) -> None:
    """Every field the page shows is there, with a value of the same JSON type (null matches any
    value, either way: a field that is null when there is nothing to say)."""
    if expected is None or actual is None:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{at}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{at}: no field {key!r} in {json.dumps(actual)[:1000]}"
            same_shape(value, actual[key], f"{at}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{at}: expected a list, got {actual!r}"
        assert len(actual) >= len(expected), f"{at}: {len(expected)} items shown, {len(actual)} given"
        for index, item in enumerate(expected):
            same_shape(item, actual[index], f"{at}[{index}]")
    else:
        assert _json_type(expected) == _json_type(actual), f"{at}: expected a value like {expected!r}, got {actual!r}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__

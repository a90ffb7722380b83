"""Headless Chromium for the browser tests: Debian's own build, driven by Playwright.

Playwright never downloads a browser here: it starts the system's `chromium` (installed by
.ci/run; CHROMIUM names another binary) with a fresh empty profile and the flags that keep
it off the network, which this machine does not have.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from attrs import define, field
from playwright.async_api import Browser, Page, ViewportSize, async_playwright
from yarl import URL

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# No GPU, no QUIC, no first-run, sync, component or background traffic: nothing but the test's pages.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# A guard against a hang, never a claim about speed: every wait in these tests ends far sooner.
WAIT_MS = 20_000
VIEWPORT = ViewportSize(width=1280, height=720)


def installed_chromium() -> str:
    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package (.ci/run does)")
    return CHROMIUM


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = installed_chromium()
    async with async_playwright() as playwright:
        # Playwright gives every launch a new temporary profile (user-data-dir) of its own.
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@define
class WatchedPage:
    """A page with everything it reported: console lines, uncaught errors, requests made."""

    page: Page
    console: list[str] = field(factory=list)
    errors: list[str] = field(factory=list)
    requests: list[str] = field(factory=list)

    @classmethod
    async def open(cls, browser: Browser, url: URL) -> WatchedPage:
        page = await browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        watched = cls(page)
        # Plain functions: Playwright stores attributes on the owner of a bound method handler.
        page.on("console", lambda message: watched.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: watched.errors.append(str(error)))
        page.on("request", lambda request: watched.requests.append(request.url))
        await page.goto(str(url))
        return watched

    def problems(self) -> list[str]:
        """Console errors and warnings (CSP violations among them) and uncaught exceptions."""
        return [line for line in self.console if line.startswith(("error", "warning"))] + self.errors


def origin_of(url: URL) -> str:
    return str(url.origin())

"""Periodic chores (proxy/background.py): one failing call is logged and the chore goes on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxy.background import every, running


async def test_a_chore_that_fails_once_is_logged_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    fifth = asyncio.Event()

    def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        if len(calls) == 5:
            fifth.set()

    with caplog.at_level(logging.ERROR, logger="proxy"):
        async with running(every(0.01, flaky, first_at_once=True)):
            # A chore that ended at its failure never gets to its fifth call.
            await asyncio.wait_for(fifth.wait(), 5)
    failures = [r for r in caplog.records if "a periodic task failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is UnicodeDecodeError
    assert "flaky" in failures[0].getMessage()

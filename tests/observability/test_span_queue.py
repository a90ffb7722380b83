"""The export queue (proxy/tracing/span_queue.py): bounded, batched, and every span it could
not hand on counted by reason. Its thread hands batches to a plain function here, as it
hands them to the pipe or the OTLP export in the gateway."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from proxy.tracing.span_queue import SpanQueue


class Next:
    """What is after the queue: takes batches; can be held (a stuck exporter) or refuse them."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.refuse = refuse
        self.go_on = threading.Event()
        self.go_on.set()
        self.dropped: Counter[str] = Counter()
        self.closed = 0

    def deliver(self, batch: list[int]) -> bool:
        self.go_on.wait(10)
        self.batches.append(batch)
        return not self.refuse

    def count(self, reason: str, spans: int) -> None:
        self.dropped[reason] += spans

    def close(self, _timeout: float) -> None:
        self.closed += 1


def queue(after: Next, *, queue_size: int = 2048, batch_size: int = 4, every: float = 3600,
          close_timeout: float = 5) -> SpanQueue[int]:
    # Handing on an hour apart by default: only a full batch or the shutdown hands on, so each test decides when.
    return SpanQueue(after.deliver, after.close, queue_size=queue_size, batch_size=batch_size,
                     hand_on_every=every, close_timeout=close_timeout, dropped=after.count, undelivered="exporter_down")


def until(condition: object, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


def test_a_full_batch_leaves_at_once_and_the_rest_waits_for_its_time() -> None:
    after = Next()
    spans = queue(after)
    for n in range(6):
        spans.put(n)
    until(lambda: after.batches == [[0, 1, 2, 3]])
    time.sleep(0.1)
    assert after.batches == [[0, 1, 2, 3]]  # 4 and 5 wait: an export carrying two would cost as much as one of four
    spans.shutdown()
    assert after.batches == [[0, 1, 2, 3], [4, 5]]  # the stop hands on everything


def test_on_time_whatever_is_queued_leaves() -> None:
    after = Next()
    spans = queue(after, every=0.05)
    spans.put(1)
    until(lambda: after.batches == [[1]])
    spans.shutdown()


def test_the_queue_is_bounded_and_drops_are_counted() -> None:
    after = Next()
    after.go_on.clear()  # stuck: the first full batch is taken and never let go until the end
    spans = queue(after, queue_size=8, batch_size=4)
    for n in range(4):
        spans.put(n)
    until(lambda: len(spans._queue) == 0)  # the thread holds the first four, waiting on what is after it
    for n in range(4, 20):  # eight more fit; the rest are dropped
        spans.put(n)
    assert after.dropped == {"queue_full": 8}
    after.go_on.set()
    spans.shutdown()
    assert [span for batch in after.batches for span in batch] == list(range(12))


def test_a_batch_that_was_not_taken_is_counted_and_not_sent_again() -> None:
    after = Next(refuse=True)
    spans = queue(after, batch_size=2)
    for n in range(3):
        spans.put(n)
    spans.shutdown()
    assert after.dropped == {"exporter_down": 3}
    assert after.batches == [[0, 1], [2]]


def test_a_failure_after_the_queue_costs_its_batch_not_the_thread(caplog: pytest.LogCaptureFixture) -> None:
    after = Next()
    calls = 0

    def deliver(batch: list[int]) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug after the queue")
        return after.deliver(batch)

    spans: SpanQueue[int] = SpanQueue(deliver, after.close, queue_size=64, batch_size=2, hand_on_every=3600,
                                      close_timeout=5, dropped=after.count, undelivered="exporter_down")
    for n in range(4):
        spans.put(n)
    until(lambda: after.batches == [[2, 3]])  # the thread lived on
    spans.shutdown()
    assert after.dropped == {"exporter_down": 2}
    assert "handing on 2 finished spans failed" in caplog.text


def test_what_is_still_queued_when_the_stop_gives_up_is_counted() -> None:
    after = Next()
    after.go_on.clear()  # stuck on the first batch for the whole stop
    spans = queue(after, batch_size=2, close_timeout=0.2)
    for n in range(5):
        spans.put(n)
    until(lambda: len(spans._queue) == 3)  # the thread holds [0, 1]
    spans.shutdown()
    assert after.dropped == {"exporter_down": 3}
    after.go_on.set()


def test_a_second_stop_waits_for_the_first_and_closes_nothing_twice() -> None:
    after = Next()
    spans = queue(after)
    spans.put(1)
    stops = [threading.Thread(target=spans.shutdown) for _ in range(2)]
    for stop in stops:
        stop.start()
    for stop in stops:
        stop.join(10)
    assert after.closed == 1
    assert after.batches == [[1]]

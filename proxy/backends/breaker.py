"""Passive health of one backend: a circuit breaker fed by the outcome of real requests.

closed     requests flow; consecutive failures are counted.
open       after `failure_threshold` consecutive failures: the backend is tried only as a
           last resort, when nothing else is available, until `cooldown` has passed.
half_open  after the cooldown: exactly one request is let through as a trial; its
           success closes the breaker, its failure opens it for another cooldown.

Only failures of the backend count (unreachable, timeout, 5xx, broken answers); a missing
model or an invalid request says nothing about its health.

In a fleet, `on_change` tells proxy/fleet/shared_breakers.py when this breaker opens or
closes, and `rest` opens it on another replica's word.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from attrs import define

State = Literal["closed", "open", "half_open"]


@define
class Breaker:
    failure_threshold: int
    cooldown: float
    _failures: int = 0
    _opened_at: float | None = None
    _trial_in_flight: bool = False
    # Called with True when the breaker opens (or opens again), False when it closes.
    on_change: Callable[[bool], None] | None = None

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if time.monotonic() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def reopens_in(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - time.monotonic())

    def available(self) -> bool:
        """Whether a request should go here in the normal course of things."""
        state = self.state
        return state == "closed" or (state == "half_open" and not self._trial_in_flight)

    def attempt_started(self) -> None:
        if self.state == "half_open":
            self._trial_in_flight = True

    def succeeded(self) -> None:
        was_open = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False
        if was_open and self.on_change is not None:
            self.on_change(False)

    def failed(self) -> None:
        self._failures += 1
        self._trial_in_flight = False
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = time.monotonic()
            if self.on_change is not None:
                self.on_change(True)

    def rest(self, seconds: float) -> None:
        """Open for `seconds` because another replica saw the backend fail, unless this
        breaker already rests longer. Then a trial, as after a cooldown of its own."""
        if self.reopens_in() < seconds:
            self._opened_at = time.monotonic() - self.cooldown + seconds

    def released(self) -> None:
        """The attempt ended without saying anything about health (e.g. model missing)."""
        self._trial_in_flight = False

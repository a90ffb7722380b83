"""Limit state in this process's memory: sliding one-minute windows and concurrency slots.

Per tenant: the times of the requests admitted in the last 60 s, the tokens charged in
the last 60 s (each reservation's charge, corrected to the real usage when it settles),
and the requests in flight. A request is admitted only if every limit has room; then it
is counted against all of them at once. The same rules run in Redis for a fleet
(redis_windows.py); this one serves a single process, and every replica's share of the
limits while Redis is down.

A window is sliding, not a fixed clock minute: at most `limit` requests (or tokens) in
any 60 s, so there is no burst of twice the limit across a minute boundary. Retry-After
is when enough of the window has aged out to admit the request.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from attrs import define, field, frozen

from proxy.tenants.keyring import Limits

WINDOW = 60.0

REQUESTS = "requests_per_minute"
TOKENS = "tokens_per_minute"
CONCURRENCY = "concurrent_requests"


@frozen
class Verdict:
    admitted: bool
    reserved: int = 0  # tokens charged, when admitted
    limit: str = ""  # the limit that refused
    retry_after: float = 0.0  # seconds; math.inf when the request can never fit

    @classmethod
    def refused(cls, limit: str, retry_after: float) -> Verdict:
        return cls(admitted=False, limit=limit, retry_after=retry_after)


@define
class _Charge:
    at: float
    tokens: int


@define
class _Ledger:
    requests: deque[float] = field(factory=deque)
    charges: deque[tuple[str, _Charge]] = field(factory=deque)
    by_id: dict[str, _Charge] = field(factory=dict)
    tokens: int = 0
    in_flight: set[str] = field(factory=set)

    def prune(self, now: float) -> None:
        since = now - WINDOW
        while self.requests and self.requests[0] <= since:
            self.requests.popleft()
        while self.charges and self.charges[0][1].at <= since:
            rid, charge = self.charges.popleft()
            self.tokens -= charge.tokens
            if self.by_id.get(rid) is charge:
                del self.by_id[rid]

    def verdict(self, limits: Limits, tokens: int, at_least: int, now: float) -> Verdict:
        if limits.concurrent_requests is not None and len(self.in_flight) >= limits.concurrent_requests:
            return Verdict.refused(CONCURRENCY, 1.0)
        if limits.requests_per_minute is not None and len(self.requests) >= limits.requests_per_minute:
            index = len(self.requests) - limits.requests_per_minute  # the one whose ageing makes room
            return Verdict.refused(REQUESTS, self.requests[index] + WINDOW - now)
        cap = limits.tokens_per_minute
        if cap is not None and self.tokens + tokens > cap:
            if self.tokens + at_least <= cap:  # an open-ended answer takes what is left
                return Verdict(admitted=True, reserved=cap - self.tokens)
            if at_least > cap:
                return Verdict.refused(TOKENS, math.inf)
            # Reservations still running settle to their real usage within seconds, not a
            # minute: if they alone are in the way, come back shortly.
            pending = sum(charge.tokens for charge in self.by_id.values())
            if self.tokens - pending + at_least <= cap:
                return Verdict.refused(TOKENS, 1.0)
            return Verdict.refused(TOKENS, self._tokens_free_in(cap - at_least, now))
        return Verdict(admitted=True, reserved=tokens)

    def _tokens_free_in(self, room_needed_below: int, now: float) -> float:
        """Seconds until the charges still in the window sum to at most `room_needed_below`."""
        left = self.tokens
        for _, charge in self.charges:
            left -= charge.tokens
            if left <= room_needed_below:
                return charge.at + WINDOW - now
        return WINDOW  # only charges yet to settle are in the way: at most a window

    def commit(self, limits: Limits, rid: str, tokens: int, now: float) -> None:
        if limits.concurrent_requests is not None:
            self.in_flight.add(rid)
        if limits.requests_per_minute is not None:
            self.requests.append(now)
        if limits.tokens_per_minute is not None:
            charge = _Charge(at=now, tokens=tokens)
            self.charges.append((rid, charge))
            self.by_id[rid] = charge
            self.tokens += tokens


@define
class LocalWindows:
    clock: Callable[[], float] = time.monotonic
    _ledgers: dict[str, _Ledger] = field(factory=dict)

    def acquire(
        self, tenant: str, limits: Limits, rid: str, tokens: int, *, at_least: int | None = None,
        force: bool = False,
    ) -> Verdict:
        """Admit and count the request if every limit has room (`force`: count it regardless,
        for a request that the fleet's shared state admitted).

        `tokens` is what the request would reserve; with `at_least` below it (an answer the
        client left open-ended), it is admitted with what is left of the limit, if that is
        at least `at_least`.
        """
        now = self.clock()
        ledger = self._ledgers.setdefault(tenant, _Ledger())
        ledger.prune(now)
        if force:
            verdict = Verdict(admitted=True, reserved=tokens)
        else:
            verdict = ledger.verdict(limits, tokens, tokens if at_least is None else at_least, now)
        if verdict.admitted:
            ledger.commit(limits, rid, verdict.reserved, now)
        return verdict

    def settle(self, tenant: str, rid: str, reserved: int, actual: int) -> None:
        """Free the request's slot and replace its token charge by what it really used.

        A charge already out of the window (a request longer than a minute) is gone; only
        what it used beyond its reservation is still charged, now.
        """
        ledger = self._ledgers.get(tenant)
        if ledger is None:
            return
        now = self.clock()
        ledger.in_flight.discard(rid)
        charge = ledger.by_id.pop(rid, None)
        if charge is not None and charge.at > now - WINDOW:
            ledger.tokens += actual - charge.tokens
            charge.tokens = actual
        elif actual > reserved:
            extra = _Charge(at=now, tokens=actual - reserved)
            ledger.charges.append((rid, extra))
            ledger.tokens += extra.tokens
        ledger.prune(now)

    def window(self, tenant: str) -> dict[str, int]:
        """What this process counts for `tenant` right now, in each limit's terms."""
        ledger = self._ledgers.get(tenant)
        if ledger is None:
            return {REQUESTS: 0, TOKENS: 0, CONCURRENCY: 0}
        ledger.prune(self.clock())
        return {REQUESTS: len(ledger.requests), TOKENS: ledger.tokens, CONCURRENCY: len(ledger.in_flight)}

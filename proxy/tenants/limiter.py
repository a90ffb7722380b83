"""The one entry point of per-key limits: `Limiter.reserve(tenant, model, estimate)`.

    async with limiter.reserve(tenant, model_id, chat_estimate(chat, ...)) as reservation:
        ... call the upstream ...
        reservation.record(result.usage, output=result.output)   # or .produced(n) per token

Entering checks, before any upstream is called, that the key may use the model (else 403)
and that its requests per minute, tokens per minute and concurrent requests all have room
(else 429 naming the limit, with Retry-After); the request is then counted against all
three, its tokens as the estimate. Leaving, however the block ends (an answer, an error,
a stream cut, a client that hangs up), frees the concurrency slot and replaces the
estimate by the real usage, or by what is known of it. The shared state is updated by a
task this limiter owns, so a cancelled request cannot skip it; leaving waits for that task
(bounded by PROXY_REDIS_TIMEOUT), so a single-shot answer leaves only once its slot is free.

Where the state lives: this process's memory without Redis; Redis with it, so that the
replicas of a fleet together admit exactly the configured limits. When Redis is down,
PROXY_REDIS_FAILURE decides: `open` (the default) enforces each replica's share of every
limit locally (the limit divided by the replicas last seen, rounded up), counting from
what this replica itself admitted in the last minute; `closed` refuses requests of keys
that have limits with 503 `limits_unavailable`. Keys without limits are served either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections import defaultdict
from collections.abc import Coroutine
from types import TracebackType

from attrs import define, field

from proxy.errors import Forbidden, GatewayError, LimitsUnavailable, RateLimited
from proxy.fleet.link import RedisDown, RedisLink, repeat
from proxy.llm import Usage
from proxy.observability.limit_metrics import LIMITS_UNAVAILABLE, RATE_LIMITED
from proxy.observability.model_labels import MODEL_LABELS
from proxy.settings.config import Settings
from proxy.tenants.estimate import TokenEstimate, text_tokens
from proxy.tenants.keyring import Limits, Tenant
from proxy.tenants.redis_windows import RedisWindows
from proxy.tenants.usage import UsageBook
from proxy.tenants.windows import TOKENS, LocalWindows, Verdict

log = logging.getLogger("proxy")


@define
class Reservation:
    """One request's hold on its key's limits, from admission until its answer ends."""

    _limiter: Limiter
    tenant: Tenant
    model: str
    estimate: TokenEstimate
    rid: str = ""  # set when the request is counted against limits
    reserved: int = 0  # tokens charged at admission
    limited: bool = False  # counted against limits (the key has some)
    shared: bool = False  # counted in Redis (else only in this process)
    _usage: Usage | None = None
    _produced: int = 0

    def record(self, usage: Usage | None, output: str = "") -> None:
        """The upstream's final usage; without one, the output's estimate stands in."""
        if usage is not None:
            self._usage = usage
        else:
            self._produced = max(self._produced, text_tokens(output))

    @property
    def served(self) -> bool:
        """Whether an upstream answered for this request (usage, or tokens relayed)."""
        return self._usage is not None or self._produced > 0

    def produced(self, tokens: int = 1) -> None:
        """Tokens relayed so far: what a stream that ends without usage is charged."""
        self._produced += tokens

    def used(self, error: BaseException | None) -> tuple[int, int]:
        """(tokens in, tokens out) to charge.

        The upstream's usage when it said; else the prompt's estimate and the tokens seen.
        A request that no upstream served (the gateway's own error before any output) is
        charged nothing; one that was cut or abandoned after reaching an upstream is
        charged its prompt, which the upstream may already have read.
        """
        if self._usage is not None:
            # A prompt is never 0 tokens: 0 means the upstream did not count it (an
            # OpenAI-compatible server without usage, an Ollama that had the prompt cached),
            # and the estimate stands in, or a key could embed for free.
            prompt = self._usage.prompt_tokens or self.estimate.prompt
            return prompt, max(self._usage.completion_tokens, self._produced)
        if self._produced == 0 and isinstance(error, GatewayError):
            return 0, 0
        return self.estimate.prompt, self._produced

    async def __aenter__(self) -> Reservation:
        await self._limiter.admit(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        settling = self._limiter.settle(self, exc)
        if settling is not None:
            # Waited for (Redis calls are bounded by PROXY_REDIS_TIMEOUT), so that a client
            # that sends its next request as soon as this answer arrives finds its slot free;
            # shielded, so a request being cancelled cannot cut the settlement short.
            with contextlib.suppress(Exception):
                await asyncio.shield(settling)


@define
class Limiter:
    local: LocalWindows = field(factory=LocalWindows)
    usage: UsageBook = field(factory=UsageBook)
    shared: RedisWindows | None = None
    fail_closed: bool = False
    # Completion tokens reserved when a request sets no max_tokens.
    default_completion: int = 1024
    # Requests in flight that hold a concurrency slot, by id: their leases are renewed.
    _holding: dict[str, Reservation] = field(factory=dict)
    _settling: set[asyncio.Task[None]] = field(factory=set)

    @classmethod
    def from_settings(cls, settings: Settings, link: RedisLink | None) -> Limiter:
        limiter = cls(
            usage=UsageBook(link=link),
            shared=RedisWindows(link, lease=settings.redis_lease) if link is not None else None,
            fail_closed=settings.redis_failure == "closed",
            default_completion=settings.reserved_completion_tokens,
        )
        if link is not None:
            link.on_recovery(limiter.usage.flush)
            link.on_recovery(limiter.register_leases)
        return limiter

    @property
    def link(self) -> RedisLink | None:
        return None if self.shared is None else self.shared.link

    @property
    def mode(self) -> str:
        """Where limits are decided right now: local, shared, local_share or refusing."""
        if self.shared is None:
            return "local"
        if self.shared.link.up:
            return "shared"
        return "refusing" if self.fail_closed else "local_share"

    def reserve(self, tenant: Tenant, model: str, estimate: TokenEstimate) -> Reservation:
        """The entry point: `async with limiter.reserve(...) as reservation:` around the call."""
        return Reservation(self, tenant, model, estimate)

    async def admit(self, reservation: Reservation) -> None:
        tenant = reservation.tenant
        if reservation.model and not tenant.may_use(reservation.model):  # "": a call of no model (health)
            raise Forbidden(f"key {tenant.name!r} may not use model {reservation.model!r}")
        limits = tenant.limits
        if limits.unlimited:
            return
        reservation.rid = secrets.token_hex(10)
        tokens, at_least = self._tokens_to_reserve(limits, reservation.estimate)
        verdict, applied = await self._verdict(reservation, limits, tokens, at_least)
        if not verdict.admitted:
            RATE_LIMITED.labels(key=tenant.name, limit=verdict.limit).inc()
            raise _refusal(tenant, applied, verdict, at_least, share=applied is not limits)
        reservation.reserved = verdict.reserved
        reservation.limited = True
        if limits.concurrent_requests is not None:
            self._holding[reservation.rid] = reservation

    async def _verdict(
        self, reservation: Reservation, limits: Limits, tokens: int, at_least: int,
    ) -> tuple[Verdict, Limits]:
        """The verdict, and the limits it applied (this replica's share while Redis is down)."""
        name, rid = reservation.tenant.name, reservation.rid
        if self.shared is None:
            return self.local.acquire(name, limits, rid, tokens, at_least=at_least), limits
        try:
            verdict = await self.shared.acquire(name, limits, rid, tokens, at_least=at_least)
        except asyncio.CancelledError:
            # The client left while Redis was answering: if Redis admitted it, give it back.
            self._spawn(self._settle_shared(name, rid, tokens, 0))
            raise
        except RedisDown:
            if self.fail_closed:
                LIMITS_UNAVAILABLE.labels(key=name).inc()
                raise LimitsUnavailable(
                    "the shared limit state (Redis) is unreachable and PROXY_REDIS_FAILURE=closed") from None
            share = limits.share(self.shared.link.fleet_size)
            return self.local.acquire(name, share, rid, tokens, at_least=at_least), share
        if verdict.admitted:
            reservation.shared = True
            # Counted here too, so that if Redis goes down this replica's share starts from
            # what it has really admitted in the last minute.
            self.local.acquire(name, limits, rid, verdict.reserved, force=True)
        return verdict, limits

    def _tokens_to_reserve(self, limits: Limits, estimate: TokenEstimate) -> tuple[int, int]:
        """(tokens to reserve, the fewest that will do).

        With max_tokens, the prompt's estimate and max_tokens, no less. Without, the
        prompt and PROXY_RESERVED_COMPLETION_TOKENS, or whatever is left of the key's
        tokens per minute if that is less (at least one token for the answer): a key whose
        clients set no max_tokens is not held to one request a minute by a large default.
        """
        if estimate.completion is not None:
            tokens = estimate.prompt + estimate.completion
            return tokens, tokens
        return estimate.prompt + self.default_completion, estimate.prompt + 1

    def settle(self, reservation: Reservation, error: BaseException | None) -> asyncio.Task[None] | None:
        """Charge the real usage and free the slot; returns the Redis settlement, if any."""
        tokens_in, tokens_out = reservation.used(error)
        if reservation.model:  # a call of no model (health) uses no tokens
            model = MODEL_LABELS.label(reservation.model, served=reservation.served, key=reservation.tenant.name)
            self.usage.add(reservation.tenant.name, model, tokens_in, tokens_out)
        if not reservation.limited:
            return None
        name, rid, actual = reservation.tenant.name, reservation.rid, tokens_in + tokens_out
        self._holding.pop(rid, None)
        self.local.settle(name, rid, reservation.reserved, actual)
        if reservation.shared:
            return self._spawn(self._settle_shared(name, rid, reservation.reserved, actual))
        return None

    def _spawn(self, settlement: Coroutine[None, None, None]) -> asyncio.Task[None]:
        """Run a settlement in a task of the limiter's own, so that a request that is being
        cancelled cannot cut it short; shutdown waits for it (aclose)."""
        task = asyncio.get_running_loop().create_task(settlement)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return task

    async def _settle_shared(self, name: str, rid: str, reserved: int, actual: int) -> None:
        assert self.shared is not None
        try:
            await self.shared.settle(name, rid, reserved, actual)
        except RedisDown:
            # The slot's lease runs out by itself; the tokens stay charged as reserved.
            log.info("could not settle a reservation in redis; its slot's lease runs out by itself")

    async def renew_leases(self, *, register: bool = False) -> None:
        """Keep the leases of running requests alive in Redis (`register`: add the ones
        admitted while Redis was down, so the fleet counts them from now on)."""
        if self.shared is None or not self._holding:
            return
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for rid, reservation in list(self._holding.items()):
            if register or reservation.shared:
                by_tenant[reservation.tenant.name].append(rid)
        for tenant, rids in by_tenant.items():
            await self.shared.renew(tenant, rids, register=register)
        if register:
            for reservation in self._holding.values():
                reservation.shared = True

    async def register_leases(self) -> None:
        await self.renew_leases(register=True)

    async def keep_leases(self) -> None:
        assert self.shared is not None
        await repeat(self.shared.lease / 3, self.renew_leases, "lease renewal")

    async def aclose(self) -> None:
        """Finish pending settlements and send the last usage (shutdown)."""
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=2)
        with contextlib.suppress(RedisDown):
            await self.usage.flush()


# While Redis is down, a request too big for this replica's share may fit once it is back.
SHARE_RETRY_AFTER = 5


def _refusal(tenant: Tenant, limits: Limits, verdict: Verdict, tokens: int, *, share: bool) -> RateLimited:
    """The 429; `tokens` is the fewest tokens the request needed to reserve; `share`: the
    limits applied were this replica's share, Redis being down."""
    value = getattr(limits, verdict.limit)
    what = f"key {tenant.name!r} is at its {verdict.limit} limit ({value})"
    if share:
        what = (f"key {tenant.name!r} is at this replica's share of its {verdict.limit} limit ({value}), "
                "enforced while the shared limit state (Redis) is unreachable")
        if math.isinf(verdict.retry_after):
            return RateLimited(f"{what}; this request reserves {tokens} tokens; retry in {SHARE_RETRY_AFTER} s",
                               limit=verdict.limit, limit_value=value, retry_after=SHARE_RETRY_AFTER)
    if math.isinf(verdict.retry_after):
        return RateLimited(
            f"{what}: this request alone reserves {tokens} tokens (prompt estimate plus max_tokens); "
            "lower max_tokens or shorten the prompt",
            limit=verdict.limit, limit_value=value, retry_after=None)
    retry_after = max(1, math.ceil(verdict.retry_after))
    if verdict.limit == TOKENS:
        what += f"; this request reserves {tokens} tokens"
    return RateLimited(f"{what}; retry in {retry_after} s", limit=verdict.limit, limit_value=value,
                       retry_after=retry_after)

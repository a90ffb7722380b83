"""Limit state in Redis, shared by every replica: the rules of windows.py, run atomically.

Each check-and-count is one Lua script (loaded once, then called by its SHA), so no two
replicas can both take the last unit of a limit: N replicas together admit exactly what
one would. Time is Redis's own clock (TIME), so replicas' clocks need not agree.

Per tenant (its name as a hash tag, so that one script's keys would share a Cluster slot):
  {prefix}:{name}:req     sorted set, request id -> admission time (ms)
  {prefix}:{name}:tok     sorted set, request id -> charge time (ms)
  {prefix}:{name}:tokn    hash, request id -> tokens charged
  {prefix}:{name}:toksum  the sum of those charges
  {prefix}:{name}:tokopen set of the request ids whose charge is still a reservation
  {prefix}:{name}:slots   sorted set, request id -> lease expiry (ms)
Every key expires a little after its window: nothing grows forever, and a tenant idle for
a minute costs nothing. A concurrency slot is a lease: its holder renews it while the
request runs (see Limiter), so a replica that dies mid-request frees its slots when their
leases run out (PROXY_REDIS_LEASE seconds), not never.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import define, field
from redis.commands.core import AsyncScript

from proxy.fleet.link import RedisLink
from proxy.tenants.keyring import Limits
from proxy.tenants.windows import WINDOW, Verdict

WINDOW_MS = int(WINDOW * 1000)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Ages out the token charges of the window; returns the sum of those left.
_TOKENS_IN_WINDOW = """
local function tokens_in_window(tok, tokn, toksum, open, since)
  local old = redis.call('ZRANGEBYSCORE', tok, '-inf', since)
  local sum = tonumber(redis.call('GET', toksum) or '0')
  for _, id in ipairs(old) do
    sum = sum - (tonumber(redis.call('HGET', tokn, id)) or 0)
    redis.call('HDEL', tokn, id)
    redis.call('SREM', open, id)
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', tok, '-inf', since) end
  if redis.call('ZCARD', tok) == 0 then
    redis.call('DEL', toksum, tokn, open)
    return 0
  end
  if sum < 0 then sum = 0 end
  if #old > 0 then redis.call('SET', toksum, sum, 'KEEPTTL') end
  return sum
end
local function keep(keys, ms)
  for _, k in ipairs(keys) do redis.call('PEXPIRE', k, ms) end
end
"""

# KEYS: req tok tokn toksum slots tokopen; ARGV: id rpm tpm concurrency tokens window_ms lease_ms at_least
# (0: no limit). `tokens` is what the request would reserve; with `at_least` below it (an
# open-ended answer), what is left of the limit will do if it is at least `at_least`.
# Returns {1, tokens reserved} when admitted, else {0, limit, retry_after_ms} (-1: can never fit).
_ACQUIRE = _NOW + _TOKENS_IN_WINDOW + """
local req, tok, tokn, toksum, slots, open = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id = ARGV[1]
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens, window, lease = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local at_least = tonumber(ARGV[8])
local since = now - window
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  if redis.call('ZCARD', slots) >= conc then return {0, 'concurrent_requests', 1000} end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', req, '-inf', since)
  local count = redis.call('ZCARD', req)
  if count >= rpm then
    local ageing = redis.call('ZRANGE', req, count - rpm, count - rpm, 'WITHSCORES')
    return {0, 'requests_per_minute', tonumber(ageing[2]) + window - now}
  end
end
if tpm > 0 then
  local sum = tokens_in_window(tok, tokn, toksum, open, since)
  if sum + tokens > tpm then
    if sum + at_least <= tpm then
      tokens = tpm - sum
    else
      if at_least > tpm then return {0, 'tokens_per_minute', -1} end
      -- Reservations still running settle to their real usage within seconds, not a minute:
      -- if they alone are in the way, come back shortly.
      local pending = 0
      for _, oid in ipairs(redis.call('SMEMBERS', open)) do
        pending = pending + (tonumber(redis.call('HGET', tokn, oid)) or 0)
      end
      if sum - pending + at_least <= tpm then return {0, 'tokens_per_minute', 1000} end
      local left = sum
      local charges = redis.call('ZRANGE', tok, 0, -1, 'WITHSCORES')
      for i = 1, #charges, 2 do
        left = left - (tonumber(redis.call('HGET', tokn, charges[i])) or 0)
        if left <= tpm - at_least then
          return {0, 'tokens_per_minute', tonumber(charges[i + 1]) + window - now}
        end
      end
      return {0, 'tokens_per_minute', window}
    end
  end
end
if conc > 0 then
  redis.call('ZADD', slots, now + lease, id)
  redis.call('PEXPIRE', slots, lease * 2)
end
if rpm > 0 then
  redis.call('ZADD', req, now, id)
  redis.call('PEXPIRE', req, window + 1000)
end
if tpm > 0 then
  redis.call('ZADD', tok, now, id)
  redis.call('HSET', tokn, id, tokens)
  redis.call('INCRBY', toksum, tokens)
  redis.call('SADD', open, id)
  keep({tok, tokn, toksum, open}, window + 1000)
end
return {1, tokens}
"""

# KEYS: tok tokn toksum slots tokopen; ARGV: id reserved actual window_ms
# Frees the slot and replaces the charge by the real usage; a charge already out of the
# window is gone, so only the usage beyond the reservation is charged, now.
_SETTLE = _NOW + _TOKENS_IN_WINDOW + """
local tok, tokn, toksum, slots, open = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, reserved, actual, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREM', slots, id)
redis.call('SREM', open, id)
local charged = tonumber(redis.call('HGET', tokn, id))
local at = tonumber(redis.call('ZSCORE', tok, id))
if charged and at and at > now - window then
  redis.call('HSET', tokn, id, actual)
  if redis.call('INCRBY', toksum, actual - charged) < 0 then redis.call('SET', toksum, 0) end
  keep({tok, tokn, toksum}, window + 1000)
elseif actual > reserved then
  tokens_in_window(tok, tokn, toksum, open, now - window)
  redis.call('ZADD', tok, now, id .. ':late')
  redis.call('HSET', tokn, id .. ':late', actual - reserved)
  redis.call('INCRBY', toksum, actual - reserved)
  keep({tok, tokn, toksum}, window + 1000)
end
return 1
"""

# KEYS: slots; ARGV: lease_ms mode(XX: renew held leases / NX: re-register after an outage) id...
_RENEW = _NOW + """
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], ARGV[2], now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
"""


@define
class RedisWindows:
    link: RedisLink
    lease: float = 15.0  # seconds a concurrency slot is held without renewal
    _acquire: AsyncScript = field(init=False)
    _settle: AsyncScript = field(init=False)
    _renew: AsyncScript = field(init=False)

    def __attrs_post_init__(self) -> None:
        client = self.link.client
        self._acquire = client.register_script(_ACQUIRE)
        self._settle = client.register_script(_SETTLE)
        self._renew = client.register_script(_RENEW)

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    def _keys(self, tenant: str, *names: str) -> list[str]:
        return [self.link.key(f"{{{tenant}}}", name) for name in names]

    async def acquire(
        self, tenant: str, limits: Limits, rid: str, tokens: int, *, at_least: int | None = None,
    ) -> Verdict:
        """Admit and count the request across the fleet if every limit has room (as
        LocalWindows.acquire); RedisDown if Redis cannot say."""
        keys = self._keys(tenant, "req", "tok", "tokn", "toksum", "slots", "tokopen")
        args: list[str | int] = [rid, limits.requests_per_minute or 0, limits.tokens_per_minute or 0,
                                 limits.concurrent_requests or 0, tokens, WINDOW_MS, self._lease_ms,
                                 tokens if at_least is None else at_least]
        answer = await self.link.run(lambda: self._acquire(keys=keys, args=args))
        if int(answer[0]) == 1:
            return Verdict(admitted=True, reserved=int(answer[1]))
        retry_ms = int(answer[2])
        return Verdict.refused(str(answer[1]), float("inf") if retry_ms < 0 else retry_ms / 1000)

    async def settle(self, tenant: str, rid: str, reserved: int, actual: int) -> None:
        keys = self._keys(tenant, "tok", "tokn", "toksum", "slots", "tokopen")
        await self.link.run(lambda: self._settle(keys=keys, args=[rid, reserved, actual, WINDOW_MS]))

    async def renew(self, tenant: str, rids: Sequence[str], *, register: bool = False) -> None:
        """Extend the leases of requests still running (`register`: add them if missing,
        for requests admitted locally while Redis was down)."""
        keys = self._keys(tenant, "slots")
        args = [self._lease_ms, "NX" if register else "XX", *rids]
        await self.link.run(lambda: self._renew(keys=keys, args=args))

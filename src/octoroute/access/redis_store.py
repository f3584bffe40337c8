"""The per-key counters in Redis, shared by every worker and every router instance using it.

Each check is one Lua script, so reading the buckets, deciding and taking from them is atomic
however many routers ask at once: the same token buckets as ``access.limits`` (two numbers a
bucket in a hash: the level and the millisecond it was read), timed by the Redis server's own
clock (``TIME``), so the routers' clocks need not agree. Concurrency is a sorted set of leases,
one per request in flight, scored by when it expires: a router renews its own leases every
``state.RENEW_SECONDS`` and removes each when its request ends, so a router that crashed (or lost
Redis) holds nothing longer than ``LEASE_SECONDS``. Idle keys expire, so Redis holds nothing
for a key that has not been used for a minute.

Every failure to talk to Redis (refused, reset, timed out, wrong password, a script error) is
raised as :class:`StateUnavailable`: the caller counts locally instead. redis-py's own retries
are off and its timeouts short, so a Redis that hangs costs one request ``TIMEOUT_SECONDS``,
not a pile-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from octoroute.access.limits import Limits, Verdict, verdict
from octoroute.access.state import RENEW_SECONDS, StateUnavailable

TIMEOUT_SECONDS: Final = 0.25
"""Connecting to Redis, or waiting for one answer: past it the check is made locally."""
LEASE_SECONDS: Final = 3 * RENEW_SECONDS
"""How long a concurrency lease outlives its router's last renewal (30 s)."""
PREFIX: Final = "octoroute:key:"
"""Every key this router writes starts so: ``octoroute:key:<name>:rpm``, ``...:tpm``,
``...:leases`` (choose a database in ``redis_url`` to keep several fleets apart)."""

_NOW: Final = """
local function now_ms(given)
  local now = tonumber(given)
  if now ~= nil then return now end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
"""
"""The time in ms: the caller's (tests), else the Redis server's own clock."""

_ACQUIRE: Final = (
    _NOW
    + """
local now = now_ms(ARGV[7])
local rpm, tpm, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local most, ttl = tonumber(ARGV[4]), tonumber(ARGV[6])
local function level(key, limit)
  local stored = redis.call('HMGET', key, 'l', 't')
  local l, t = tonumber(stored[1]), tonumber(stored[2])
  if l == nil or t == nil then return limit end
  local elapsed = now - t
  if elapsed < 0 then elapsed = 0 end
  return math.min(limit, l + elapsed * limit / 60000)
end
local requests, tokens, busy = 0, 0, 0
if rpm > 0 then requests = level(KEYS[1], rpm) end
if tpm > 0 then tokens = level(KEYS[2], tpm) end
if most > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  busy = redis.call('ZCARD', KEYS[3])
end
local refused = ''
if most > 0 and busy >= most then refused = 'concurrent_requests'
elseif rpm > 0 and requests < 1 then refused = 'requests'
elseif tpm > 0 and tokens < cost then refused = 'tokens' end
if refused == '' then
  if rpm > 0 then
    redis.call('HSET', KEYS[1], 'l', string.format('%.17g', requests - 1), 't', now)
    redis.call('PEXPIRE', KEYS[1], 61000)
  end
  if tpm > 0 then
    redis.call('HSET', KEYS[2], 'l', string.format('%.17g', tokens - cost), 't', now)
    redis.call('PEXPIRE', KEYS[2], 61000)
  end
  if most > 0 then
    redis.call('ZADD', KEYS[3], now + ttl, ARGV[5])
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
end
return {refused, string.format('%.17g', requests), string.format('%.17g', tokens), busy}
"""
)
"""Check and take, atomically: KEYS are the requests bucket, the tokens bucket and the leases;
ARGV are rpm, tpm, cost, max_concurrent (0: none), the lease, its lifetime in ms and the time in
ms (empty: the server's clock)."""

_RENEW: Final = (
    _NOW
    + """
local now = now_ms(ARGV[2])
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[i + 2])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return #KEYS
"""
)
"""Push back the expiry of leases still in the set (``XX``: a lease Redis lost is not
re-created); KEYS are the leases' sets, ARGV the lifetime, the time and the leases."""


def bucket_keys(name: str) -> tuple[str, str, str]:
    """The Redis keys of client key ``name``: requests bucket, tokens bucket, leases."""
    return f"{PREFIX}{name}:rpm", f"{PREFIX}{name}:tpm", f"{PREFIX}{name}:leases"


class RedisLimiter:
    """The counters of every key in one Redis (a ``state.SharedStore``); ``now_ms`` replaces
    the server's clock (tests)."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        now_ms: Callable[[], int] | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": True,
            "client_name": "octoroute",
        }
        if password is not None:
            options["password"] = password
        self._redis = Redis.from_url(url, **options)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._now_ms = now_ms

    def _now(self) -> str:
        return "" if self._now_ms is None else str(self._now_ms())

    async def acquire(self, name: str, limits: Limits, cost: int, lease: str) -> Verdict:
        """Check a request of key ``name`` costing ``cost`` tokens and, when allowed, take it
        (with ``lease`` as its concurrency slot when the key has ``max_concurrent``)."""
        args = (
            limits.requests_per_minute or 0,
            limits.tokens_per_minute or 0,
            cost,
            limits.max_concurrent or 0,
            lease,
            int(LEASE_SECONDS * 1000),
            self._now(),
        )
        try:
            answer = await self._acquire(keys=bucket_keys(name), args=args)
            refused, requests, tokens = str(answer[0]), float(answer[1]), float(answer[2])
        except (RedisError, OSError, TimeoutError) as error:
            raise StateUnavailable(_reason(error)) from None
        except (TypeError, ValueError, IndexError):
            raise StateUnavailable("Redis answered the limit script with nonsense") from None
        return verdict(limits, cost, requests, tokens, refused or None)

    async def release(self, name: str, lease: str) -> None:
        """Free ``lease``, the concurrency slot of a request of ``name`` that ended."""
        try:
            await self._redis.zrem(bucket_keys(name)[2], lease)
        except (RedisError, OSError, TimeoutError) as error:
            raise StateUnavailable(_reason(error)) from None

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        """Extend the leases ``(key name, lease)`` of requests still in flight."""
        held = list(leases)
        if not held:
            return
        keys = [bucket_keys(name)[2] for name, _ in held]
        args: list[str | int] = [int(LEASE_SECONDS * 1000), self._now()]
        args += [lease for _, lease in held]
        try:
            await self._renew(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as error:
            raise StateUnavailable(_reason(error)) from None

    async def ping(self) -> None:
        """Raise :class:`StateUnavailable` unless Redis answers."""
        try:
            await self._redis.ping()
        except (RedisError, OSError, TimeoutError) as error:
            raise StateUnavailable(_reason(error)) from None

    async def close(self) -> None:
        """Close the connections."""
        await self._redis.aclose()


def _reason(error: BaseException) -> str:
    """What went wrong, in a few words; redis-py's messages name host and port, never the
    password."""
    text = str(error).strip() or type(error).__name__
    return text[:200]

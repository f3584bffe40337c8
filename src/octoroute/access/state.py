"""Which counters answer a limit check: Redis when ``[state] redis_url`` is set and reachable,
this process's otherwise.

Redis going away never fails a request. The first check that cannot reach it is answered by the
local counters, and so is every check after it, without trying Redis again, until a background
ping (every ``RECONNECT_SECONDS``) finds it back; each such check is counted
(``on_fallback``: ``octoroute_state_fallbacks_total``) and the change is logged as a warning at
most once a minute. While Redis is down each process enforces each key's full limits on its own,
so a fleet of N processes may let up to N times a limit through; the counters start from what
Redis still holds when it is back (a restarted, empty Redis starts every key afresh).

The same background task renews the leases of this process's requests in flight (every
``RENEW_SECONDS``) while Redis is up; a lease is removed in the background when its request
ends, so the answer never waits for it. A lease Redis may hold for nobody (its check timed out
but a frozen Redis ran it when it thawed, its client hung up while Redis answered, or its request
ended while Redis was unreachable) is removed when Redis answers again, before it counts anything:
otherwise it would hold one of the key's ``max_concurrent`` slots for up to ``LEASE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from octoroute.access.limits import ALLOWED, Limits, LocalLimiter, Verdict
from octoroute.observability.logging import RateLimitedWarning, get_logger

RENEW_SECONDS: Final = 10.0
"""How often a router renews the leases of its requests in flight in the shared store."""
RECONNECT_SECONDS: Final = 1.0
"""How often an unreachable Redis is pinged to see whether it is back."""
WARNING_INTERVAL_SECONDS: Final = 60.0
STOP_SECONDS: Final = 1.0
"""How long shutdown waits for lease removals still on their way to Redis."""

log = get_logger("octoroute.state")


class StateUnavailable(Exception):
    """The shared store could not answer; the message says why (never with a password)."""


class SharedStore(Protocol):
    """Counters shared by every router using the same store (``access.redis_store``); each
    method raises :class:`StateUnavailable` when the store cannot answer."""

    async def acquire(self, name: str, limits: Limits, cost: int, lease: str) -> Verdict:
        """Check and take, atomically; ``lease`` names the concurrency slot (``""``: none)."""
        ...

    async def release(self, name: str, lease: str) -> None:
        """Free a concurrency slot."""
        ...

    async def renew(self, leases: Iterable[tuple[str, str]]) -> None:
        """Extend the leases ``(key name, lease)`` of requests still in flight."""
        ...

    async def ping(self) -> None:
        """Return when the store answers."""
        ...

    async def close(self) -> None:
        """Close its connections."""
        ...


def _nothing(*_: object) -> None:
    return None


class Limiter:
    """Per-key limit checks for one router process: shared through Redis when it can be, local
    when it cannot (or when no Redis is configured)."""

    def __init__(
        self,
        shared: SharedStore | None = None,
        *,
        where: str = "",
        local: LocalLimiter | None = None,
        on_fallback: Callable[[], None] = _nothing,
        on_shared: Callable[[bool], None] = _nothing,
    ) -> None:
        """``where`` names the Redis for log lines (its URL without the password);
        ``on_shared`` is told whenever Redis starts or stops being used."""
        self.local = local or LocalLimiter()
        self._shared = shared
        self._where = where
        self._on_fallback = on_fallback
        self._on_shared = on_shared
        self._up = shared is not None
        self.local_only = shared is None
        """No shared store configured: every check is :attr:`local`'s, with nothing to decide
        (the request path calls it directly)."""
        self._went_down = asyncio.Event()
        self._instance = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._held: dict[str, str] = {}
        """Leases in Redis of requests in flight: lease id -> key name."""
        self._orphans: dict[str, str] = {}
        """Leases Redis may hold for requests no longer in flight (lease id -> key name): asked
        for when Redis did not answer in time, or given back while it was unreachable. Removed
        as soon as Redis answers again, before it counts anything, so they do not hold a key's
        slots for the rest of ``LEASE_SECONDS``."""
        self._removals: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._warning = RateLimitedWarning(
            log,
            "shared state unreachable: counting client-key limits in this process",
            WARNING_INTERVAL_SECONDS,
        )

    @property
    def shared(self) -> bool:
        """Whether checks go to Redis now."""
        return self._shared is not None and self._up

    def acquire_now(self, name: str, limits: Limits, cost: int) -> Verdict | None:
        """The check, when it can be answered without waiting: no shared store configured, or
        it is down (then counted as a fallback). ``None``: ask the shared store
        (:meth:`acquire_shared`)."""
        if self._shared is not None:
            if self._up:
                return None
            self._on_fallback()
        return self.local.acquire(name, limits, cost)

    async def acquire_shared(self, name: str, limits: Limits, cost: int) -> Verdict:
        """The check in the shared store; answered locally if it cannot be reached."""
        shared = self._shared
        if shared is None or not self._up:
            return self.acquire_now(name, limits, cost) or ALLOWED
        lease = f"{self._instance}:{next(self._ids)}" if limits.max_concurrent else ""
        try:
            outcome = await shared.acquire(name, limits, cost, lease)
        except StateUnavailable as error:
            if lease:  # the script may still run (a frozen Redis thaws): its lease is nobody's
                self._orphans[lease] = name
            self._down(str(error))
            return self.acquire_now(name, limits, cost) or ALLOWED
        except asyncio.CancelledError:  # the client went away while Redis was answering
            if lease:
                self._remove_later(shared, name, lease)
            raise
        outcome.name = name
        if lease and outcome.refused is None:
            self._held[lease] = name
            outcome.shared_id = lease
        return outcome

    def release(self, lease: Verdict) -> None:
        """Give back the concurrency slot a granted verdict holds, if any, once (a Redis lease
        is removed in the background; one that cannot be removed expires by itself)."""
        counters = lease.counters
        if counters is not None:
            lease.counters = None
            if counters.busy > 0:
                counters.busy -= 1
        elif lease.shared_id:
            shared_id, lease.shared_id = lease.shared_id, ""
            self._held.pop(shared_id, None)
            if self._shared is not None and self._up:
                self._remove_later(self._shared, lease.name, shared_id)
            else:
                self._orphans[shared_id] = lease.name

    def _remove_later(self, shared: SharedStore, name: str, lease: str) -> None:
        task = asyncio.get_running_loop().create_task(self._remove(shared, name, lease))
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def _remove(self, shared: SharedStore, name: str, lease: str) -> None:
        try:
            await shared.release(name, lease)
        except StateUnavailable as error:
            self._orphans[lease] = name
            self._down(str(error))

    async def _reclaim(self, shared: SharedStore) -> bool:
        """Remove the orphaned leases; whether Redis took every removal."""
        for lease, name in list(self._orphans.items()):
            try:
                await shared.release(name, lease)
            except StateUnavailable:
                return False
            self._orphans.pop(lease, None)
        return True

    def _down(self, reason: str) -> None:
        if not self._up:
            return
        self._up = False
        self._went_down.set()
        self._warning.warn(redis=self._where, error=reason)
        self._on_shared(False)

    def _back(self) -> None:
        self._up = True
        self._went_down.clear()
        log.info("shared state reachable again: client-key limits are shared", redis=self._where)
        self._on_shared(True)

    async def start(self) -> None:
        """See whether Redis answers (logged), then keep watching it in the background."""
        shared = self._shared
        if shared is None:
            return
        try:
            await shared.ping()
        except StateUnavailable as error:
            self._up = False
            self._warning.warn(redis=self._where, error=str(error))
        else:
            log.info("shared state in Redis: client-key limits are shared", redis=self._where)
        self._on_shared(self._up)
        self._task = asyncio.get_running_loop().create_task(self._maintain(shared))

    async def _maintain(self, shared: SharedStore) -> None:
        """Renew this process's leases while Redis is up; ping it while it is down."""
        while True:
            if self._up:
                try:
                    await asyncio.wait_for(self._went_down.wait(), RENEW_SECONDS)
                except TimeoutError:
                    try:
                        await shared.renew(self._leases())
                    except StateUnavailable as error:
                        self._down(str(error))
                continue
            await asyncio.sleep(RECONNECT_SECONDS)
            try:
                await shared.ping()
            except StateUnavailable:
                continue
            if await self._reclaim(shared):
                self._back()

    def _leases(self) -> list[tuple[str, str]]:
        return [(name, lease) for lease, name in self._held.items()]

    async def stop(self) -> None:
        """Stop watching Redis, let lease removals finish (briefly), close the connections."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._removals:
            await asyncio.wait(self._removals, timeout=STOP_SECONDS)
        if self._shared is not None:
            await self._shared.close()

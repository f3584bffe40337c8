"""Slots for attempts: take one now, or wait in the tier's queue until one comes free.

Every attempt of a request goes through :meth:`Dispatcher.acquire`. When placement finds an
instance, the attempt starts at once; when every instance that could take it is at its
``max_concurrent`` (``Shortfall.FULL``), the request waits in its pool's line
(``fleet.queue``: ``high`` importance first, then arrival order) until an attempt ends on one of
them (``Endpoint.on_slot_freed``), an instance comes back (:meth:`Dispatcher.kick`), or its
ticket's deadline (``limits.queue_timeout_seconds``) passes. A full line or a deadline reached is
``FleetBusy``: 503 ``fleet_busy`` with ``Retry-After``, never a hang.

A slot is handed over, not announced: the waker starts the attempt (``Endpoint.begin``) before
it resolves the waiter's future, so no request that arrives meanwhile can take it. A waiter
cancelled after its slot was handed over (its client left) gives the slot back at once.

Handing out costs the same however many wait. A request joins the queue only when no free slot
could take it, so when an attempt ends only the instance it ended on has new room: the waker
walks, in serving order, only the lines of the scopes that hold that instance (``fleet.queue``),
with a check of a few attributes per waiter (not yet tried there, large enough) and runs
placement only for the first that can use it; usually that is the head. Other changes (an
instance recovered, re-admitted, its ``Retry-After`` or ejection over) offer every instance with
room the same way. While requests wait and an instance is only resting (told busy, or ejected),
a timer wakes the queue when it may be tried again: nothing else would.

With overflow (``routing.overflow = "up"``), a routed request that has waited
``overflow_after_ms`` takes a slot of the tier above if that tier has one free, and otherwise
also waits in the tier above's line, served by whichever tier frees a slot first.

A policy seam like ``fleet.health``: asyncio for futures and timers, no network, metrics behind
small protocols.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Final, Protocol

from octoroute.enums import TIER_POOLS, Importance, Pool
from octoroute.errors import FleetBusy, ModelNotFound
from octoroute.fleet.placement import Affinity, Demand, Pick, Shortfall, fits, has_room
from octoroute.fleet.queue import WaitQueue

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from octoroute.fleet.endpoint import Endpoint
    from octoroute.fleet.selector import Fleet

RETRY_AFTER_SECONDS: Final = 1.0
"""What a client refused with ``fleet_busy`` is told to wait: a slot frees whenever an answer
ends, so a short wait is the useful hint, and clients back off further on their own."""

Grant = tuple["Endpoint", bool]
"""A started attempt: the instance and whether it is its half-open trial."""


class Level(Protocol):
    """A gauge child (``octoroute_queue_depth{tier}``)."""

    def set(self, value: float) -> None: ...


class Sample(Protocol):
    """A histogram child (``octoroute_queue_wait_seconds``)."""

    def observe(self, amount: float) -> None: ...


class Count(Protocol):
    """A counter child (``octoroute_affinity_total{result}``)."""

    def inc(self, amount: float = 1) -> None: ...


class Ticket:
    """One request's standing: what it asks, how urgent it is, until when it may wait, and a
    slot taken for its first attempt before forwarding began (admission with overflow)."""

    __slots__ = ("deadline", "demand", "reserved", "urgent")

    def __init__(self, demand: Demand, urgent: bool, deadline: float) -> None:
        self.demand = demand
        self.urgent = urgent
        self.deadline = deadline
        """``loop.time()`` after which the request stops waiting for a slot."""
        self.reserved: Grant | None = None

    def take_reserved(self) -> Grant | None:
        """The reserved slot, handed over once."""
        reserved, self.reserved = self.reserved, None
        return reserved


class _Entry:
    """One waiter's place in one pool's queue, with what it may take there."""

    __slots__ = ("candidates", "exclude", "order", "pool", "queued", "scope", "urgent", "waiter")

    def __init__(
        self,
        waiter: _Waiter,
        pool: Pool,
        candidates: Sequence[Endpoint],
        exclude: Sequence[Endpoint],
    ) -> None:
        self.waiter = waiter
        self.pool = pool
        self.candidates = candidates
        self.exclude = exclude
        self.urgent = waiter.ticket.urgent
        self.scope: tuple[Endpoint, ...] = _scope_of(self)
        """Its line in the pool's queue: the requests that may use the same instances."""
        self.queued = False
        self.order = 0


class _Waiter:
    """A request waiting for a slot: its future and its places in one or two lines."""

    __slots__ = ("entries", "future", "ticket")

    def __init__(self, ticket: Ticket, future: asyncio.Future[Grant]) -> None:
        self.ticket = ticket
        self.future = future
        self.entries: list[_Entry] = []


class Dispatcher:
    """The slot queues of one fleet: one line per pool, bounded by ``max_queue``."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        max_queue: int,
        queue_timeout: float,
        depth: Mapping[Pool, Level] | None = None,
        waited: Mapping[Pool, Sample] | None = None,
        affinity: Mapping[Affinity, Count] | None = None,
        refused: Mapping[tuple[Pool, str], Count] | None = None,
    ) -> None:
        self._queues: dict[Pool, WaitQueue[_Entry, tuple[Endpoint, ...]]] = {}
        self.retarget(
            fleet,
            max_queue=max_queue,
            queue_timeout=queue_timeout,
            depth=depth,
            waited=waited,
            affinity=affinity,
            refused=refused,
        )
        self._waking = False
        self._again: set[Pool] = set()
        self._kick_at: dict[Pool, asyncio.TimerHandle] = {}

    def retarget(
        self,
        fleet: Fleet,
        *,
        max_queue: int,
        queue_timeout: float,
        depth: Mapping[Pool, Level] | None = None,
        waited: Mapping[Pool, Sample] | None = None,
        affinity: Mapping[Affinity, Count] | None = None,
        refused: Mapping[tuple[Pool, str], Count] | None = None,
    ) -> None:
        """Serve ``fleet`` from now on (a reload's; at construction, the first): its instances
        take and free slots here, its pools' queues are bounded by ``max_queue`` and new tickets
        wait at most ``queue_timeout``.

        Requests already waiting keep their places and tickets; one that waits for a whole tier
        or for one model's replicas waits for that tier or model of ``fleet`` from now on (its
        new instances included, its removed ones not), and overflows (``routing.overflow``)
        into ``fleet``'s tier above; one that waits for a model ``fleet`` does not have gets
        ``ModelNotFound`` at once.
        """
        previous: Fleet | None = getattr(self, "_fleet", None)
        if previous is not None and previous is not fleet:
            self._rescope(previous, fleet)
        self._fleet = fleet
        self._timeout = queue_timeout
        self._depth = depth or {}
        self._waited = waited or {}
        self._affinity = affinity or {}
        self._refused = refused or {}
        # The fleet's own tuples: a tier-wide request's candidates are this very object, so
        # "is the instance one of its candidates" is an identity check for them.
        pools: dict[Pool, tuple[Endpoint, ...]] = {
            TIER_POOLS[tier]: endpoints for tier, endpoints in fleet.tiers.items()
        }
        if fleet.embeddings:
            pools[Pool.EMBEDDINGS] = fleet.embeddings
        for endpoint in fleet.all():
            endpoint.on_slot_freed = self._freed if endpoint.max_concurrent else None
        self._pools = pools
        for pool in pools:
            queue = self._queues.get(pool)
            if queue is None:
                self._queues[pool] = WaitQueue(max_queue)
            else:
                queue.capacity = max_queue  # those already waiting stay, even past it

    def _rescope(self, previous: Fleet, fleet: Fleet) -> None:
        """Move each waiting request from a scope of ``previous`` (a tier, the embedding
        models, one model's replicas) to the same scope of ``fleet``; one whose model the
        reload removed is told so at once rather than left waiting for instances that are
        gone, and never given another model."""
        moves: dict[int, tuple[tuple[Endpoint, ...], tuple[Endpoint, ...]]] = {
            id(old): (old, fleet.tiers[tier]) for tier, old in previous.tiers.items()
        }
        if previous.embeddings and fleet.embeddings:
            moves[id(previous.embeddings)] = (previous.embeddings, fleet.embeddings)
        for name in {endpoint.name for endpoint in previous.all()}:
            old, new = previous.by_name(name), fleet.by_name(name)
            if new and new[0].pool is old[0].pool:
                moves[id(old)] = (old, new)
        gone: list[_Entry] = []
        for queue in self._queues.values():
            for scope in list(queue.scopes()):
                # Equal scopes share a line (a tier that is one model): move entry by entry.
                for entry in queue.walk((scope,)):
                    move = moves.get(id(entry.candidates))
                    if move is not None and move[0] is entry.candidates:
                        entry.candidates = move[1]
                    elif not any(fleet.by_name(endpoint.name) for endpoint in entry.candidates):
                        gone.append(entry)
                queue.regroup(scope, _scope_of)
        for entry in gone:
            waiter = entry.waiter
            if not waiter.future.done():
                self._leave(waiter)
                waiter.future.set_exception(_removed(entry.candidates))

    def depth(self, pool: Pool) -> int:
        """Requests waiting for a slot of ``pool`` now."""
        queue = self._queues.get(pool)
        return 0 if queue is None else queue.depth

    def ticket(self, demand: Demand, importance: Importance) -> Ticket:
        """A new request's ticket; its wait for slots ends ``queue_timeout_seconds`` from now."""
        deadline = asyncio.get_running_loop().time() + self._timeout
        return Ticket(demand, importance is Importance.HIGH, deadline)

    # --- taking a slot ----------------------------------------------------------------------

    async def acquire(
        self,
        candidates: Sequence[Endpoint],
        tried: Sequence[Endpoint],
        ticket: Ticket,
        what: str,
        *,
        overflow: tuple[Sequence[Endpoint], float] | None = None,
    ) -> Grant | None:
        """Start an attempt on an instance of ``candidates`` not in ``tried``, waiting for a
        slot if every one that could take it is full.

        ``None`` when nothing could take it even with a free slot (unhealthy, ejected, busy,
        already tried, too small): the caller's error. ``FleetBusy`` when the line is full or
        the ticket's deadline passes; ``what`` names the scope in its message. With
        ``overflow`` (the tier above's instances and seconds to wait first), the grant may be
        an instance of the tier above: compare its ``pool``.
        """
        picked = self._fleet.place(candidates, tried, ticket.demand)
        if not isinstance(picked, Shortfall):
            return self._start(picked)
        if picked is not Shortfall.FULL:
            return None
        if overflow is not None and overflow[1] <= 0:
            granted = self._try_upper(overflow[0], ticket)
            if granted is not None:
                return granted
        return await self._wait(candidates, tried, ticket, what, overflow)

    def _start(self, picked: Pick) -> Grant:
        counter = self._affinity.get(picked[1])
        if counter is not None:
            counter.inc()
        return self._fleet.start(picked)

    def _try_upper(self, upper: Sequence[Endpoint], ticket: Ticket) -> Grant | None:
        picked = self._fleet.place(upper, (), ticket.demand)
        return None if isinstance(picked, Shortfall) else self._start(picked)

    async def _wait(
        self,
        candidates: Sequence[Endpoint],
        tried: Sequence[Endpoint],
        ticket: Ticket,
        what: str,
        overflow: tuple[Sequence[Endpoint], float] | None,
    ) -> Grant:
        loop = asyncio.get_running_loop()
        pool = candidates[0].pool
        queue = self._queues[pool]
        started = loop.time()
        if started >= ticket.deadline:  # a failover, after the request's wait was used up
            raise self._busy_timeout(
                pool,
                f"Every instance of {what} that could take this request's next attempt is at "
                f"its max_concurrent, and the request has used its {self._timeout:g} s of "
                "waiting for slots (limits.queue_timeout_seconds).",
            )
        if queue.full:
            self._count_refusal(pool, "queue_full")
            raise FleetBusy(
                f"Every instance of {what} that could take this request is at its "
                f"max_concurrent, and {queue.depth} requests are already waiting "
                f"(limits.max_queue = {queue.capacity}). Retry in "
                f"{RETRY_AFTER_SECONDS:.0f} s.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        waiter = _Waiter(ticket, loop.create_future())
        self._join(waiter, pool, candidates, tried)
        self._watch_ready(pool)
        timer: asyncio.TimerHandle | None = None
        if overflow is not None:
            if overflow[1] <= 0:
                self._spill(waiter, overflow[0])
            else:
                timer = loop.call_later(overflow[1], self._spill, waiter, overflow[0])
        future = waiter.future
        try:
            async with asyncio.timeout_at(ticket.deadline):
                return await future
        except TimeoutError:
            if future.done() and not future.cancelled() and future.exception() is None:
                return future.result()  # handed a slot just as the deadline passed
            gone = self._fleet.place(candidates, tried, ticket.demand)
            if gone is Shortfall.UNAVAILABLE:
                why = (
                    f"No instance of {what} could take this request within {self._timeout:g} s "
                    "(limits.queue_timeout_seconds): those that could were at their "
                    "max_concurrent, and none of them is available now (unhealthy, ejected or "
                    "told busy; GET /models shows why)."
                )
            else:
                why = (
                    f"No instance of {what} had a free slot within {self._timeout:g} s "
                    "(limits.queue_timeout_seconds): every one that could take this request "
                    "stayed at its max_concurrent."
                )
            raise self._busy_timeout(pool, why) from None
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                endpoint, trial = future.result()
                endpoint.end(trial)  # the client left after its slot was handed over
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._leave(waiter)
            sample = self._waited.get(pool)
            if sample is not None:
                sample.observe(loop.time() - started)

    def _count_refusal(self, pool: Pool, reason: str) -> None:
        counter = self._refused.get((pool, reason))
        if counter is not None:
            counter.inc()

    def _busy_timeout(self, pool: Pool, why: str) -> FleetBusy:
        self._count_refusal(pool, "queue_timeout")
        return FleetBusy(
            f"{why} Retry in {RETRY_AFTER_SECONDS:.0f} s.", retry_after=RETRY_AFTER_SECONDS
        )

    def _join(
        self,
        waiter: _Waiter,
        pool: Pool,
        candidates: Sequence[Endpoint],
        exclude: Sequence[Endpoint],
    ) -> bool:
        entry = _Entry(waiter, pool, candidates, exclude)
        queue = self._queues[pool]
        if not queue.push(entry):
            return False
        waiter.entries.append(entry)
        self._show_depth(pool)
        return True

    def _leave(self, waiter: _Waiter) -> None:
        for entry in waiter.entries:
            if self._queues[entry.pool].remove(entry):
                self._show_depth(entry.pool)

    def _show_depth(self, pool: Pool) -> None:
        level = self._depth.get(pool)
        if level is not None:
            level.set(self._queues[pool].depth)

    def _spill(self, waiter: _Waiter, upper: Sequence[Endpoint]) -> None:
        """Overflow time: a slot of the tier above if one is free, else a place in its line.
        The tier above is the current fleet's: a reload while the request waited moved it, as
        it moved the request's own line (``upper`` is the whole tier as it was when the request
        joined)."""
        if waiter.future.done() or not waiter.entries or not upper:
            return
        upper = self._pools.get(upper[0].pool, ())
        if not upper:
            return
        granted = self._try_upper(upper, waiter.ticket)
        if granted is not None:
            self._leave(waiter)
            waiter.future.set_result(granted)
            return
        pool = upper[0].pool
        if all(entry.pool is not pool for entry in waiter.entries):
            self._join(waiter, pool, upper, ())

    # --- waking -----------------------------------------------------------------------------

    def _freed(self, endpoint: Endpoint) -> None:
        """An attempt ended on ``endpoint``, which has a slot limit: only it has new room."""
        if self._queues[endpoint.pool].depth:
            self._wake(endpoint.pool, endpoint)

    def kick(self, pool: Pool) -> None:
        """Serve ``pool``'s waiting requests while its instances have room: called when an
        instance comes back (recovered, re-admitted, no longer busy) or a trial ended."""
        self._wake(pool, None)

    def _wake(self, pool: Pool, freed: Endpoint | None) -> None:
        if self._waking:
            self._again.add(pool)  # begin() can report availability while we hand slots over
            return
        self._waking = True
        try:
            self._serve(pool, freed)
            while self._again:
                self._serve(self._again.pop(), None)
        finally:
            self._waking = False

    def _serve(self, pool: Pool, freed: Endpoint | None) -> None:
        """Hand ``pool``'s free slots (only ``freed``'s, when given) to waiters in line order,
        then make sure a resting instance will wake the rest."""
        queue = self._queues.get(pool)
        if queue is None or not queue.depth:
            return
        now = self._fleet.now()
        whole = self._pools.get(pool, ())  # a pool a reload removed may still have waiters
        if freed is None:
            free = [endpoint for endpoint in whole if has_room(endpoint, now)]
        elif has_room(freed, now):
            free = [freed]
        else:
            # Only an instance whose attempt just ended can have begun resting (told busy,
            # ejected) unnoticed: a timer wakes the queue when it may be tried again.
            if freed.healthy and now < freed.ready_at < math.inf:
                self._wake_at(pool, freed.ready_at - now)
            return
        if free:
            self._hand_out(queue, whole, free, now)
        if freed is None and queue.depth:
            self._watch_ready(pool)

    def _hand_out(
        self,
        queue: WaitQueue[_Entry, tuple[Endpoint, ...]],
        whole: tuple[Endpoint, ...],
        free: list[Endpoint],
        now: float,
    ) -> None:
        scopes = queue.scopes()
        if len(scopes) > 1 or whole not in scopes:  # else every waiter may use the whole pool
            scopes = [scope for scope in scopes if scope is whole or _holds(scope, free)]
        for entry in queue.walk(scopes):
            waiter = entry.waiter
            if waiter.future.done():
                self._leave(waiter)  # cancelled; its task has not run its cleanup yet
                continue
            demand = waiter.ticket.demand
            candidates, exclude = entry.candidates, entry.exclude
            for endpoint in free:
                if (
                    (candidates is whole or endpoint in candidates)
                    and not (exclude and endpoint in exclude)
                    and fits(endpoint, demand)
                ):
                    break
            else:
                continue  # no free slot it may use: the next waiter
            picked = self._fleet.place(candidates, exclude, demand)
            if isinstance(picked, Shortfall):
                continue
            granted = self._start(picked)
            self._leave(waiter)
            waiter.future.set_result(granted)
            free = [endpoint for endpoint in free if has_room(endpoint, now)]
            if not free:
                return

    def _watch_ready(self, pool: Pool) -> None:
        """Wake ``pool``'s queue when a healthy instance told busy (``Retry-After``) or ejected
        becomes ready again: no attempt ends to say so."""
        now = self._fleet.now()
        soonest = min(
            (
                ep.ready_at
                for ep in self._pools.get(pool, ())
                if ep.healthy and now < ep.ready_at < math.inf
            ),
            default=None,
        )
        if soonest is not None:
            self._wake_at(pool, soonest - now)

    def _wake_at(self, pool: Pool, delay: float) -> None:
        """One timer per pool, the soonest asked for."""
        loop = asyncio.get_running_loop()
        current = self._kick_at.get(pool)
        if current is not None and current.when() <= loop.time() + delay:
            return
        if current is not None:
            current.cancel()
        self._kick_at[pool] = loop.call_later(delay, self._ready_again, pool)

    def _ready_again(self, pool: Pool) -> None:
        self._kick_at.pop(pool, None)
        self.kick(pool)

    def close(self) -> None:
        """Cancel pending wake-up timers (at shutdown)."""
        for handle in self._kick_at.values():
            handle.cancel()
        self._kick_at.clear()


def _scope_of(entry: _Entry) -> tuple[Endpoint, ...]:
    candidates = entry.candidates
    return candidates if isinstance(candidates, tuple) else tuple(candidates)


def _removed(candidates: Sequence[Endpoint]) -> ModelNotFound:
    """The error of a request that waited for a model a reload removed."""
    names = " or ".join(sorted({f"'{endpoint.name}'" for endpoint in candidates}))
    return ModelNotFound(
        f"The model {names} was removed from the router's configuration (a reload) while this "
        "request waited for a slot. GET /v1/models lists the models it serves now."
    )


def _holds(scope: tuple[Endpoint, ...], free: list[Endpoint]) -> bool:
    """Whether some instance of ``free`` is in ``scope``."""
    return any(endpoint in scope for endpoint in free)

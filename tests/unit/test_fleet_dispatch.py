"""Slots and the waiting line, on the event loop without sockets: who gets a freed slot, when
waiting ends, and that no slot is lost on the way."""

from __future__ import annotations

import asyncio
import random

import pytest

from octoroute.config.schema import (
    Config,
    EndpointConfig,
    HealthConfig,
    ModelsConfig,
    RoutingConfig,
    ServerConfig,
)
from octoroute.enums import TIER_POOLS, Importance, Pool, Strategy, Tier
from octoroute.errors import FleetBusy
from octoroute.fleet.dispatch import Dispatcher, Grant, Ticket
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.placement import NO_DEMAND, Affinity, Demand
from octoroute.fleet.selector import Fleet
from tests.harness import wait_until


class Level:
    def __init__(self) -> None:
        self.values: list[float] = []

    def set(self, value: float) -> None:
        self.values.append(value)

    def observe(self, amount: float) -> None:
        self.values.append(amount)

    def inc(self, amount: float = 1) -> None:
        self.values.append(amount)


def tier(tier: Tier, count: int, slots: int | None) -> tuple[EndpointConfig, ...]:
    return tuple(
        EndpointConfig(
            pool=TIER_POOLS[tier],
            index=i,
            name=f"{tier}-model",
            base_url=f"http://{tier}-{i}:8000/v1",
            max_tokens=256,
            max_concurrent=slots,
        )
        for i in range(count)
    )


def fleet(fast: int = 2, balanced: int = 1, slots: int | None = 1) -> Fleet:
    config = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(
            fast=tier(Tier.FAST, fast, slots),
            balanced=tier(Tier.BALANCED, balanced, slots),
            deep=tier(Tier.DEEP, 1, None),
        ),
        routing=RoutingConfig(strategy=Strategy.RULE),
        health=HealthConfig(failure_threshold=1),
    )
    return Fleet(config, rng=random.Random(0))


def dispatcher(
    f: Fleet, *, max_queue: int = 8, timeout: float = 5.0, levels: dict[str, Level] | None = None
) -> Dispatcher:
    levels = {} if levels is None else levels
    depth = levels.setdefault("depth", Level())
    waited = levels.setdefault("waited", Level())
    hits = levels.setdefault("affinity", Level())
    return Dispatcher(
        f,
        max_queue=max_queue,
        queue_timeout=timeout,
        depth={Pool.FAST: depth},
        waited={Pool.FAST: waited},
        affinity={Affinity.NONE: hits},
    )


async def fill(d: Dispatcher, endpoints: tuple[Endpoint, ...]) -> list[Grant]:
    grants = []
    for _ in endpoints:
        granted = await d.acquire(endpoints, (), d.ticket(NO_DEMAND, Importance.NORMAL), "tier")
        assert granted is not None
        grants.append(granted)
    return grants


def waiting(
    d: Dispatcher, endpoints: tuple[Endpoint, ...], importance: Importance = Importance.NORMAL
) -> asyncio.Task[Grant | None]:
    ticket = d.ticket(NO_DEMAND, importance)
    return asyncio.get_running_loop().create_task(d.acquire(endpoints, (), ticket, "tier 'fast'"))


async def test_a_free_slot_is_taken_at_once_and_counted() -> None:
    f = fleet()
    levels: dict[str, Level] = {}
    d = dispatcher(f, levels=levels)
    fast = f.tiers[Tier.FAST]

    first, second = await fill(d, fast)

    assert {first[0], second[0]} == set(fast)
    assert all(ep.in_flight == 1 for ep in fast)
    assert levels["affinity"].values == [1, 1]
    assert levels["waited"].values == [], "nobody waited"


async def test_a_request_waits_while_every_slot_is_taken_and_gets_the_freed_one() -> None:
    f = fleet()
    levels: dict[str, Level] = {}
    d = dispatcher(f, levels=levels)
    fast = f.tiers[Tier.FAST]
    grants = await fill(d, fast)

    task = waiting(d, fast)
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="the request to queue")
    assert not task.done()
    endpoint, trial = grants[1]
    endpoint.end(trial)
    granted = await asyncio.wait_for(task, 1)

    assert granted is not None
    assert granted[0] is endpoint
    assert endpoint.in_flight == 1, "the slot was handed over, not announced"
    assert d.depth(Pool.FAST) == 0
    assert levels["depth"].values == [1, 0]
    assert len(levels["waited"].values) == 1


async def test_high_importance_is_served_first_then_arrival_order() -> None:
    f = fleet(fast=1)
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]
    (only,) = await fill(d, fast)
    order: list[str] = []

    async def wait_as(name: str, importance: Importance) -> None:
        granted = await waiting(d, fast, importance)
        assert granted is not None
        order.append(name)
        granted[0].end(granted[1])

    tasks = []
    for name, importance in (
        ("normal-1", Importance.NORMAL),
        ("low-1", Importance.LOW),
        ("high-1", Importance.HIGH),
        ("normal-2", Importance.NORMAL),
        ("high-2", Importance.HIGH),
    ):
        tasks.append(asyncio.create_task(wait_as(name, importance)))
        count = len(tasks)
        await wait_until(lambda: d.depth(Pool.FAST) == count, what="queueing")  # noqa: B023
    only[0].end(only[1])
    await asyncio.wait_for(asyncio.gather(*tasks), 2)

    assert order == ["high-1", "high-2", "normal-1", "low-1", "normal-2"]
    assert fast[0].in_flight == 0


async def test_waiting_ends_with_fleet_busy_after_the_queue_timeout() -> None:
    f = fleet()
    d = dispatcher(f, timeout=0.05)
    fast = f.tiers[Tier.FAST]
    await fill(d, fast)

    with pytest.raises(FleetBusy) as caught:
        await asyncio.wait_for(waiting(d, fast), 2)

    assert caught.value.status == 503
    assert caught.value.code == "fleet_busy"
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 1
    assert "queue_timeout_seconds" in caught.value.message
    assert d.depth(Pool.FAST) == 0


async def test_a_full_line_answers_fleet_busy_at_once() -> None:
    f = fleet()
    d = dispatcher(f, max_queue=2)
    fast = f.tiers[Tier.FAST]
    await fill(d, fast)
    queued = [waiting(d, fast), waiting(d, fast)]
    await wait_until(lambda: d.depth(Pool.FAST) == 2, what="two waiting")

    with pytest.raises(FleetBusy) as caught:
        await asyncio.wait_for(waiting(d, fast), 1)

    assert "limits.max_queue = 2" in caught.value.message
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    assert d.depth(Pool.FAST) == 0


async def test_a_cancelled_waiter_leaves_the_line_and_the_next_one_is_served() -> None:
    f = fleet(fast=1)
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]
    (only,) = await fill(d, fast)
    gone, stays = waiting(d, fast), waiting(d, fast)
    await wait_until(lambda: d.depth(Pool.FAST) == 2, what="two waiting")

    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert d.depth(Pool.FAST) == 1
    only[0].end(only[1])
    granted = await asyncio.wait_for(stays, 1)

    assert granted is not None
    assert fast[0].in_flight == 1


async def one_waiting() -> tuple[tuple[Endpoint, ...], Grant, asyncio.Task[Grant | None]]:
    """A fast tier of one single-slot instance: its slot taken, one request waiting for it."""
    f = fleet(fast=1)
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]
    (only,) = await fill(d, fast)
    task = waiting(d, fast)
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="waiting")
    return fast, only, task


async def test_a_slot_handed_to_a_waiter_that_was_just_cancelled_is_given_back() -> None:
    fast, only, task = await one_waiting()

    only[0].end(only[1])  # hands the slot over: resolves the waiter's future...
    task.cancel()  # ...and the client leaves before the waiter runs again
    await asyncio.gather(task, return_exceptions=True)

    assert task.cancelled()
    assert fast[0].in_flight == 0, "the handed-over slot leaked"


async def test_an_instance_that_recovers_serves_the_waiting_request() -> None:
    f = fleet()
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]
    down = fast[1]
    f.mark_failure(down, "down")
    ticket = d.ticket(NO_DEMAND, Importance.NORMAL)
    first = await d.acquire(fast, (), ticket, "tier")
    assert first is not None
    assert first[0] is fast[0]
    task = waiting(d, fast)
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="waiting")

    f.mark_success(down)
    d.kick(Pool.FAST)  # what the runtime's health listener does on recovery
    granted = await asyncio.wait_for(task, 1)

    assert granted is not None
    assert granted[0] is down


async def test_an_instance_whose_retry_after_runs_out_serves_the_waiting_request() -> None:
    f = fleet()
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]
    fast[1].throttle(0.05, 429)
    ticket = d.ticket(NO_DEMAND, Importance.NORMAL)
    assert await d.acquire(fast, (), ticket, "tier") is not None

    granted = await asyncio.wait_for(waiting(d, fast), 2)

    assert granted is not None
    assert granted[0] is fast[1]


async def test_nothing_eligible_is_none_not_a_wait() -> None:
    f = fleet()
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]

    ticket = d.ticket(NO_DEMAND, Importance.NORMAL)
    assert await d.acquire(fast, fast, ticket, "tier") is None
    too_small = Demand(prompt_tokens=10, output_tokens=10)
    for ep in fast:
        ep.context_window = 5
    assert await d.acquire(fast, (), d.ticket(too_small, Importance.NORMAL), "tier") is None


async def test_overflow_takes_a_free_slot_of_the_tier_above_after_the_wait() -> None:
    f = fleet(fast=1, balanced=1)
    d = dispatcher(f)
    fast, balanced = f.tiers[Tier.FAST], f.tiers[Tier.BALANCED]
    await fill(d, fast)
    ticket = d.ticket(NO_DEMAND, Importance.NORMAL)
    loop = asyncio.get_running_loop()
    started = loop.time()

    granted = await asyncio.wait_for(
        d.acquire(fast, (), ticket, "tier", overflow=(balanced, 0.05)), 2
    )

    assert granted is not None
    assert granted[0] is balanced[0]
    assert loop.time() - started >= 0.04
    assert d.depth(Pool.FAST) == 0


async def test_overflow_at_zero_goes_up_at_once() -> None:
    f = fleet(fast=1, balanced=1)
    d = dispatcher(f)
    fast, balanced = f.tiers[Tier.FAST], f.tiers[Tier.BALANCED]
    await fill(d, fast)

    granted = await d.acquire(
        fast, (), d.ticket(NO_DEMAND, Importance.NORMAL), "tier", overflow=(balanced, 0)
    )

    assert granted is not None
    assert granted[0] is balanced[0]


async def test_overflow_with_both_tiers_full_is_served_by_whichever_frees_first() -> None:
    f = fleet(fast=1, balanced=1)
    d = dispatcher(f)
    fast, balanced = f.tiers[Tier.FAST], f.tiers[Tier.BALANCED]
    (fast_slot,) = await fill(d, fast)
    (upper_slot,) = await fill(d, balanced)
    ticket = d.ticket(NO_DEMAND, Importance.NORMAL)
    task = asyncio.create_task(d.acquire(fast, (), ticket, "tier", overflow=(balanced, 0.01)))
    await wait_until(
        lambda: d.depth(Pool.FAST) == 1 and d.depth(Pool.BALANCED) == 1,
        what="waiting in both lines",
    )

    upper_slot[0].end(upper_slot[1])
    granted = await asyncio.wait_for(task, 1)

    assert granted is not None
    assert granted[0] is balanced[0]
    assert d.depth(Pool.FAST) == 0
    assert d.depth(Pool.BALANCED) == 0
    fast_slot[0].end(fast_slot[1])
    assert fast[0].in_flight == 0


async def test_a_reserved_slot_is_handed_over_once() -> None:
    ticket = Ticket(NO_DEMAND, False, 0.0)
    f = fleet()
    ticket.reserved = (f.tiers[Tier.FAST][0], False)

    assert ticket.take_reserved() == (f.tiers[Tier.FAST][0], False)
    assert ticket.take_reserved() is None


async def test_a_waiter_wakes_when_an_instance_told_busy_after_it_joined_rests_no_longer() -> None:
    fast, only, task = await one_waiting()

    only[0].throttle(0.05, 429)  # the running attempt is answered 429, Retry-After...
    only[0].end(only[1])  # ...and ends: the slot is free, the instance rests
    assert not task.done()
    granted = await asyncio.wait_for(task, 2)

    assert granted is not None
    assert granted[0] is fast[0]


async def test_a_freed_slot_goes_to_the_first_waiter_that_may_use_it() -> None:
    f = fleet(fast=2)
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]
    grants = {granted[0]: granted for granted in await fill(d, fast)}
    first_only = (fast[0],)  # a named model served by the first instance alone
    named = asyncio.create_task(
        d.acquire(first_only, (), d.ticket(NO_DEMAND, Importance.NORMAL), "model")
    )
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="the named request waiting")
    tier_wide = waiting(d, fast)
    await wait_until(lambda: d.depth(Pool.FAST) == 2, what="both waiting")

    endpoint, trial = grants[fast[1]]
    endpoint.end(trial)
    served = await asyncio.wait_for(tier_wide, 1)

    assert served is not None
    assert served[0] is fast[1]
    assert not named.done(), "the named request ahead cannot use the second instance"
    endpoint, trial = grants[fast[0]]
    endpoint.end(trial)
    named_grant = await asyncio.wait_for(named, 1)
    assert named_grant is not None
    assert named_grant[0] is fast[0]
    assert d.depth(Pool.FAST) == 0


async def test_a_waiter_too_large_for_the_freed_instance_waits_for_one_that_fits() -> None:
    f = fleet(fast=2)
    d = dispatcher(f)
    fast = f.tiers[Tier.FAST]
    fast[0].context_window, fast[1].context_window = 32768, 4096
    grants = {granted[0]: granted for granted in await fill(d, fast)}
    large = Demand(prompt_tokens=20000, output_tokens=100)
    task = asyncio.create_task(d.acquire(fast, (), d.ticket(large, Importance.NORMAL), "tier"))
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="waiting")

    endpoint, trial = grants[fast[1]]
    endpoint.end(trial)
    assert d.depth(Pool.FAST) == 1, "the small instance's slot cannot hold it"
    endpoint, trial = grants[fast[0]]
    endpoint.end(trial)
    granted = await asyncio.wait_for(task, 1)

    assert granted is not None
    assert granted[0] is fast[0]


async def test_a_request_waiting_to_overflow_goes_up_to_the_reloaded_tier_above() -> None:
    """A reload while a request waits for its overflow time: it overflows into the new fleet's
    tier above (here with a free slot), not into the instances the reload replaced."""
    old = fleet(fast=1, balanced=1)
    d = dispatcher(old)
    await fill(d, old.tiers[Tier.FAST])
    await fill(d, old.tiers[Tier.BALANCED])  # the old tier above: full
    ticket = d.ticket(NO_DEMAND, Importance.NORMAL)
    task = asyncio.create_task(
        d.acquire(
            old.tiers[Tier.FAST], (), ticket, "tier", overflow=(old.tiers[Tier.BALANCED], 0.1)
        )
    )
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="waiting for fast")
    new = fleet(fast=1, balanced=2)
    d.retarget(new, max_queue=8, queue_timeout=5.0)
    await fill(d, new.tiers[Tier.FAST])  # the new fast instance is busy too

    granted = await asyncio.wait_for(task, 2)

    assert granted is not None
    assert granted[0] in new.tiers[Tier.BALANCED]
    assert d.depth(Pool.FAST) == 0

"""The fleet side of a reload, without sockets: an instance kept with its state and new settings,
one retired and drained, a new fleet built around kept instances, requests already waiting for a
slot, and the prober told about new instances."""

from __future__ import annotations

import asyncio
import math
import random

import msgspec

from octoroute.config.schema import (
    Config,
    EndpointConfig,
    HealthConfig,
    ModelsConfig,
    RoutingConfig,
    ServerConfig,
)
from octoroute.enums import TIER_POOLS, Importance, Pool, Strategy, Tier
from octoroute.fleet.dispatch import Dispatcher
from octoroute.fleet.endpoint import Admission, Endpoint, OutlierSettings
from octoroute.fleet.health import HealthProber
from octoroute.fleet.placement import Demand
from octoroute.fleet.selector import Fleet
from tests.harness import wait_until
from tests.unit.test_fleet_dispatch import fill, waiting
from tests.unit.test_fleet_health import Probe, running, wait_rounds

OUTLIER = OutlierSettings(eject_after=1, base_seconds=30, max_seconds=300)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def endpoint_config(
    tier: Tier, index: int, host: str, *, slots: int | None = None, **settings: object
) -> EndpointConfig:
    return EndpointConfig(
        pool=TIER_POOLS[tier],
        index=index,
        name=f"{tier}-model",
        base_url=f"http://{host}:8000/v1",
        max_tokens=256,
        max_concurrent=slots,
        **settings,  # type: ignore[arg-type]
    )


def config(fast: list[str], *, slots: int | None = 1, max_queue: int = 8) -> Config:
    """A config whose fast tier is one instance per host in ``fast``, in that order."""
    return Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(
            fast=tuple(endpoint_config(Tier.FAST, i, h, slots=slots) for i, h in enumerate(fast)),
            balanced=(endpoint_config(Tier.BALANCED, 0, "balanced-host"),),
            deep=(endpoint_config(Tier.DEEP, 0, "deep-host"),),
        ),
        routing=RoutingConfig(strategy=Strategy.RULE),
        health=HealthConfig(failure_threshold=1, eject_after_failures=1),
    )


def reloaded(old: Fleet, new: Config) -> tuple[Fleet, list[Endpoint]]:
    """A fleet for ``new`` keeping ``old``'s instances by host (as ``Runtime.commit`` does by
    identity); the instances of ``old`` not kept are retired and returned."""
    by_host = {ep.base_url: ep for ep in old.all()}
    carried = {}
    for cfg in new.all_endpoints():
        kept = by_host.pop(cfg.base_url, None)
        if kept is not None:
            kept.reconfigure(cfg, failure_threshold=1, outlier=OUTLIER)
            carried[(cfg.pool, cfg.index)] = kept
    gone = list(by_host.values())
    drained: list[Endpoint] = []
    for ep in gone:
        ep.retire(drained.append)
    return Fleet(new, carried=carried, rng=random.Random(0)), gone


# --- one instance -------------------------------------------------------------------------------


def test_a_reconfigured_instance_keeps_its_state_and_takes_its_new_settings() -> None:
    clock = Clock()
    ep = Endpoint(
        endpoint_config(Tier.FAST, 0, "a"), failure_threshold=3, clock=clock, outlier=OUTLIER
    )
    trial = ep.begin()
    ep.failed("status", "HTTP 500", trial)  # one failure: ejected (eject_after = 1)
    ejected_until = ep.ejected_until
    moved = endpoint_config(Tier.FAST, 2, "a", slots=4, weight=2.0, priority=5, context_window=8192)

    ep.reconfigure(moved, failure_threshold=1, outlier=OUTLIER)

    assert (ep.id, ep.position, ep.priority, ep.weight, ep.inverse_weight) == (
        "fast[2]", 2, 5, 2.0, 0.5,
    )  # fmt: skip
    assert (ep.max_concurrent, ep.context_window, ep.config) == (4, 8192, moved)
    assert (ep.admission, ep.ejected_until, ep.in_flight) == (Admission.EJECTED, ejected_until, 1)
    assert ep.consecutive_failures == 1
    assert ep.failure_threshold == 1
    ep.mark_failure("again")
    assert not ep.healthy  # the new threshold counts from now on


def test_a_retired_instance_is_never_ready_again_and_drains_when_its_last_attempt_ends() -> None:
    ep = Endpoint(endpoint_config(Tier.FAST, 0, "a"))
    trials = [ep.begin(), ep.begin()]
    drained: list[Endpoint] = []

    ep.retire(drained.append)
    ep.end(trials[0])
    still = list(drained)
    ep.throttle(0.0, 429)  # a late answer recomputes readiness: still never ready
    ep.end(trials[1])

    assert still == []
    assert drained == [ep]
    assert ep.ready_at == math.inf
    assert "retired" in repr(ep)


def test_an_idle_instance_drains_as_soon_as_it_is_retired() -> None:
    ep = Endpoint(endpoint_config(Tier.FAST, 0, "a"))
    drained: list[Endpoint] = []

    ep.retire(drained.append)

    assert drained == [ep]


# --- a new fleet around kept instances ----------------------------------------------------------


def test_a_fleet_built_on_a_reload_uses_the_kept_instances_and_builds_the_new_ones() -> None:
    old = Fleet(config(["a", "b", "c"]))
    a, b, c = old.tiers[Tier.FAST]

    new, gone = reloaded(old, config(["c", "x", "a"]))

    c2, x, a2 = new.tiers[Tier.FAST]
    assert (c2, a2) == (c, a)
    assert (c.id, a.id, x.id) == ("fast[0]", "fast[2]", "fast[1]")
    assert x not in old.all()
    assert gone == [b]
    assert b.retired
    assert new.by_name("fast-model") == (c, x, a)


def test_a_scope_of_the_old_fleet_is_placed_by_the_new_one_without_its_retired_instances() -> None:
    old = Fleet(config(["a", "b", "c", "e"], slots=None))
    before = old.tiers[Tier.FAST]  # what a request resolved before the reload holds
    new, gone = reloaded(old, config(["e", "c"], slots=None))

    picks = {new.place(before, (), Demand(key=key))[0] for key in range(0, 2**40, 2**34)}

    assert picks == {before[2], before[3]}  # c and e; never a retired one, no IndexError
    assert all(ep.retired for ep in gone)


# --- requests waiting for a slot ----------------------------------------------------------------


async def test_a_removed_instance_frees_no_slot_for_waiters_and_a_kept_one_does() -> None:
    old = Fleet(config(["a", "b"]))
    d = Dispatcher(old, max_queue=8, queue_timeout=5)
    before = old.tiers[Tier.FAST]
    grants = await fill(d, before)
    queued = waiting(d, before)
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="the request to queue")

    new, (gone,) = reloaded(old, config(["b", "z"]))
    d.retarget(new, max_queue=8, queue_timeout=5)
    a_grant, b_grant = sorted(grants, key=lambda grant: grant[0].base_url)
    a_grant[0].end(a_grant[1])  # the removed one frees its slot: drained, not handed out
    assert not queued.done()
    b_grant[0].end(b_grant[1])
    granted = await asyncio.wait_for(queued, 1)

    assert gone is a_grant[0]
    assert granted is not None
    assert granted[0] in new.tiers[Tier.FAST]  # b's freed slot, or the new z: least loaded


async def test_a_request_waiting_for_a_tier_takes_an_instance_the_reload_added() -> None:
    old = Fleet(config(["a"]))
    d = Dispatcher(old, max_queue=8, queue_timeout=5)
    before = old.tiers[Tier.FAST]
    await fill(d, before)
    urgent, normal = waiting(d, before, Importance.HIGH), waiting(d, before)
    await wait_until(lambda: d.depth(Pool.FAST) == 2, what="two to queue")

    new, (gone,) = reloaded(old, config(["n", "m"]))  # every instance replaced
    d.retarget(new, max_queue=8, queue_timeout=5)
    d.kick(Pool.FAST)
    granted = await asyncio.wait_for(asyncio.gather(urgent, normal), 1)

    assert {grant[0] for grant in granted if grant is not None} == set(new.tiers[Tier.FAST])
    assert gone is before[0]
    assert gone.in_flight == 1  # its own request still under way
    assert d.depth(Pool.FAST) == 0


async def test_new_room_after_a_reload_serves_the_waiting_request_when_kicked() -> None:
    old = Fleet(config(["a"]))
    d = Dispatcher(old, max_queue=8, queue_timeout=5)
    before = old.tiers[Tier.FAST]
    await fill(d, before)
    queued = waiting(d, before, Importance.HIGH)
    await wait_until(lambda: d.depth(Pool.FAST) == 1, what="the request to queue")
    larger = config(["a"], slots=2)

    new, _ = reloaded(old, larger)
    d.retarget(new, max_queue=1, queue_timeout=5)
    d.kick(Pool.FAST)
    granted = await asyncio.wait_for(queued, 1)

    assert granted is not None
    assert granted[0] is before[0]
    assert before[0].in_flight == 2


async def test_a_lower_max_queue_applies_to_newcomers_and_keeps_those_waiting() -> None:
    old = Fleet(config(["a"]))
    d = Dispatcher(old, max_queue=8, queue_timeout=5)
    before = old.tiers[Tier.FAST]
    await fill(d, before)
    first, second = waiting(d, before), waiting(d, before)
    await wait_until(lambda: d.depth(Pool.FAST) == 2, what="two to queue")

    new, _ = reloaded(old, config(["a"]))
    d.retarget(new, max_queue=1, queue_timeout=5)
    third = waiting(d, new.tiers[Tier.FAST])
    refused = await asyncio.gather(third, return_exceptions=True)

    assert type(refused[0]).__name__ == "FleetBusy"
    assert d.depth(Pool.FAST) == 2
    for task in (first, second):
        task.cancel()
    await asyncio.gather(first, second, return_exceptions=True)


async def test_embedding_models_added_by_a_reload_get_their_own_queue() -> None:
    old = Fleet(config(["a"]))
    d = Dispatcher(old, max_queue=8, queue_timeout=5)
    vectors = (EndpointConfig(pool=Pool.EMBEDDINGS, index=0, name="v", base_url="http://v:1/v1"),)
    grown = msgspec.structs.replace(config(["a"]), embeddings=vectors)

    new, _ = reloaded(old, grown)
    d.retarget(new, max_queue=8, queue_timeout=5)
    granted = await d.acquire(new.embeddings, (), d.ticket(Demand(), Importance.NORMAL), "v")

    assert granted is not None
    assert granted[0] is new.embeddings[0]
    assert d.depth(Pool.EMBEDDINGS) == 0


# --- the prober ---------------------------------------------------------------------------------


async def test_instances_added_by_a_reload_are_probed_at_once_and_later_rounds_cover_them() -> None:
    old = Fleet(config(["a"]))
    probe = Probe()
    async with running(HealthProber(old, probe, interval=3600, timeout=1)) as prober:
        await wait_rounds(prober, 1)
        new, _ = reloaded(old, config(["a", "n"]))
        added = new.tiers[Tier.FAST][1]

        prober.retarget(new, interval=3600, timeout=1)
        prober.probe_now([added])
        await wait_until(lambda: probe.calls["fast[1]"] == 1, what="the probe of the new one")

    assert probe.calls["fast[0]"] == 1  # only the start-up round: the others were not re-probed
    assert added.last_check > 0

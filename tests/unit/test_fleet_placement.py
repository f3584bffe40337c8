"""Placement as pure functions: slots, context windows, warm first, affinity, least outstanding."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from octoroute.config.schema import EndpointConfig
from octoroute.enums import Pool
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.facts import InstanceFacts
from octoroute.fleet.placement import (
    NO_DEMAND,
    Affinity,
    Demand,
    Pick,
    Policy,
    Shortfall,
    any_fits,
    choose,
    fits,
    needed,
    prefer,
    rank_pool,
    rank_table,
    rendezvous_rank,
)

FLEET = Policy()
STATIC = Policy(static=True)


def instance(
    index: int,
    *,
    weight: float = 1.0,
    priority: int = 1,
    max_concurrent: int | None = None,
    context_window: int | None = None,
    max_tokens: int = 512,
) -> Endpoint:
    config = EndpointConfig(
        pool=Pool.FAST,
        index=index,
        name="m",
        base_url=f"http://host-{index}:8000/v1",
        max_tokens=max_tokens,
        weight=weight,
        priority=priority,
        max_concurrent=max_concurrent,
        context_window=context_window,
    )
    return Endpoint(config, clock=lambda: 0.0)


def pick(
    candidates: list[Endpoint],
    demand: Demand = NO_DEMAND,
    *,
    exclude: tuple[Endpoint, ...] = (),
    policy: Policy = FLEET,
    seed: int = 0,
) -> Pick | Shortfall:
    return choose(candidates, exclude, demand, 0.0, random.Random(seed).random, policy)


def chosen(candidates: list[Endpoint], demand: Demand = NO_DEMAND, **options: object) -> Endpoint:
    picked = pick(candidates, demand, **options)  # type: ignore[arg-type]
    assert not isinstance(picked, Shortfall), picked
    return picked[0]


def busy(endpoint: Endpoint, count: int) -> Endpoint:
    for _ in range(count):
        endpoint.begin()
    return endpoint


def cold(endpoint: Endpoint, *, loading: bool = False) -> Endpoint:
    endpoint.observe(InstanceFacts(loaded=False if not loading else None, loading=loading))
    return endpoint


# --- least outstanding --------------------------------------------------------------------------


def test_the_instance_with_the_fewest_requests_in_flight_is_chosen() -> None:
    a, b, c = busy(instance(0), 3), busy(instance(1), 1), busy(instance(2), 2)

    assert all(chosen([a, b, c], seed=seed) is b for seed in range(20))


def test_load_is_counted_per_unit_of_weight() -> None:
    heavy = busy(instance(0, weight=4.0), 3)  # 0.75 per unit
    light = busy(instance(1, weight=1.0), 1)  # 1.0 per unit

    assert chosen([heavy, light]) is heavy


def test_ties_are_drawn_by_weight() -> None:
    a, b = instance(0, weight=3.0), instance(1, weight=1.0)
    rng = random.Random(7)

    counts = Counter(
        choose([a, b], (), NO_DEMAND, 0.0, rng.random, FLEET)[0].id  # type: ignore[union-attr]
        for _ in range(4000)
    )

    assert 0.72 < counts[a.id] / 4000 < 0.78


# --- slots --------------------------------------------------------------------------------------


def test_an_instance_at_its_max_concurrent_is_not_eligible() -> None:
    full = busy(instance(0, max_concurrent=2), 2)
    free = busy(instance(1, max_concurrent=2), 1)

    assert chosen([full, free]) is free


def test_every_instance_full_is_a_full_shortfall() -> None:
    a = busy(instance(0, max_concurrent=1), 1)
    b = busy(instance(1, max_concurrent=2), 2)

    assert pick([a, b]) is Shortfall.FULL


def test_a_free_lower_priority_instance_serves_before_anyone_waits() -> None:
    top = busy(instance(0, priority=2, max_concurrent=1), 1)
    fallback = instance(1, priority=1)

    assert chosen([top, fallback]) is fallback


def test_nothing_eligible_is_unavailable_not_full() -> None:
    a = instance(0, max_concurrent=1)
    b = busy(instance(1, max_concurrent=1), 1)

    assert pick([a, b], exclude=(a,)) is Shortfall.FULL
    assert pick([a], exclude=(a,)) is Shortfall.UNAVAILABLE


# --- context windows ----------------------------------------------------------------------------


def test_an_instance_whose_window_is_too_small_is_skipped() -> None:
    small = instance(0, context_window=4096)
    large = instance(1, context_window=32768)
    demand = Demand(prompt_tokens=5000, output_tokens=100)

    assert all(chosen([small, large], demand, seed=seed) is large for seed in range(10))


def test_no_window_large_enough_is_unfit_and_a_full_fitting_one_is_waited_for() -> None:
    small = instance(0, context_window=4096)
    large = busy(instance(1, context_window=32768, max_concurrent=1), 1)
    demand = Demand(prompt_tokens=5000, output_tokens=100)

    assert pick([small], demand) is Shortfall.UNFIT
    assert pick([small, large], demand) is Shortfall.FULL


def test_an_unknown_window_always_fits() -> None:
    unknown = instance(0)

    assert fits(unknown, Demand(prompt_tokens=10_000_000, output_tokens=10))
    assert chosen([unknown], Demand(prompt_tokens=10_000_000)) is unknown


def test_the_output_counted_is_the_clients_limit_else_the_default_at_most_a_quarter() -> None:
    endpoint = instance(0, context_window=8000, max_tokens=4096)

    assert needed(endpoint, Demand(prompt_tokens=100, output_tokens=7000)) == 7100
    assert needed(endpoint, Demand(prompt_tokens=100, fills_default=True)) == 2100
    assert needed(endpoint, Demand(prompt_tokens=100)) == 100  # completions: nothing filled in
    small_default = instance(1, context_window=8000, max_tokens=1000)
    assert needed(small_default, Demand(prompt_tokens=100, fills_default=True)) == 1100


def test_a_window_from_the_prober_is_used_when_none_is_configured() -> None:
    configured = instance(0, context_window=4096)
    discovered = instance(1)
    demand = Demand(prompt_tokens=3000, output_tokens=2000)

    assert fits(discovered, demand)
    discovered.observe(InstanceFacts(context_window=4096))
    configured.observe(InstanceFacts(context_window=131072))

    assert discovered.context_window == 4096
    assert not fits(discovered, demand)
    assert configured.context_window == 4096, "the configured window wins"
    assert not any_fits([configured, discovered], demand)


def test_a_demand_without_size_ignores_windows() -> None:
    tiny = instance(0, context_window=1)

    assert chosen([tiny], NO_DEMAND) is tiny


# --- warm first ---------------------------------------------------------------------------------


def test_a_warm_or_unknown_instance_is_preferred_over_a_known_cold_one() -> None:
    idle_cold = cold(instance(0))
    loaded = busy(instance(1), 3)
    loaded.observe(InstanceFacts(loaded=True))
    unknown = busy(instance(2), 5)

    assert chosen([idle_cold, loaded]) is loaded, "warm beats cold even when busier"
    assert chosen([idle_cold, unknown]) is unknown, "unknown counts as warm"


def test_loading_counts_as_cold() -> None:
    loading = cold(instance(0), loading=True)
    other = busy(instance(1), 2)

    assert loading.cold
    assert chosen([loading, other]) is other


def test_a_cold_instance_is_used_when_no_warm_one_has_a_free_slot() -> None:
    warm = busy(instance(0, max_concurrent=1), 1)
    idle_cold = cold(instance(1, max_concurrent=1))

    assert chosen([warm, idle_cold]) is idle_cold


def test_an_instance_counts_as_warm_once_it_has_answered() -> None:
    endpoint = cold(instance(0))

    endpoint.loaded()

    assert not endpoint.cold
    assert endpoint.facts.loaded is True


def test_prefer_ignores_warmth_but_not_load() -> None:
    idle_cold = cold(instance(0))
    warm = busy(instance(1), 1)

    assert prefer([idle_cold, warm], NO_DEMAND, 0.0, FLEET) is idle_cold
    assert chosen([idle_cold, warm]) is warm


# --- conversation affinity ----------------------------------------------------------------------


def order(candidates: list[Endpoint], key: int) -> list[Endpoint]:
    return sorted(candidates, key=lambda ep: rendezvous_rank(key, ep))


def test_a_conversation_stays_on_the_first_replica_of_its_hash_order() -> None:
    replicas = [instance(i) for i in range(5)]
    for key in (1, 2**40 + 17, 987654321):
        first = order(replicas, key)[0]
        for seed in range(10):
            picked = pick(replicas, Demand(key=key), seed=seed)
            assert not isinstance(picked, Shortfall)
            assert (picked[0], picked[1]) == (first, Affinity.HIT)


def test_when_the_replica_is_down_full_or_too_small_the_next_in_order_takes_it() -> None:
    key = 424242
    for how in ("down", "full", "small", "cold"):
        replicas = [instance(i, max_concurrent=1, context_window=100_000) for i in range(4)]
        first, second = order(replicas, key)[:2]
        if how == "down":
            first.healthy = False
        elif how == "full":
            busy(first, 1)
        elif how == "small":
            replicas[replicas.index(first)] = first = instance(
                first.config.index, max_concurrent=1, context_window=1000
            )
            second = order(replicas, key)[0 if order(replicas, key)[0] is not first else 1]
        else:
            cold(first)

        picked = pick(replicas, Demand(prompt_tokens=5000, key=key))

        assert not isinstance(picked, Shortfall), how
        assert picked[0] is second, how
        assert picked[1] is Affinity.MOVED, how


def test_the_replica_keeps_the_conversation_up_to_the_imbalance_and_not_beyond() -> None:
    key = 99
    replicas = [instance(i) for i in range(3)]
    first, second = order(replicas, key)[:2]
    busy(first, 2)

    assert chosen(replicas, Demand(key=key), policy=Policy(imbalance=2.0)) is first
    busy(first, 1)
    moved = chosen(replicas, Demand(key=key), policy=Policy(imbalance=2.0))
    assert moved is not first
    assert moved is order([r for r in replicas if r is not first], key)[0]
    assert moved is second or second.in_flight > 0


def test_without_a_key_or_with_affinity_off_placement_follows_load() -> None:
    replicas = [instance(i) for i in range(3)]
    key = 5
    first = order(replicas, key)[0]
    busy(first, 1)

    picked = pick(replicas, Demand(key=None))
    assert not isinstance(picked, Shortfall)
    assert picked[1] is Affinity.NONE
    assert picked[0] is not first
    assert chosen(replicas, Demand(key=key), policy=Policy(affinity=False)) is not first


def test_weights_hold_over_many_conversations() -> None:
    replicas = [instance(0, weight=1.0), instance(1, weight=2.0), instance(2, weight=5.0)]
    rng = random.Random(3)
    conversations = 20_000

    counts = Counter(
        chosen(replicas, Demand(key=rng.getrandbits(64))).config.index for _ in range(conversations)
    )

    for replica in replicas:
        expected = replica.weight / 8.0
        share = counts[replica.config.index] / conversations
        assert math.isclose(share, expected, abs_tol=0.015), (replica.weight, share)


def test_adding_a_replica_moves_only_the_conversations_it_wins() -> None:
    before = [instance(i) for i in range(4)]
    after = [*before, instance(4)]
    rng = random.Random(11)
    keys = [rng.getrandbits(64) for _ in range(4000)]

    moved = [k for k in keys if order(before, k)[0] is not order(after, k)[0]]

    assert all(order(after, k)[0] is after[4] for k in moved)
    assert 0.15 < len(moved) / len(keys) < 0.25  # about a fifth


def test_an_instances_hash_seed_is_stable_across_processes() -> None:
    endpoint = instance(0)

    # The seed comes from blake2b of pool, name and URL, never from the salted str hash.
    assert endpoint.seed == instance(0).seed
    assert endpoint.seed == 16937670191748901731
    assert rendezvous_rank(1234, endpoint) == pytest.approx(rendezvous_rank(1234, instance(0)))


# --- static placement ---------------------------------------------------------------------------


def test_static_placement_ignores_slots_windows_warmth_and_load() -> None:
    a = cold(busy(instance(0, max_concurrent=1, context_window=10, weight=1.0), 5))
    b = instance(1, weight=1.0)
    demand = Demand(prompt_tokens=1000, output_tokens=10, key=1)
    rng = random.Random(1)

    counts = Counter(
        choose([a, b], (), demand, 0.0, rng.random, STATIC)[0].id  # type: ignore[union-attr]
        for _ in range(2000)
    )

    assert 0.45 < counts[a.id] / 2000 < 0.55


def test_static_placement_still_keeps_health_priority_and_exclusion() -> None:
    top, low, gone = instance(0, priority=2), instance(1, priority=1), instance(2, priority=3)
    gone.healthy = False

    assert chosen([top, low, gone], policy=STATIC) is top
    assert chosen([top, low, gone], exclude=(top,), policy=STATIC) is low
    assert pick([top], exclude=(top,), policy=STATIC) is Shortfall.UNAVAILABLE


def test_the_fleets_cached_ranks_are_the_ranks_placement_computes() -> None:
    replicas = [instance(i, weight=1.0 + i) for i in range(6)]
    phases = [(ep.phase, -ep.inverse_weight) for ep in replicas]
    rng = random.Random(5)

    for key in (rng.getrandbits(64) for _ in range(200)):
        assert rank_table(phases, key) == pytest.approx(rank_pool(replicas, key))
        cached = choose(
            replicas, (), Demand(key=key), 0.0, rng.random, FLEET, ranks=rank_pool(replicas, key)
        )
        assert cached == pick(replicas, Demand(key=key))

"""Fleet indexing and selection: health and exclusion first, then priority, then weight."""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoroute.config.schema import (
    Config,
    EndpointConfig,
    HealthConfig,
    ModelsConfig,
    RoutingConfig,
    ServerConfig,
)
from octoroute.enums import TIER_POOLS, Strategy, Tier
from octoroute.fleet.selector import Fleet

if TYPE_CHECKING:
    from collections.abc import Sequence

    from octoroute.fleet.endpoint import Endpoint

Spec = tuple[str, float, int]
"""(name, weight, priority) of one endpoint."""


def configs(tier: Tier, specs: Sequence[Spec]) -> tuple[EndpointConfig, ...]:
    return tuple(
        EndpointConfig(
            pool=TIER_POOLS[tier],
            index=i,
            name=name,
            base_url=f"http://{tier}-{i}:8000/v1",
            max_tokens=256,
            weight=weight,
            priority=priority,
        )
        for i, (name, weight, priority) in enumerate(specs)
    )


def make_fleet(
    fast: Sequence[Spec],
    balanced: Sequence[Spec] = (("b", 1.0, 1),),
    deep: Sequence[Spec] = (("d", 1.0, 1),),
    *,
    seed: int = 0,
    rng: random.Random | None = None,
) -> Fleet:
    config = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(
            fast=configs(Tier.FAST, fast),
            balanced=configs(Tier.BALANCED, balanced),
            deep=configs(Tier.DEEP, deep),
        ),
        routing=RoutingConfig(strategy=Strategy.RULE),
        health=HealthConfig(failure_threshold=1),
    )
    return Fleet(config, rng=rng or random.Random(seed))


def take_down(fleet: Fleet, *endpoints: Endpoint) -> None:
    for ep in endpoints:
        fleet.mark_failure(ep, "down")
    assert not any(ep.healthy for ep in endpoints)


def draws(fleet: Fleet, n: int, *, general: bool) -> Counter[str]:
    """``n`` selections from the fast tier, by id. ``general`` forces the non-precomputed path by
    excluding an endpoint of another tier, which cannot change the outcome."""
    exclude = {fleet.tiers[Tier.DEEP][0]} if general else set()
    picks: Counter[str] = Counter()
    for _ in range(n):
        ep = fleet.select_tier(Tier.FAST, exclude)
        assert ep is not None
        picks[ep.id] += 1
    return picks


class FixedRandom(random.Random):
    """Always draws ``value``; 1.0 is outside ``random()``'s range and stands for rounding up."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class NoDraws(random.Random):
    """Fails the test if selection draws a random number."""

    def random(self) -> float:
        raise AssertionError("no random draw expected")


# --- indexing -------------------------------------------------------------------------------


def test_tiers_hold_one_record_per_configured_instance_in_file_order() -> None:
    fleet = make_fleet([("a", 1.0, 1), ("a", 1.0, 1), ("c", 1.0, 1)])
    assert [ep.id for ep in fleet.tiers[Tier.FAST]] == ["fast[0]", "fast[1]", "fast[2]"]
    assert [ep.base_url for ep in fleet.tiers[Tier.FAST]] == [
        "http://fast-0:8000/v1",
        "http://fast-1:8000/v1",
        "http://fast-2:8000/v1",
    ]
    assert list(fleet.tiers) == [Tier.FAST, Tier.BALANCED, Tier.DEEP]


def test_all_lists_fast_then_balanced_then_deep() -> None:
    fleet = make_fleet([("a", 1.0, 1)], [("b", 1.0, 1), ("b2", 1.0, 1)])
    assert [ep.id for ep in fleet.all()] == ["fast[0]", "balanced[0]", "balanced[1]", "deep[0]"]


def test_by_name_returns_every_instance_in_config_order_across_tiers() -> None:
    fleet = make_fleet([("x", 1.0, 1), ("y", 1.0, 1), ("x", 1.0, 1)], deep=[("x", 1.0, 1)])
    assert [ep.id for ep in fleet.by_name("x")] == ["fast[0]", "fast[2]", "deep[0]"]
    assert fleet.by_name("nope") == ()


def test_tiers_mapping_is_read_only() -> None:
    fleet = make_fleet([("a", 1.0, 1)])
    with pytest.raises(TypeError):
        fleet.tiers[Tier.FAST] = ()  # type: ignore[index]


# --- priority, health, exclusion ------------------------------------------------------------


def test_highest_priority_is_always_chosen_when_available() -> None:
    fleet = make_fleet([("low", 100.0, 1), ("high", 0.1, 5), ("mid", 100.0, 3)])
    assert set(draws(fleet, 200, general=False)) == {"fast[1]"}
    assert set(draws(fleet, 200, general=True)) == {"fast[1]"}


def test_lower_priority_serves_when_every_higher_one_is_unhealthy() -> None:
    fleet = make_fleet([("hi", 1.0, 2), ("hi", 1.0, 2), ("lo", 1.0, 1)])
    first, second, low = fleet.tiers[Tier.FAST]
    take_down(fleet, first)
    assert fleet.select_tier(Tier.FAST) is second
    take_down(fleet, second)
    assert fleet.select_tier(Tier.FAST) is low


def test_lower_priority_serves_when_every_higher_one_is_excluded() -> None:
    fleet = make_fleet([("hi", 1.0, 2), ("lo", 1.0, 1)])
    high, low = fleet.tiers[Tier.FAST]
    assert fleet.select_tier(Tier.FAST, {high}) is low


def test_priority_cut_happens_after_health_filtering() -> None:
    # v1's docs said "highest priority, then health": that would leave nothing to pick here.
    fleet = make_fleet([("hi", 1.0, 9), ("mid", 1.0, 5), ("mid2", 3.0, 5), ("lo", 1.0, 1)])
    high = fleet.tiers[Tier.FAST][0]
    take_down(fleet, high)
    picks = draws(fleet, 400, general=False)
    assert set(picks) == {"fast[1]", "fast[2]"}
    assert picks["fast[2]"] > picks["fast[1]"]


def test_none_when_every_endpoint_is_unhealthy() -> None:
    fleet = make_fleet([("a", 1.0, 2), ("b", 1.0, 1)])
    take_down(fleet, *fleet.tiers[Tier.FAST])
    assert fleet.select_tier(Tier.FAST) is None
    assert fleet.select(fleet.tiers[Tier.FAST], ()) is None


def test_none_when_every_endpoint_is_excluded() -> None:
    fleet = make_fleet([("a", 1.0, 2), ("b", 1.0, 1)])
    assert fleet.select_tier(Tier.FAST, set(fleet.tiers[Tier.FAST])) is None


def test_never_falls_back_to_an_unhealthy_endpoint() -> None:
    fleet = make_fleet([("a", 1.0, 2), ("b", 1.0, 1)])
    high, low = fleet.tiers[Tier.FAST]
    take_down(fleet, low)
    assert fleet.select_tier(Tier.FAST, {high}) is None


def test_excluding_one_replica_leaves_the_other_of_the_same_name_selectable() -> None:
    fleet = make_fleet([("llama", 1.0, 1), ("llama", 1.0, 1)])
    first, second = fleet.by_name("llama")
    for _ in range(50):
        assert fleet.select_tier(Tier.FAST, {first}) is second
        assert fleet.select(fleet.by_name("llama"), (second,)) is first


def test_recovered_endpoint_is_selected_again() -> None:
    fleet = make_fleet([("hi", 1.0, 2), ("lo", 1.0, 1)])
    high, low = fleet.tiers[Tier.FAST]
    take_down(fleet, high)
    assert fleet.select_tier(Tier.FAST) is low
    fleet.mark_success(high)
    assert fleet.select_tier(Tier.FAST) is high


def test_unhealthy_lower_priority_does_not_affect_the_top_group() -> None:
    fleet = make_fleet([("hi", 1.0, 2), ("lo", 1.0, 1)])
    high, low = fleet.tiers[Tier.FAST]
    take_down(fleet, low)
    assert fleet.select_tier(Tier.FAST) is high


def test_single_eligible_endpoint_draws_no_random_number() -> None:
    fleet = make_fleet([("a", 1.0, 2), ("b", 1.0, 1), ("c", 1.0, 1)], rng=NoDraws())
    a, b, c = fleet.tiers[Tier.FAST]
    assert fleet.select_tier(Tier.FAST) is a
    assert fleet.select_tier(Tier.FAST, {a, b}) is c


@pytest.mark.parametrize("general", [False, True], ids=["precomputed", "general"])
def test_a_draw_rounded_up_to_the_total_falls_back_to_the_last_candidate(general: bool) -> None:
    fleet = make_fleet([("a", 0.1, 1), ("b", 0.2, 1), ("c", 0.3, 1)], rng=FixedRandom(1.0))
    assert draws(fleet, 1, general=general) == {"fast[2]": 1}


@pytest.mark.parametrize("general", [False, True], ids=["precomputed", "general"])
def test_a_zero_draw_picks_the_first_candidate(general: bool) -> None:
    fleet = make_fleet([("a", 0.1, 1), ("b", 0.2, 1)], rng=FixedRandom(0.0))
    assert draws(fleet, 1, general=general) == {"fast[0]": 1}


def test_precomputed_and_general_paths_pick_the_same_for_the_same_seed() -> None:
    specs = [("a", 0.7, 3), ("b", 2.5, 3), ("c", 1.0, 1), ("d", 4.0, 3)]
    fast_path = draws(make_fleet(specs, seed=42), 500, general=False)
    general_path = draws(make_fleet(specs, seed=42), 500, general=True)
    assert fast_path == general_path


# --- weights (v1's statistical expectations, seeded so they are deterministic) --------------


@pytest.mark.parametrize("general", [False, True], ids=["precomputed", "general"])
def test_weights_one_to_nine_split_about_ten_ninety(general: bool) -> None:
    picks = draws(make_fleet([("a", 1.0, 1), ("b", 9.0, 1)], seed=1), 1000, general=general)
    assert 50 <= picks["fast[0]"] <= 150
    assert 850 <= picks["fast[1]"] <= 950


@pytest.mark.parametrize("general", [False, True], ids=["precomputed", "general"])
def test_three_equal_weights_split_about_evenly(general: bool) -> None:
    fleet = make_fleet([("a", 1.0, 1), ("b", 1.0, 1), ("c", 1.0, 1)], seed=2)
    picks = draws(fleet, 1500, general=general)
    assert sorted(picks) == ["fast[0]", "fast[1]", "fast[2]"]
    for count in picks.values():
        assert 375 <= count <= 630  # 25 % to 42 %


@pytest.mark.parametrize("general", [False, True], ids=["precomputed", "general"])
def test_a_tiny_weight_gets_its_tiny_share(general: bool) -> None:
    picks = draws(make_fleet([("a", 0.1, 1), ("b", 9.9, 1)], seed=3), 10_000, general=general)
    assert 50 <= picks["fast[0]"] <= 150  # 0.5 % to 1.5 %


# --- properties -----------------------------------------------------------------------------

endpoint_states = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),  # priority
        st.floats(min_value=0.01, max_value=100.0),  # weight
        st.booleans(),  # healthy
        st.booleans(),  # excluded
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150)
@given(states=endpoint_states, seed=st.integers(min_value=0, max_value=2**32))
def test_selection_returns_a_top_priority_eligible_endpoint_or_none(
    states: list[tuple[int, float, bool, bool]], seed: int
) -> None:
    fleet = make_fleet([(f"m{i % 3}", w, p) for i, (p, w, _, _) in enumerate(states)], seed=seed)
    endpoints = fleet.tiers[Tier.FAST]
    exclude = set()
    for ep, (_, _, healthy, excluded) in zip(endpoints, states, strict=True):
        if not healthy:
            take_down(fleet, ep)
        if excluded:
            exclude.add(ep)
    eligible = [ep for ep in endpoints if ep.healthy and ep not in exclude]
    for _ in range(5):
        for chosen in (fleet.select_tier(Tier.FAST, exclude), fleet.select(endpoints, exclude)):
            if not eligible:
                assert chosen is None
                continue
            assert chosen is not None
            assert chosen.healthy
            assert chosen not in exclude
            assert chosen.priority == max(ep.priority for ep in eligible)


@settings(max_examples=50)
@given(
    specs=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2),  # priority
            st.floats(min_value=0.01, max_value=50.0),  # weight
            st.booleans(),  # healthy
        ),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_precomputed_path_matches_the_general_path(
    specs: list[tuple[int, float, bool]], seed: int
) -> None:
    named = [(f"m{i}", weight, priority) for i, (priority, weight, _) in enumerate(specs)]
    fleets = make_fleet(named, seed=seed), make_fleet(named, seed=seed)
    for fleet in fleets:
        for ep, (_, _, healthy) in zip(fleet.tiers[Tier.FAST], specs, strict=True):
            if not healthy:
                take_down(fleet, ep)
    if not any(healthy for _, _, healthy in specs):
        assert fleets[0].select_tier(Tier.FAST) is None
        return
    assert draws(fleets[0], 30, general=False) == draws(fleets[1], 30, general=True)

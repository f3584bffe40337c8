"""The per-instance health state machine: threshold, reset, recovery, transitions reported once."""

from __future__ import annotations

import math

import pytest

from octoroute.config.schema import (
    Config,
    EndpointConfig,
    HealthConfig,
    ModelsConfig,
    RoutingConfig,
    ServerConfig,
)
from octoroute.enums import TIER_POOLS, Pool, Strategy, Tier
from octoroute.fleet.endpoint import (
    MAX_ERROR_CHARS,
    Endpoint,
    Health,
    NullListener,
    shorten_error,
)
from octoroute.fleet.selector import Fleet


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingListener(NullListener):
    """Records transitions, and the endpoint's state as the listener saw it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, bool]] = []

    def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
        self.events.append(("unhealthy", f"{endpoint.id}: {reason}", endpoint.healthy))

    def on_recovered(self, endpoint: Endpoint) -> None:
        self.events.append(("recovered", endpoint.id, endpoint.healthy))


def healthy(endpoint: Endpoint) -> bool:
    """Read through a call, so mypy keeps no narrowing of ``healthy`` across ``mark_*`` calls."""
    return endpoint.healthy


def endpoint_config(
    index: int = 0, *, tier: Tier = Tier.FAST, name: str = "m", weight: float = 1.0
) -> EndpointConfig:
    return EndpointConfig(
        pool=TIER_POOLS[tier],
        index=index,
        name=name,
        base_url=f"http://host{index}:8000/v1",
        max_tokens=256,
        weight=weight,
    )


def make_endpoint(
    threshold: int = 3,
    clock: FakeClock | None = None,
    listener: RecordingListener | None = None,
) -> Endpoint:
    return Endpoint(
        endpoint_config(),
        failure_threshold=threshold,
        clock=clock or FakeClock(),
        listener=listener,
    )


def make_config(*fast: EndpointConfig, threshold: int = 3) -> Config:
    other = (endpoint_config(0, tier=Tier.BALANCED, name="b"),)
    deep = (endpoint_config(0, tier=Tier.DEEP, name="d"),)
    return Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(fast=fast, balanced=other, deep=deep),
        routing=RoutingConfig(strategy=Strategy.RULE),
        health=HealthConfig(failure_threshold=threshold),
    )


def test_new_endpoint_is_healthy_and_keeps_its_config() -> None:
    cfg = endpoint_config(2, tier=Tier.DEEP, name="qwen")
    ep = Endpoint(cfg, clock=FakeClock(5.0))
    assert ep.config is cfg
    assert ep.id == "deep[2]"
    assert (ep.pool, ep.name, ep.base_url) == (Pool.DEEP, "qwen", "http://host2:8000/v1")
    assert (ep.priority, ep.weight) == (1, 1.0)
    assert ep.healthy
    assert ep.consecutive_failures == 0
    assert ep.last_error is None
    assert ep.last_check == 5.0


def test_health_is_unknown_until_something_succeeds_and_unhealthy_once_marked() -> None:
    ep = make_endpoint(threshold=2)
    assert (ep.health, ep.healthy) == (Health.UNKNOWN, True)
    ep.mark_failure("refused")
    assert (ep.health, ep.healthy) == (Health.UNKNOWN, True)  # failing, never answered
    ep.mark_failure("refused")
    assert (ep.health, ep.healthy) == (Health.UNHEALTHY, False)
    ep.mark_success()
    assert (ep.health, ep.seen_healthy) == (Health.HEALTHY, True)
    ep.mark_failure("one slip")
    assert ep.health is Health.HEALTHY  # it answered before: known, below the threshold


def test_repr_masks_a_password_in_the_base_url() -> None:
    cfg = EndpointConfig(
        pool=Pool.FAST, index=0, name="m", base_url="http://alice:hunter2@gpu:8000/v1", max_tokens=1
    )
    shown = repr(Endpoint(cfg, clock=FakeClock()))
    assert "hunter2" not in shown
    assert shown == "<Endpoint fast[0] 'm' http://alice:***@gpu:8000/v1 healthy>"


def test_failures_below_threshold_keep_endpoint_healthy() -> None:
    ep = make_endpoint(threshold=3)
    ep.mark_failure("refused")
    ep.mark_failure("refused")
    assert ep.healthy
    assert ep.consecutive_failures == 2


def test_threshold_consecutive_failures_make_endpoint_unhealthy() -> None:
    ep = make_endpoint(threshold=3)
    for _ in range(3):
        ep.mark_failure("refused")
    assert not ep.healthy
    assert ep.consecutive_failures == 3


def test_threshold_of_one_fails_on_first_failure() -> None:
    ep = make_endpoint(threshold=1)
    ep.mark_failure("refused")
    assert not ep.healthy


def test_success_resets_count_so_only_consecutive_failures_count() -> None:
    ep = make_endpoint(threshold=3)
    ep.mark_failure("a")
    ep.mark_failure("b")
    ep.mark_success()
    assert ep.consecutive_failures == 0
    ep.mark_failure("c")
    ep.mark_failure("d")
    assert ep.healthy


def test_one_success_restores_an_unhealthy_endpoint() -> None:
    ep = make_endpoint(threshold=2)
    ep.mark_failure("a")
    ep.mark_failure("b")
    assert not ep.healthy
    ep.mark_success()
    assert healthy(ep)
    assert ep.consecutive_failures == 0


def test_failures_keep_counting_while_unhealthy() -> None:
    ep = make_endpoint(threshold=2)
    for _ in range(7):
        ep.mark_failure("x")
    assert ep.consecutive_failures == 7


def test_listener_hears_each_transition_once_not_each_failure() -> None:
    listener = RecordingListener()
    ep = make_endpoint(threshold=2, listener=listener)
    ep.mark_success()  # healthy -> healthy: nothing to report
    for reason in ("a", "b", "c", "d"):
        ep.mark_failure(reason)
    ep.mark_success()
    ep.mark_success()
    ep.mark_failure("e")
    ep.mark_failure("f")
    assert [(kind, what) for kind, what, _ in listener.events] == [
        ("unhealthy", "fast[0]: b"),
        ("recovered", "fast[0]"),
        ("unhealthy", "fast[0]: f"),
    ]


def test_listener_sees_the_state_already_changed() -> None:
    listener = RecordingListener()
    ep = make_endpoint(threshold=1, listener=listener)
    ep.mark_failure("down")
    ep.mark_success()
    assert [seen_healthy for _, _, seen_healthy in listener.events] == [False, True]


def test_last_check_is_stamped_by_the_injected_clock() -> None:
    clock = FakeClock(100.0)
    ep = make_endpoint(clock=clock)
    clock.now = 130.0
    ep.mark_failure("x")
    assert ep.last_check == 130.0
    clock.now = 145.5
    ep.mark_success()
    assert ep.last_check == 145.5


def test_seconds_since_check_is_whole_seconds_and_never_negative() -> None:
    clock = FakeClock(100.0)
    ep = make_endpoint(clock=clock)
    assert ep.seconds_since_check(112.9) == 12
    assert ep.seconds_since_check(99.0) == 0
    clock.now = 107.2
    assert ep.seconds_since_check() == 7


def test_last_error_is_the_latest_reason_and_cleared_by_success() -> None:
    ep = make_endpoint()
    ep.mark_failure("first")
    ep.mark_failure("second")
    assert ep.last_error == "second"
    ep.mark_success()
    assert ep.last_error is None


def test_last_error_is_shortened_to_one_line() -> None:
    ep = make_endpoint()
    ep.mark_failure("502 Bad Gateway\n<html>\n" + "x" * 1000)
    assert ep.last_error is not None
    assert "\n" not in ep.last_error
    assert len(ep.last_error) == MAX_ERROR_CHARS
    assert ep.last_error.startswith("502 Bad Gateway <html> xxx")
    assert ep.last_error.endswith("...")
    assert shorten_error("  short  text ") == "short text"


def test_listener_gets_the_shortened_reason() -> None:
    listener = RecordingListener()
    ep = make_endpoint(threshold=1, listener=listener)
    ep.mark_failure("line one\nline two")
    assert listener.events[0][1] == "fast[0]: line one line two"


def test_endpoints_compare_by_identity_even_with_equal_config() -> None:
    cfg = endpoint_config()
    first, second = Endpoint(cfg), Endpoint(cfg)
    assert first != second
    assert len({first, second}) == 2


def test_threshold_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        make_endpoint(threshold=0)


@pytest.mark.parametrize("weight", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_or_non_finite_weight_is_rejected(weight: float) -> None:
    with pytest.raises(ValueError, match=r"models\.fast\[0\]: weight"):
        Endpoint(endpoint_config(weight=weight))


def test_replicas_sharing_a_name_have_independent_health() -> None:
    fleet = Fleet(make_config(endpoint_config(0, name="llama"), endpoint_config(1, name="llama")))
    first, second = fleet.by_name("llama")
    for _ in range(3):
        fleet.mark_failure(first, "refused")
    assert not first.healthy
    assert second.healthy
    assert second.consecutive_failures == 0
    assert (first.id, second.id) == ("fast[0]", "fast[1]")
    assert first.base_url != second.base_url


def test_fleet_applies_configured_threshold_clock_and_listener() -> None:
    clock = FakeClock(50.0)
    listener = RecordingListener()
    fleet = Fleet(
        make_config(endpoint_config(0), endpoint_config(1), threshold=2),
        listener=listener,
        clock=clock,
    )
    ep = fleet.tiers[Tier.FAST][1]
    clock.now = 60.0
    fleet.mark_failure(ep, "boom")
    assert ep.healthy
    fleet.mark_failure(ep, "boom")
    assert not healthy(ep)
    assert ep.last_check == 60.0
    fleet.mark_success(ep)
    assert [(kind, what) for kind, what, _ in listener.events] == [
        ("unhealthy", "fast[1]: boom"),
        ("recovered", "fast[1]"),
    ]


def test_healthy_count_follows_transitions() -> None:
    fleet = Fleet(make_config(endpoint_config(0), endpoint_config(1), threshold=1))
    first, second = fleet.tiers[Tier.FAST]
    assert fleet.healthy_count(Tier.FAST) == 2
    fleet.mark_failure(first, "x")
    fleet.mark_failure(first, "x")  # already unhealthy: counted once
    assert fleet.healthy_count(Tier.FAST) == 1
    fleet.mark_failure(second, "x")
    assert fleet.healthy_count(Tier.FAST) == 0
    fleet.mark_success(first)
    fleet.mark_success(first)
    assert fleet.healthy_count(Tier.FAST) == 1
    assert fleet.healthy_count(Tier.DEEP) == 1

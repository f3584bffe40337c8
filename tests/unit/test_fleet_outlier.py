"""Passive outlier detection, Retry-After and load: the admission state machine and selection.

Time is a fake clock moved by hand, so every duration is exact and nothing sleeps.
"""

from __future__ import annotations

import random
from collections import Counter

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
from octoroute.fleet.endpoint import Admission, Endpoint, NullListener, OutlierSettings
from octoroute.fleet.selector import Fleet
from tests.unit.test_fleet_endpoint import FakeClock


class Events(NullListener):
    """Records ejections and re-admissions as (kind, endpoint id, detail)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, object]] = []

    def on_ejected(self, endpoint: Endpoint, cause: str, seconds: float) -> None:
        self.seen.append(("ejected", endpoint.id, (cause, seconds)))

    def on_readmitted(self, endpoint: Endpoint) -> None:
        self.seen.append(("readmitted", endpoint.id, endpoint.ejection_cause))


def make_endpoint(
    clock: FakeClock,
    listener: Events | None = None,
    *,
    eject_after: int = 3,
    base: float = 30.0,
    cap: float = 300.0,
    threshold: int = 100,
) -> Endpoint:
    """An endpoint whose health threshold is out of the way unless a test sets it."""
    config = EndpointConfig(
        pool=Pool.FAST, index=0, name="m", base_url="http://h:1/v1", max_tokens=16
    )
    return Endpoint(
        config,
        failure_threshold=threshold,
        clock=clock,
        listener=listener,
        outlier=OutlierSettings(eject_after, base, cap),
    )


def fail(endpoint: Endpoint, times: int = 1, cause: str = "timeout") -> None:
    """``times`` real requests fail on ``endpoint``, one after the other."""
    for _ in range(times):
        trial = endpoint.begin()
        endpoint.failed(cause, f"{cause} on a real request", trial)
        endpoint.end(trial)


def state(endpoint: Endpoint) -> Admission:
    """Read through a call, so mypy keeps no narrowing of ``admission`` across state changes."""
    return endpoint.admission


def selectable(endpoint: Endpoint, clock: FakeClock) -> bool:
    return endpoint.healthy and endpoint.ready_at <= clock.now


# --- ejection ----------------------------------------------------------------------------------


def test_consecutive_real_failures_eject_for_the_base_time() -> None:
    clock, events = FakeClock(), Events()
    ep = make_endpoint(clock, events)

    fail(ep, 2)
    assert state(ep) is Admission.ADMITTED
    fail(ep)

    assert state(ep) is Admission.EJECTED
    assert ep.ejected_until == clock.now + 30
    assert not selectable(ep, clock)
    assert events.seen == [("ejected", "fast[0]", ("timeout", 30.0))]


def test_a_success_between_failures_resets_the_run() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)

    fail(ep, 2)
    trial = ep.begin()
    ep.succeeded(trial)
    ep.end(trial)
    fail(ep, 2)

    assert state(ep) is Admission.ADMITTED


def test_a_client_error_answer_also_ends_the_run() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)

    fail(ep, 2)
    ep.answered(ep.begin())
    ep.end(False)
    fail(ep, 2)

    assert state(ep) is Admission.ADMITTED


def test_after_the_ejection_exactly_one_request_is_let_through() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)
    fail(ep, 3)

    clock.now += 29.9
    assert not selectable(ep, clock)
    clock.now += 0.1
    assert selectable(ep, clock)

    assert ep.begin() is True  # the half-open trial
    assert state(ep) is Admission.TRIAL
    assert not selectable(ep, clock)  # nobody else while the trial runs
    clock.now += 1000
    assert not selectable(ep, clock)


def test_a_successful_trial_readmits_and_is_reported_once() -> None:
    clock, events = FakeClock(), Events()
    ep = make_endpoint(clock, events)
    fail(ep, 3, cause="connect")
    clock.now += 30

    trial = ep.begin()
    ep.succeeded(trial)
    ep.end(trial)

    assert state(ep) is Admission.ADMITTED
    assert selectable(ep, clock)
    assert events.seen[-1] == ("readmitted", "fast[0]", "connect")
    assert [kind for kind, _, _ in events.seen] == ["ejected", "readmitted"]


def test_a_failed_trial_ejects_again_for_longer_up_to_the_cap() -> None:
    clock, events = FakeClock(), Events()
    ep = make_endpoint(clock, events, base=30, cap=75)
    fail(ep, 3)

    lengths = []
    for _ in range(4):
        clock.now = ep.ejected_until
        fail(ep)  # the trial fails: one failure is enough
        lengths.append(ep.ejected_until - clock.now)

    assert lengths == [60, 75, 75, 75]
    assert ep.ejections == 5
    assert all(kind == "ejected" for kind, _, _ in events.seen)


def test_a_trial_without_a_verdict_leaves_it_half_open() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)
    fail(ep, 3)
    clock.now += 30

    trial = ep.begin()
    ep.end(trial)  # cancelled: the client went away, or the upstream said busy

    assert state(ep) is Admission.EJECTED
    assert selectable(ep, clock)
    assert ep.begin() is True


def test_late_answers_of_requests_sent_before_the_ejection_do_not_count() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)
    slow = ep.begin()  # sent while admitted, still running
    fail(ep, 3)

    ep.succeeded(slow)  # it finally answered
    ep.end(slow)
    assert state(ep) is Admission.EJECTED

    clock.now += 30
    trial = ep.begin()
    other = ep.begin()  # not possible through selection; shown to carry no verdict
    ep.failed("timeout", "late", other)
    ep.end(other)
    assert state(ep) is Admission.TRIAL
    ep.succeeded(trial)
    ep.end(trial)
    assert state(ep) is Admission.ADMITTED


def test_the_count_starts_over_after_staying_admitted_for_the_cap() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock, base=10, cap=100)
    fail(ep, 3)
    clock.now = ep.ejected_until
    fail(ep)  # second ejection: 20 s
    clock.now = ep.ejected_until
    trial = ep.begin()
    ep.succeeded(trial)
    ep.end(trial)

    clock.now += 99
    fail(ep, 3)
    assert ep.ejected_until - clock.now == 30  # third ejection, within the cap's time

    clock.now = ep.ejected_until
    trial = ep.begin()
    ep.succeeded(trial)
    ep.end(trial)
    clock.now += 100
    fail(ep, 3)
    assert ep.ejected_until - clock.now == 10  # admitted for the cap: forgiven


def test_a_passed_probe_does_not_readmit_an_instance_ejected_for_timeouts() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)
    fail(ep, 3, cause="timeout")

    ep.probe_succeeded()

    assert ep.healthy
    assert not selectable(ep, clock)
    assert ep.ejected_until == clock.now + 30


def test_a_passed_probe_sends_a_connect_ejection_half_open_at_once() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)
    fail(ep, 3, cause="connect")

    ep.probe_succeeded()

    assert state(ep) is Admission.EJECTED
    assert selectable(ep, clock)  # one trial request, not full re-admission
    assert ep.begin() is True


def test_real_failures_still_count_towards_health() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock, threshold=2, eject_after=5)

    fail(ep, 2)

    assert not ep.healthy
    assert state(ep) is Admission.ADMITTED


# --- Retry-After and load -----------------------------------------------------------------------


def test_throttle_keeps_it_out_until_the_time_is_up_without_touching_health() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock, threshold=1)

    ep.throttle(5, 429)

    assert ep.healthy
    assert ep.consecutive_failures == 0
    assert not selectable(ep, clock)
    clock.now += 5
    assert selectable(ep, clock)


def test_a_shorter_retry_after_does_not_shorten_a_longer_one() -> None:
    clock = FakeClock()
    ep = make_endpoint(clock)
    ep.throttle(10, 503)
    ep.throttle(2, 429)
    assert ep.busy_until == clock.now + 10
    assert ep.busy_status == 503


def test_in_flight_counts_begin_and_end() -> None:
    ep = make_endpoint(FakeClock())
    trials = [ep.begin() for _ in range(3)]
    assert ep.in_flight == 3
    for trial in trials:
        ep.end(trial)
    assert ep.in_flight == 0


# --- selection ---------------------------------------------------------------------------------


def fleet_of(
    specs: list[tuple[float, int]], clock: FakeClock, *, seed: int = 1
) -> tuple[Fleet, tuple[Endpoint, ...]]:
    """A fleet whose fast tier has one endpoint per ``(weight, priority)``."""
    fast = tuple(
        EndpointConfig(
            pool=Pool.FAST,
            index=i,
            name=f"f{i}",
            base_url=f"http://f{i}:1/v1",
            max_tokens=16,
            weight=weight,
            priority=priority,
        )
        for i, (weight, priority) in enumerate(specs)
    )

    def one(tier: Tier) -> tuple[EndpointConfig, ...]:
        return (
            EndpointConfig(
                pool=TIER_POOLS[tier],
                index=0,
                name=tier.value + "-m",
                base_url="http://x:1/v1",
                max_tokens=16,
            ),
        )

    config = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(fast=fast, balanced=one(Tier.BALANCED), deep=one(Tier.DEEP)),
        routing=RoutingConfig(strategy=Strategy.RULE),
        health=HealthConfig(eject_after_failures=1, eject_base_seconds=10),
    )
    fleet = Fleet(config, clock=clock, rng=random.Random(seed))
    return fleet, fleet.tiers[Tier.FAST]


def test_selection_prefers_the_endpoint_with_fewer_requests_in_flight() -> None:
    clock = FakeClock()
    fleet, (a, b) = fleet_of([(1, 1), (1, 1)], clock)
    a.begin()

    assert all(fleet.select_tier(Tier.FAST) is b for _ in range(50))
    b.begin()
    b.begin()
    assert all(fleet.select_tier(Tier.FAST) is a for _ in range(50))


def test_load_is_measured_per_unit_of_weight() -> None:
    clock = FakeClock()
    fleet, (big, small) = fleet_of([(3, 1), (1, 1)], clock)
    for _ in range(2):
        big.begin()
    small.begin()

    assert fleet.select_tier(Tier.FAST) is big  # 2/3 < 1/1


def test_with_nothing_in_flight_the_weights_decide() -> None:
    clock = FakeClock()
    fleet, (heavy, light) = fleet_of([(3, 1), (1, 1)], clock, seed=7)

    picks = Counter(fleet.select_tier(Tier.FAST) for _ in range(4000))

    assert picks[heavy] / 4000 == pytest.approx(0.75, abs=0.03)
    assert picks[light] / 4000 == pytest.approx(0.25, abs=0.03)


def test_an_ejected_endpoint_is_skipped_and_a_lower_priority_serves() -> None:
    clock = FakeClock()
    fleet, (high, low) = fleet_of([(1, 2), (1, 1)], clock)
    fail(high)  # eject_after_failures = 1

    assert fleet.select_tier(Tier.FAST) is low
    clock.now += 10
    taken = fleet.take(fleet.tiers[Tier.FAST])
    assert taken == (high, True)
    assert fleet.select_tier(Tier.FAST) is low  # its trial is under way


def test_a_busy_endpoint_is_skipped_until_its_retry_after() -> None:
    clock = FakeClock()
    fleet, (a, b) = fleet_of([(1, 1), (1, 1)], clock)
    a.throttle(3, 429)

    assert all(fleet.select_tier(Tier.FAST) is b for _ in range(20))
    clock.now += 3
    assert {fleet.select_tier(Tier.FAST) for _ in range(50)} == {a, b}


def test_unavailability_tells_unhealthy_ejected_and_busy_apart() -> None:
    clock = FakeClock()
    fleet, (sick, out, busy) = fleet_of([(1, 1), (1, 1), (1, 1)], clock)
    for _ in range(3):
        sick.mark_failure("down")
    fail(out)
    busy.throttle(4, 503)
    clock.now += 1

    why = fleet.unavailability(fleet.tiers[Tier.FAST])

    assert fleet.select_tier(Tier.FAST) is None
    assert (why.unhealthy, why.ejected, why.busy) == (1, 1, 1)
    assert why.busy_for == pytest.approx(3)
    assert why.busy_status == 503
    assert why.ejected_for == pytest.approx(9)

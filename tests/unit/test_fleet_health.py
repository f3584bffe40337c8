"""The background prober: rounds, concurrency, timeouts, supervision and a clean stop.

Synchronisation is by events and ``wait_rounds`` under ``asyncio.timeout`` deadlines; nothing
sleeps hoping that something else happened meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from octoroute.config.schema import (
    Config,
    EndpointConfig,
    HealthConfig,
    ModelsConfig,
    RoutingConfig,
    ServerConfig,
)
from octoroute.enums import TIER_POOLS, Strategy, Tier
from octoroute.fleet.health import (
    HealthProber,
    ProbeInconclusive,
    ProbeOutcome,
    default_backoff,
    describe_failure,
)
from octoroute.fleet.selector import Fleet

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence

    from octoroute.fleet.endpoint import Endpoint

DEADLINE = 2.0
"""Generous bound on anything a test waits for; reached only when the behaviour is broken."""


def make_fleet(threshold: int = 1, listener: Any = None) -> Fleet:
    def one(tier: Tier) -> tuple[EndpointConfig, ...]:
        return (
            EndpointConfig(
                pool=TIER_POOLS[tier],
                index=0,
                name=f"{tier}-m",
                base_url=f"http://{tier}:1/v1",
                max_tokens=8,
            ),
        )

    config = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(fast=one(Tier.FAST), balanced=one(Tier.BALANCED), deep=one(Tier.DEEP)),
        routing=RoutingConfig(strategy=Strategy.RULE),
        health=HealthConfig(failure_threshold=threshold),
    )
    return Fleet(config, listener=listener)


class Probe:
    """Counts probes per endpoint id and runs an optional per-id behaviour."""

    def __init__(self, behaviour: dict[str, Callable[[], Awaitable[None]]] | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.behaviour = behaviour or {}

    async def __call__(self, endpoint: Endpoint) -> None:
        self.calls[endpoint.id] += 1
        action = self.behaviour.get(endpoint.id)
        if action is not None:
            await action()


class CrashingFleet:
    """A fleet whose ``all()`` raises on the listed call numbers (1-based), to kill the loop."""

    def __init__(self, fleet: Fleet, crash_on: set[int]) -> None:
        self.fleet = fleet
        self.crash_on = crash_on
        self.calls = 0

    def all(self) -> tuple[Endpoint, ...]:
        self.calls += 1
        if self.calls in self.crash_on:
            raise RuntimeError(f"crash {self.calls}")
        return self.fleet.all()

    def mark_success(self, endpoint: Endpoint) -> None:
        self.fleet.mark_success(endpoint)

    def mark_failure(self, endpoint: Endpoint, reason: str) -> None:
        self.fleet.mark_failure(endpoint, reason)


class RecordingSleep:
    """Records every delay asked for and returns at once (after yielding to the loop)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def never() -> None:
    await asyncio.Event().wait()


@asynccontextmanager
async def running(prober: HealthProber) -> AsyncIterator[HealthProber]:
    await prober.start()
    try:
        yield prober
    finally:
        await prober.stop()


async def wait_rounds(prober: HealthProber, n: int) -> None:
    async with asyncio.timeout(DEADLINE):
        await prober.wait_rounds(n)


@contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """Collects what reaches the event loop's exception handler."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


# --- rounds ---------------------------------------------------------------------------------


async def test_first_round_runs_at_start_without_waiting_an_interval() -> None:
    fleet, probe = make_fleet(), Probe()
    async with running(HealthProber(fleet, probe, interval=3600, timeout=1)) as prober:
        await wait_rounds(prober, 1)
        assert prober.rounds == 1
        assert probe.calls == {"fast[0]": 1, "balanced[0]": 1, "deep[0]": 1}


async def test_rounds_repeat_every_interval() -> None:
    probe = Probe()
    async with running(HealthProber(make_fleet(), probe, interval=0.01, timeout=1)) as prober:
        await wait_rounds(prober, 3)
        assert min(probe.calls.values()) >= 3


async def test_rounds_are_separated_by_the_configured_interval() -> None:
    sleep = RecordingSleep()
    prober = HealthProber(make_fleet(), Probe(), interval=30, timeout=1, sleep=sleep)
    async with running(prober):
        await wait_rounds(prober, 3)
    assert sleep.delays[:2] == [30, 30]


async def test_a_shorter_interval_given_between_rounds_is_waited_from_the_last_round() -> None:
    fleet = make_fleet()
    async with running(HealthProber(fleet, Probe(), interval=3600, timeout=1)) as prober:
        await wait_rounds(prober, 1)
        prober.retarget(fleet, interval=0.01, timeout=1)
        await wait_rounds(prober, 3)


async def test_probe_results_drive_endpoint_health() -> None:
    fleet = make_fleet(threshold=1)
    fast, balanced, _ = fleet.all()
    fleet.mark_failure(balanced, "was down")

    async def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    probe = Probe({"fast[0]": refused})
    async with running(HealthProber(fleet, probe, interval=3600, timeout=1)) as prober:
        await wait_rounds(prober, 1)
    assert not fast.healthy
    assert fast.last_error == "ConnectionRefusedError: connection refused"
    assert balanced.healthy
    assert prober.failures == 0


async def test_probes_run_concurrently_so_a_blocked_one_delays_no_other() -> None:
    release = asyncio.Event()
    others_done = {"balanced[0]": asyncio.Event(), "deep[0]": asyncio.Event()}

    async def blocked() -> None:
        await release.wait()

    def finishing(endpoint_id: str) -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            others_done[endpoint_id].set()

        return action

    probe = Probe({"fast[0]": blocked, **{k: finishing(k) for k in others_done}})
    async with running(HealthProber(make_fleet(), probe, interval=3600, timeout=30)) as prober:
        async with asyncio.timeout(DEADLINE):
            for done in others_done.values():
                await done.wait()
        assert prober.rounds == 0  # the round waits for the blocked probe
        release.set()
        await wait_rounds(prober, 1)


async def test_a_probe_past_its_timeout_counts_as_a_failure() -> None:
    fleet = make_fleet(threshold=1)
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await never()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    probe = Probe({"fast[0]": hangs})
    async with running(HealthProber(fleet, probe, interval=3600, timeout=0.05)) as prober:
        await wait_rounds(prober, 1)
    fast, balanced, _ = fleet.all()
    assert not fast.healthy
    assert fast.last_error == "probe timed out after 0.05 s"
    assert cancelled.is_set()
    assert balanced.healthy


async def test_a_probe_raising_its_own_timeout_error_is_described_as_such() -> None:
    fleet = make_fleet(threshold=1)

    async def own_timeout() -> None:
        raise TimeoutError("read timeout")

    probe = Probe({"fast[0]": own_timeout})
    async with running(HealthProber(fleet, probe, interval=3600, timeout=5)) as prober:
        await wait_rounds(prober, 1)
    assert fleet.all()[0].last_error == "TimeoutError: read timeout"


def test_failure_description_is_the_type_and_the_message_when_there_is_one() -> None:
    assert describe_failure(OSError("no route")) == "OSError: no route"
    assert describe_failure(ConnectionResetError()) == "ConnectionResetError"


# --- supervision ----------------------------------------------------------------------------


def test_default_backoff_is_one_two_four_eight_then_stays_at_eight() -> None:
    assert [default_backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 8, 8, 8]


async def test_a_crashed_loop_restarts_with_backoff_and_counts_failures() -> None:
    errors: list[BaseException] = []
    attempts: list[int] = []

    def backoff(n: int) -> float:
        attempts.append(n)
        return 0.0

    fleet = CrashingFleet(make_fleet(), crash_on={1, 2, 3})
    prober = HealthProber(
        fleet, Probe(), interval=3600, timeout=1, on_task_failure=errors.append, backoff=backoff
    )
    async with running(prober):
        await wait_rounds(prober, 1)
        assert prober.running
    assert prober.failures == 3
    assert prober.status == "degraded"
    assert attempts == [1, 2, 3]
    assert [str(e) for e in errors] == ["crash 1", "crash 2", "crash 3"]


async def test_the_supervisor_never_gives_up_and_waits_the_default_schedule() -> None:
    sleep = RecordingSleep()
    fleet = CrashingFleet(make_fleet(), crash_on={1, 2, 3, 4, 5, 6})
    prober = HealthProber(
        fleet, Probe(), interval=30, timeout=1, on_task_failure=lambda _: None, sleep=sleep
    )
    async with running(prober):
        await wait_rounds(prober, 1)
    assert prober.failures == 6  # v1 gave up for good at the fifth
    assert sleep.delays[:7] == [1, 2, 4, 8, 8, 8, 30]


async def test_a_completed_round_resets_the_backoff() -> None:
    attempts: list[int] = []

    def backoff(n: int) -> float:
        attempts.append(n)
        return 0.0

    fleet = CrashingFleet(make_fleet(), crash_on={1, 3})
    prober = HealthProber(
        fleet, Probe(), interval=0.001, timeout=1, on_task_failure=lambda _: None, backoff=backoff
    )
    async with running(prober):
        await wait_rounds(prober, 2)
    assert attempts == [1, 1]
    assert prober.failures == 2


async def test_a_crash_inside_a_probe_task_is_reported_unwrapped() -> None:
    class FailingListener:
        def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
            raise RuntimeError("gauge broke")

        def on_recovered(self, endpoint: Endpoint) -> None:
            pass

    async def refused() -> None:
        raise ConnectionRefusedError

    errors: list[BaseException] = []
    fleet = make_fleet(threshold=1, listener=FailingListener())
    prober = HealthProber(
        fleet,
        Probe({"deep[0]": refused}),
        interval=3600,
        timeout=1,
        on_task_failure=errors.append,
        backoff=lambda _: 0.0,
    )
    async with running(prober):
        await wait_rounds(prober, 1)  # the second round finds deep[0] already unhealthy
    assert [type(e) for e in errors] == [RuntimeError]
    assert str(errors[0]) == "gauge broke"


async def test_without_a_hook_a_crash_goes_to_the_loop_exception_handler() -> None:
    fleet = CrashingFleet(make_fleet(), crash_on={1})
    prober = HealthProber(fleet, Probe(), interval=3600, timeout=1, backoff=lambda _: 0.0)
    with loop_errors() as seen:
        async with running(prober):
            await wait_rounds(prober, 1)
    assert [str(context["exception"]) for context in seen] == ["crash 1"]
    assert prober.failures == 1


async def test_a_raising_hook_does_not_kill_the_supervisor() -> None:
    def hook(error: BaseException) -> None:
        raise ValueError("metrics down")

    fleet = CrashingFleet(make_fleet(), crash_on={1})
    prober = HealthProber(
        fleet, Probe(), interval=3600, timeout=1, on_task_failure=hook, backoff=lambda _: 0.0
    )
    with loop_errors() as seen:
        async with running(prober):
            await wait_rounds(prober, 1)
    assert [str(context["exception"]) for context in seen] == ["metrics down"]


# --- start and stop -------------------------------------------------------------------------


async def test_stop_cancels_in_flight_probes_and_leaves_health_untouched() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hangs() -> None:
        started.set()
        try:
            await never()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    fleet = make_fleet(threshold=1)
    prober = HealthProber(fleet, Probe({"fast[0]": hangs}), interval=3600, timeout=30)
    await prober.start()
    async with asyncio.timeout(DEADLINE):
        await started.wait()
    await prober.stop()
    assert cancelled.is_set()
    assert not prober.running
    assert prober.failures == 0
    assert prober.status == "operational"
    assert all(ep.healthy and ep.consecutive_failures == 0 for ep in fleet.all())


async def test_stop_before_start_and_twice_is_harmless() -> None:
    prober = HealthProber(make_fleet(), Probe(), interval=1, timeout=1)
    await prober.stop()
    await prober.start()
    await prober.stop()
    await prober.stop()
    assert not prober.running


async def test_start_twice_is_refused_but_start_after_stop_works() -> None:
    probe = Probe()
    prober = HealthProber(make_fleet(), probe, interval=3600, timeout=1)
    async with running(prober):
        with pytest.raises(RuntimeError, match="already running"):
            await prober.start()
        await wait_rounds(prober, 1)
    async with running(prober):
        await wait_rounds(prober, 2)
    assert probe.calls["fast[0]"] == 2


@pytest.mark.parametrize(("interval", "timeout"), [(0, 1), (-1, 1), (1, 0)])
def test_non_positive_interval_or_timeout_is_rejected(interval: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        HealthProber(make_fleet(), Probe(), interval=interval, timeout=timeout)


# --- the observe step (per-kind status reads) -------------------------------------------------


async def test_observe_runs_after_each_probe_and_is_told_whether_the_server_answered() -> None:
    fleet = make_fleet(threshold=1)
    seen: list[tuple[str, bool, bool]] = []

    async def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    async def observe(endpoint: Endpoint, answered: bool) -> None:
        seen.append((endpoint.id, answered, endpoint.healthy))

    probe = Probe({"fast[0]": refused, "deep[0]": never})
    prober = HealthProber(fleet, probe, interval=3600, timeout=0.05, observe=observe)
    async with running(prober):
        await wait_rounds(prober, 1)

    # Health is marked before the observe step, and a timed-out probe is not worth asking more.
    assert sorted(seen) == [
        ("balanced[0]", True, True),
        ("deep[0]", False, False),
        ("fast[0]", True, False),
    ]


async def test_observe_still_runs_after_an_inconclusive_probe() -> None:
    # A saturated endpoint's status must be read, or placement keeps "idle" from before the
    # burst; the status read has a connection budget of its own (``Target.status_slots``).
    fleet = make_fleet(threshold=1)
    seen: list[tuple[str, bool, bool]] = []

    async def busy() -> None:
        raise ProbeInconclusive("every connection slot busy")

    async def observe(endpoint: Endpoint, answered: bool) -> None:
        seen.append((endpoint.id, answered, endpoint.healthy))

    prober = HealthProber(
        fleet, Probe({"fast[0]": busy}), interval=3600, timeout=1, observe=observe
    )
    async with running(prober):
        await wait_rounds(prober, 1)

    assert sorted(seen) == [
        ("balanced[0]", True, True),
        ("deep[0]", True, True),
        ("fast[0]", True, True),
    ]


async def test_a_raising_observe_changes_no_health_and_kills_no_round() -> None:
    fleet = make_fleet(threshold=1)

    async def observe(endpoint: Endpoint, answered: bool) -> None:
        raise RuntimeError("status reader bug")

    with loop_errors() as errors:
        prober = HealthProber(fleet, Probe(), interval=0.01, timeout=1, observe=observe)
        async with running(prober):
            await wait_rounds(prober, 2)

    assert all(endpoint.healthy for endpoint in fleet.all())
    assert prober.failures == 0
    assert errors
    assert all(e["message"] == "health prober observe step raised" for e in errors)


# --- the first round's report -------------------------------------------------------------------


async def test_the_first_round_is_reported_once_in_fleet_order_with_each_problem() -> None:
    fleet = make_fleet(threshold=3)
    reports: list[list[tuple[str, str | None]]] = []

    async def refused() -> None:
        raise ConnectionRefusedError("connection refused")

    async def busy() -> None:
        raise ProbeInconclusive("every connection slot busy")

    def on_first_round(outcomes: Sequence[ProbeOutcome]) -> None:
        reports.append([(outcome.endpoint.id, outcome.problem) for outcome in outcomes])

    probe = Probe({"balanced[0]": refused, "deep[0]": busy})
    prober = HealthProber(fleet, probe, interval=0.01, timeout=1, on_first_round=on_first_round)
    async with running(prober):
        await wait_rounds(prober, 3)

    assert reports == [
        [
            ("fast[0]", None),
            ("balanced[0]", "ConnectionRefusedError: connection refused"),
            ("deep[0]", None),  # busy is an answer: the server is there
        ]
    ]


async def test_a_first_round_cut_by_a_crash_is_reported_by_the_next_complete_round() -> None:
    fleet = make_fleet()
    reports: list[int] = []
    crashing = CrashingFleet(fleet, crash_on={1})
    prober = HealthProber(
        crashing,
        Probe(),
        interval=0.01,
        timeout=1,
        backoff=lambda _: 0,
        on_first_round=lambda outcomes: reports.append(len(outcomes)),
        on_task_failure=lambda _: None,
    )
    async with running(prober):
        await wait_rounds(prober, 2)

    assert reports == [3]


async def test_a_raising_first_round_report_kills_no_round() -> None:
    def broken(outcomes: Sequence[ProbeOutcome]) -> None:
        raise RuntimeError("report bug")

    with loop_errors() as errors:
        prober = HealthProber(
            make_fleet(), Probe(), interval=0.01, timeout=1, on_first_round=broken
        )
        async with running(prober):
            await wait_rounds(prober, 2)

    assert prober.failures == 0
    assert [e["message"] for e in errors] == ["health prober on_first_round hook raised"]

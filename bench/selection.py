"""``python -m bench.selection``: what choosing an instance costs per request.

Issue #18's budget: selection well under 10 µs per request at 3 tiers × 10 instances. A fleet of
three tiers with ten instances each (slots, context windows, a few known cold, some load in
flight) is built in one process; each case times one call of the step a request makes, warm,
over ``--calls`` calls, the cases taking turns for ``--repeats`` rounds, and reports CPU time
per call (``time.thread_time_ns``: the code's own cost, not the time the core spent on other
processes) as the best round (as ``timeit`` does) and the median:

* ``static``: v1's selection (``routing.placement = "static"``): priority and weight only;
* ``fleet``: fleet-aware placement without an affinity key (a first turn);
* ``fleet + affinity``: with the key of a conversation already seen (its rendezvous ranks are
  kept, as for every turn after the first);
* ``fleet + affinity, first turn``: with a key never seen (the ranks are computed);
* ``fleet + context``: with a prompt estimate checked against every window;
* ``take + end``: placing and starting the attempt, then ending it (``Fleet.take``,
  ``Endpoint.end``), with affinity and the context check: what the forwarder does per attempt;
* ``demand``: the request-side work before placement (the affinity key from headers and a
  three-turn conversation, ``wire.hints.affinity_key``).

Pure Python in one process, no sockets: run it on a quiet core (``taskset -c 1``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Final

from octoroute.config.schema import (
    Config,
    EndpointConfig,
    ModelsConfig,
    RoutingConfig,
    ServerConfig,
)
from octoroute.enums import TIER_POOLS, TIERS, Placement, Strategy, Tier
from octoroute.fleet.facts import InstanceFacts
from octoroute.fleet.placement import NO_DEMAND, Demand
from octoroute.fleet.selector import Fleet
from octoroute.wire.hints import RequestHints, affinity_key
from octoroute.wire.messages import Message

INSTANCES: Final = 10
BUDGET_NS: Final = 10_000


def fleet(placement: Placement) -> Fleet:
    """Three tiers of ten instances: half with 4 slots, windows from 8k to 128k tokens, two
    known cold per tier, and one to three requests in flight on most."""

    def tier(tier: Tier) -> tuple[EndpointConfig, ...]:
        return tuple(
            EndpointConfig(
                pool=TIER_POOLS[tier],
                index=i,
                name=f"{tier}-model",
                base_url=f"http://{tier}-{i}.lan:8000/v1",
                max_tokens=1024,
                weight=1.0 + (i % 3),
                max_concurrent=4 if i % 2 else None,
                context_window=8192 * (1 + i % 4) if i % 5 else 131072,
            )
            for i in range(INSTANCES)
        )

    config = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(
            fast=tier(Tier.FAST), balanced=tier(Tier.BALANCED), deep=tier(Tier.DEEP)
        ),
        routing=RoutingConfig(strategy=Strategy.RULE, placement=placement),
    )
    built = Fleet(config, rng=random.Random(1))
    rng = random.Random(2)
    for name in TIERS:
        for index, endpoint in enumerate(built.tiers[name]):
            if index in (3, 7):
                endpoint.observe(InstanceFacts(loaded=False))
            for _ in range(rng.randrange(0, 3)):
                endpoint.begin()
    return built


def timed(
    calls: dict[str, Callable[[], object]], count: int, repeats: int
) -> dict[str, tuple[float, float]]:
    """Per case, the best and median CPU nanoseconds per call over ``repeats`` rounds of
    ``count`` calls. The cases take turns round by round, so a busy spell on the host weighs
    on all of them alike."""
    for call in calls.values():
        for _ in range(count // 10):
            call()
    rounds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.thread_time_ns()
            for _ in range(count):
                call()
            rounds[name].append((time.thread_time_ns() - started) / count)
    return {name: (min(times), statistics.median(times)) for name, times in rounds.items()}


def cases(fresh: int) -> dict[str, Callable[[], object]]:
    """Each measured step, as a call with no arguments; ``fresh`` keys never seen are prepared
    for the first-turn case (one a call)."""
    static, aware = fleet(Placement.STATIC), fleet(Placement.FLEET)
    static_tier, tier = static.tiers[Tier.BALANCED], aware.tiers[Tier.BALANCED]
    rng = random.Random(3)
    keys = [rng.getrandbits(64) for _ in range(1024)]
    keyed = [Demand(key=key) for key in keys]
    sized = Demand(prompt_tokens=6000, output_tokens=None, fills_default=True)
    full = [Demand(6000, None, True, key) for key in keys]
    counter = iter(range(1 << 62))
    unseen = iter([Demand(key=rng.getrandbits(64)) for _ in range(fresh)])

    def affinity() -> object:
        return aware.place(tier, (), keyed[next(counter) & 1023])

    def first_turn() -> object:
        return aware.place(tier, (), next(unseen))

    def take_and_end() -> object:
        taken = aware.take(tier, (), full[next(counter) & 1023])
        assert taken is not None
        taken[0].end(taken[1])
        return taken

    messages = [
        Message(role="system", content="You are a helpful assistant. " * 20),
        Message(role="user", content="Explain the difference between a process and a thread."),
        Message(role="assistant", content="A process has its own address space; " * 10),
        Message(role="user", content="And how do they share memory?"),
    ]
    headers: dict[str, str] = {"content-type": "application/json", "user-agent": "bench"}
    hints = RequestHints(None, True, None)
    return {
        "static (v1: priority + weight)": lambda: static.place(static_tier, (), NO_DEMAND),
        "fleet": lambda: aware.place(tier, (), NO_DEMAND),
        "fleet + affinity": affinity,
        "fleet + affinity, first turn": first_turn,
        "fleet + context": lambda: aware.place(tier, (), sized),
        "take + end (affinity + context)": take_and_end,
        "demand (affinity key from the conversation)": lambda: affinity_key(
            headers, hints, messages
        ),
    }


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.selection", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    print(
        f"{len(TIERS)} tiers x {INSTANCES} instances; {args.repeats} rounds of {args.calls} calls"
    )
    print("| step | best CPU ns per call | median CPU ns per call |")
    print("|---|---|---|")
    worst = 0.0
    for name, (best, median) in timed(
        cases(args.calls * (args.repeats + 1)), args.calls, args.repeats
    ).items():
        worst = max(worst, best)
        print(f"| {name} | {best:,.0f} | {median:,.0f} |")
    verdict = "meets" if worst < BUDGET_NS else "MISSES"
    print(f"\nslowest step {worst:,.0f} ns: {verdict} the {BUDGET_NS:,} ns budget")


if __name__ == "__main__":
    main()

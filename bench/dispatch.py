"""``python -m bench.dispatch``: what handing a freed slot to a waiting request costs, by queue
length.

When every instance that could take a request is at its ``max_concurrent``, the request waits in
its tier's line (``fleet.dispatch``, ``limits.max_queue``, 256 by default); each attempt that
ends hands its slot to a waiter. This times that hand-over, in CPU time per release
(``time.thread_time_ns`` around ``Endpoint.end``), with ``n`` requests waiting all along (a new
one joins after each release), for four shapes of the line:

* ``head``: every waiter could use the freed slot, the first takes it;
* ``idle too small``: the freed instance fits every waiter, another instance of the tier is
  idle but its context window is too small for any of them;
* ``named, other idle``: every waiter asked for one named model whose replica frees the slot,
  while another instance of the tier is idle;
* ``n ahead cannot use it``: ``n`` waiters for a named model come first and the freed instance
  (another one) serves only the tier-wide waiter behind them.

Pure Python in one process, no sockets: run it on a quiet core (``taskset -c 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Sequence
from typing import Final

from octoroute.config.schema import (
    Config,
    EndpointConfig,
    ModelsConfig,
    RoutingConfig,
    ServerConfig,
)
from octoroute.enums import Importance, Pool, Strategy, Tier
from octoroute.fleet.dispatch import Dispatcher, Grant
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.placement import NO_DEMAND, Demand
from octoroute.fleet.selector import Fleet

CASES: Final = ("head", "idle too small", "named, other idle", "n ahead cannot use it")
LARGE: Final = Demand(prompt_tokens=20_000, output_tokens=100)
"""Fits a 32k window, not an 8k one."""


def endpoint(pool: Pool, index: int, name: str, window: int | None) -> EndpointConfig:
    return EndpointConfig(
        pool=pool,
        index=index,
        name=name,
        base_url=f"http://{pool}-{index}.lan:8000/v1",
        max_tokens=256,
        max_concurrent=1,
        context_window=window,
    )


def fleet(case: str) -> Fleet:
    """A fast tier of two one-slot instances (the second too small for ``idle too small``, a
    model of its own for the named cases), one-instance balanced and deep tiers."""
    second = "other" if case in ("named, other idle", "n ahead cannot use it") else "model"
    window = 8192 if case == "idle too small" else None
    config = Config(
        server=ServerConfig(host="127.0.0.1", port=0),
        models=ModelsConfig(
            fast=(
                endpoint(Pool.FAST, 0, "model", 32768),
                endpoint(Pool.FAST, 1, second, window),
            ),
            balanced=(endpoint(Pool.BALANCED, 0, "up", None),),
            deep=(endpoint(Pool.DEEP, 0, "top", None),),
        ),
        routing=RoutingConfig(strategy=Strategy.RULE),
    )
    return Fleet(config, rng=random.Random(1))


async def release_costs(case: str, waiting: int, releases: int) -> list[int]:
    """CPU nanoseconds of each of ``releases`` hand-overs with ``waiting`` requests in line."""
    built = fleet(case)
    dispatcher = Dispatcher(built, max_queue=waiting + 8, queue_timeout=3600.0)
    tier = built.tiers[Tier.FAST]
    first, second = tier
    demand = LARGE if case == "idle too small" else NO_DEMAND
    scope: Sequence[Endpoint] = (first,) if case == "named, other idle" else tier
    freed = second if case == "n ahead cannot use it" else first

    async def take(candidates: Sequence[Endpoint]) -> Grant:
        ticket = dispatcher.ticket(demand, Importance.NORMAL)
        granted = await dispatcher.acquire(candidates, (), ticket, "tier 'fast'")
        assert granted is not None
        return granted

    await take((first,))
    if case in ("head", "n ahead cannot use it"):
        await take((second,))  # no instance is idle: the freed one is the only room
    loop = asyncio.get_running_loop()
    line = (first,) if case == "n ahead cannot use it" else scope
    tasks = [loop.create_task(take(line)) for _ in range(waiting)]
    if case == "n ahead cannot use it":
        tasks.append(loop.create_task(take(tier)))
    await asyncio.sleep(0)
    costs = []
    for _ in range(releases):
        started = time.thread_time_ns()
        freed.end(False)  # hands the slot to the first waiter that can use it
        costs.append(time.thread_time_ns() - started)
        tasks.append(loop.create_task(take(scope if case != "n ahead cannot use it" else tier)))
        await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return costs


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__)
    parser.add_argument("--waiting", type=int, nargs="+", default=[16, 256, 4096])
    parser.add_argument("--releases", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{args.repeats} rounds of {args.releases} releases; median of each round, then")
    print("| line | " + " | ".join(f"{n} waiting" for n in args.waiting) + " |")
    print("|---|" + "---|" * len(args.waiting))
    for case in CASES:
        cells = []
        for waiting in args.waiting:
            rounds = [
                statistics.median(asyncio.run(release_costs(case, waiting, args.releases)))
                for _ in range(args.repeats)
            ]
            cells.append(f"{min(rounds) / 1000:,.1f} µs")
        print(f"| {case} | " + " | ".join(cells) + " |")
    print("\nCPU time per release, best round's median.")


if __name__ == "__main__":
    main()

"""What every part of a run shares: the plan (durations, rates), the servers, and the variants.

A *variant* is one way of reaching the fake upstream: ``direct`` (no proxy, the baseline every
"added" number subtracts), ``floor`` (``bench/floor.py``), ``router-fast`` (the router with
``model: "fast"``, no routing), ``router-auto`` (``model: "auto"``, decided by the run's
``--strategy``, by default ``learned``, as ``octoroute config`` writes it) and the
optional ``litellm`` peer. All variants are measured in the same run, interleaved, against the
same upstream processes, so their differences are paired.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench import payloads
from bench.procs import ForeignLoad, cpu_seconds
from bench.servers import DEFAULT_STRATEGY, Server

DISTURBED_CORES: Final = 0.3
"""Foreign CPU (other processes on the host) above which a measurement is retried."""


@dataclass(frozen=True)
class Plan:
    """How long each part runs; ``FULL`` fits in ~10 minutes, ``QUICK`` in ~2."""

    name: str
    rates: tuple[tuple[int, float], ...]
    """(offered req/s, seconds) of the latency part."""
    repeats: int
    warmup_seconds: float
    wrk_seconds: float
    stream_seconds: float
    soak_marks: tuple[int, int]
    """Requests after which the soak compares RSS (10,000 then 100,000 in the full plan)."""
    startups: int
    profile_seconds: float
    attempts: int
    """Tries per measurement when the host is busy with other processes (the last is kept)."""


FULL: Final = Plan(
    name="full",
    rates=((30, 10.0), (100, 6.0), (250, 6.0), (500, 5.0)),
    repeats=2,
    warmup_seconds=0.5,
    wrk_seconds=6.0,
    stream_seconds=4.0,
    soak_marks=(10_000, 100_000),
    startups=3,
    profile_seconds=10.0,
    attempts=3,
)
QUICK: Final = Plan(
    name="quick",
    rates=((30, 3.0), (100, 1.5), (250, 1.5), (500, 1.5)),
    repeats=1,
    warmup_seconds=0.2,
    wrk_seconds=2.0,
    stream_seconds=1.5,
    soak_marks=(2_000, 20_000),
    startups=1,
    profile_seconds=4.0,
    attempts=1,
)


@dataclass
class Variant:
    """One path to the upstream: which server, which body, which model for streams."""

    name: str
    server: Server
    body: bytes
    """The ~1 KB non-streaming request."""
    stream_model: str | None
    """``model`` of streaming requests (they must reach the SSE upstream); None: no streams."""

    @property
    def proxied(self) -> bool:
        """False for ``direct``: there is no proxy process to measure."""
        return self.name != "direct"


@dataclass
class Bench:
    """The state of one run: plan, servers, variants, and the results gathered so far."""

    plan: Plan
    log_dir: Path
    upstream: Server
    sse: Server
    floor: Server
    router: Server | None
    variants: list[Variant]
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    workers_flag: int = 2
    strategy: str = DEFAULT_STRATEGY
    """How the routers this run starts decide ``model: "auto"`` (``--strategy``)."""

    def variant(self, name: str) -> Variant | None:
        """The variant called ``name``, if it is part of this run."""
        return next((v for v in self.variants if v.name == name), None)

    def note(self, text: str) -> None:
        """Remember a remark for the report (skips, warnings) and print it now."""
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def make_variants(
    upstream: Server, sse: Server, floor: Server, router: Server | None, peer: Server | None
) -> list[Variant]:
    """The variants of a run, in their base order (rotated between repeats)."""
    direct = Variant("direct", upstream, payloads.chat_body("bench-model"), "bench-stream")
    # Streams sent "direct" go to the SSE upstream, not nginx: see ``stream_target``.
    variants = [direct, Variant("floor", floor, payloads.chat_body("bench-model"), "bench-stream")]
    if router is not None:
        variants.append(Variant("router-fast", router, payloads.chat_body("fast"), "bench-stream"))
        variants.append(Variant("router-auto", router, payloads.chat_body("auto"), None))
    if peer is not None:
        variants.append(Variant("litellm", peer, payloads.chat_body("bench-model"), "bench-stream"))
    return variants


def stream_url(bench: Bench, variant: Variant) -> str:
    """Where a variant's streams go: the SSE upstream itself for ``direct``, else the proxy."""
    return bench.sse.chat_url if variant.name == "direct" else variant.server.chat_url


def rotated(items: list[Variant], shift: int) -> Iterator[Variant]:
    """``items`` starting at ``shift``: each repeat runs the variants in a different order."""
    for index in range(len(items)):
        yield items[(index + shift) % len(items)]


@dataclass
class Measured:
    """A measurement with the proxy's CPU over it and the host's foreign load."""

    value: Any
    cpu_seconds: float | None
    foreign_cores: float
    retried: bool


async def measure(pid: int | None, action: Callable[[], Any], *, attempts: int = 1) -> Measured:
    """Run ``action`` (a coroutine function or plain callable), retrying on a busy host.

    At most ``attempts`` tries; the last one is kept whatever the load, and flagged.
    """
    for attempt in range(attempts):
        foreign = ForeignLoad()
        before = cpu_seconds(pid) if pid is not None else 0.0
        result = action()
        if asyncio.iscoroutine(result):
            result = await result
        used = cpu_seconds(pid) - before if pid is not None else None
        cores = foreign.cores()
        if cores <= DISTURBED_CORES or attempt == attempts - 1:
            return Measured(result, used, round(cores, 3), attempt > 0)
        print(f"    host busy ({cores:.2f} foreign cores); retrying", flush=True)
        await asyncio.sleep(2.0)
    raise AssertionError("unreachable")


def now_stamp() -> str:
    """A UTC timestamp for file names."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())

"""``python -m bench placement``: what fleet-aware placement gains over v1-style selection.

Issue #18's scenario, on a simulated fleet scaled down in time (about ten times): two tiers of
three replicas, two slots each. In each tier one replica starts cold (its first request waits
``LOAD_SECONDS``) and one runs a 2048-token window and cuts longer prompts silently, as Ollama
does. Every replica prefills uncached prompt tokens at ``PREFILL_SECONDS_PER_1K`` and keeps a
prefix cache, so a conversation that stays on one replica answers its later turns much sooner.

The workload: multi-turn conversations (each with its own long context, like a coding agent's
repository notes) arriving in bursts per tier, and a few conversations whose first message
carries a document too long for the small window. Every request streams; time to first token is
the client's wait for the first SSE event. A turn that fails is counted and the conversation
goes on (its next turn is sent as if the answer had come), so every mode sends the same
requests and ``failed`` counts them all.

Reported per mode: time to first token p50 and p99, requests that failed (not 200, or a broken
stream) or were cut by a too-small window, cold loads, and prefix-cache hits (requests at least
half of whose prompt was cached on the replica that served it).

Modes, both against the same fleet and workload:

* ``v1``: v1's selection, ``[routing] placement = "static"``, endpoints without ``kind`` or
  ``max_concurrent``: health, priority and weight only;
* ``fleet-aware``: ``placement = "fleet"`` (the default) with each endpoint's ``kind`` and
  ``max_concurrent = 2``; context windows are not configured but discovered by the prober from
  the servers (vLLM's ``max_model_len``, Ollama's ``/api/ps`` and ``/api/show``); conversation
  affinity on (the default), every other placement key at its default.

Each run seeds the router's weighted draws (``create_app(rng=...)``) with ``seed + run``, so a
run is reproducible up to the scheduling of the host (timings move which replicas are busy).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import web

from octoroute.api.common import RUNTIME
from octoroute.app import create_app
from octoroute.config import parse_config
from octoroute.enums import Kind, LogFormat
from octoroute.observability.logging import configure_logging
from octoroute.simulator import Behaviour, SimulatedFleet, SimulatedModel, fleet_config_toml

SLOTS: Final = 2
LOAD_SECONDS: Final = 8.0
PREFILL_SECONDS_PER_1K: Final = 0.5
SMALL_WINDOW: Final = 2048
LARGE_WINDOW: Final = 32768
TIERS: Final = ("fast", "balanced")
REPLY: Final = "Done: the change is in place and the tests pass."
WORDS: Final = [
    "module",
    "function",
    "returns",
    "value",
    "config",
    "parser",
    "request",
    "handler",
    "stream",
    "token",
    "cache",
    "replica",
    "window",
    "schedule",
    "batch",
    "latency",
    "queue",
    "tier",
    "route",
    "server",
    "client",
    "answer",
    "prompt",
    "history",
]


@dataclass(frozen=True)
class Workload:
    """The shape of the traffic; ``quick`` halves it."""

    conversations_per_tier: int = 12
    turns: int = 4
    burst: int = 6
    """Conversations that start together; bursts start ``burst_gap`` apart."""
    burst_gap: float = 2.0
    think_seconds: float = 0.3
    context_words: int = 900
    """Each conversation's own context (about 1.2 k simulated tokens)."""
    long_document_words: int = 2400
    long_conversations_per_tier: int = 2


@dataclass
class Outcome:
    """What the client saw of one request."""

    ttft: float | None
    ok: bool


@dataclass
class Report:
    """One mode's numbers."""

    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    cut: int = 0
    cold_loads: int = 0
    cache_hits: int = 0
    served: int = 0

    def ttfts(self) -> list[float]:
        """Time to first token of every request that got one, sorted, seconds."""
        return sorted(o.ttft for o in self.outcomes if o.ttft is not None)

    def percentile(self, share: float) -> float:
        """The ``share`` quantile of time to first token (nearest rank; of 96 requests, p99 is
        the second slowest), seconds."""
        values = self.ttfts()
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(share * (len(values) - 1)))]

    def mean(self) -> float:
        """Mean time to first token, seconds."""
        values = self.ttfts()
        return statistics.fmean(values) if values else float("nan")

    @property
    def failed(self) -> int:
        """Requests not answered 200 with a whole stream."""
        return sum(not o.ok for o in self.outcomes)

    def row(self) -> str:
        """One markdown table row."""
        return (
            f"| {self.mode} | {self.percentile(0.5):.2f} | {self.percentile(0.99):.2f} | "
            f"{self.mean():.2f} | {self.failed} | {self.cut} | {self.cold_loads} | "
            f"{self.cache_hits}/{self.served} |"
        )


def replica(name: str, index: int) -> SimulatedModel:
    """Replica 0 warm and large, 1 cold, 2 warm with the small window that cuts (Ollama-like)."""
    behaviour = Behaviour(
        reply=REPLY,
        first_token_delay=0.02,
        token_gap=0.005,
        slots=SLOTS,
        prefill_seconds_per_1k_tokens=PREFILL_SECONDS_PER_1K,
        context_window=LARGE_WINDOW,
        kind=Kind.VLLM,
    )
    if index == 1:
        behaviour.start_cold = True
        behaviour.load_seconds = LOAD_SECONDS
    if index == 2:
        behaviour.kind = Kind.OLLAMA
        behaviour.context_window = SMALL_WINDOW
    return SimulatedModel(name, behaviour=behaviour)


def build_fleet() -> SimulatedFleet:
    """Two tiers of three replicas (and one deep model the config requires)."""
    return SimulatedFleet(
        fast=[replica("sim-fast", i) for i in range(3)],
        balanced=[replica("sim-balanced", i) for i in range(3)],
        deep=[SimulatedModel("sim-deep")],
    )


MODES: Final = ("v1", "fleet-aware")


def config_text(fleet: SimulatedFleet, mode: str) -> str:
    """The router's config for ``mode``: ``fleet-aware`` adds kinds and slots per endpoint,
    ``v1`` turns placement back to v1's static selection."""
    if mode == "fleet-aware":
        for tier in TIERS:
            for model in fleet.tier(tier):
                model.config_keys.update(kind=model.behaviour.kind.value, max_concurrent=SLOTS)
    return fleet_config_toml(
        fleet,
        strategy="rule",
        request_timeout_seconds=120,
        health_interval_seconds=0.5,
        routing={"placement": "static"} if mode == "v1" else None,
    )


def text(rng: random.Random, words: int) -> str:
    """Deterministic filler prose of ``words`` words."""
    return " ".join(rng.choice(WORDS) for _ in range(words))


async def first_token(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Outcome:
    """Stream one request: the time to its first SSE event, and whether it all came."""
    started = time.monotonic()
    ttft = None
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                await response.read()
                return Outcome(None, False)
            raw = b""
            async for chunk in response.content.iter_any():
                if ttft is None:
                    ttft = time.monotonic() - started
                raw += chunk
    except aiohttp.ClientError:
        return Outcome(ttft, False)
    return Outcome(ttft, raw.rstrip().endswith(b"data: [DONE]"))


async def conversation(
    session: aiohttp.ClientSession,
    url: str,
    tier: str,
    number: int,
    workload: Workload,
    long_document: bool,
    report: Report,
) -> None:
    """One multi-turn conversation on ``tier``, each turn after the previous answer."""
    rng = random.Random(f"{tier}-{number}")
    messages: list[dict[str, str]] = [
        {
            "role": "system",
            "content": f"Conversation {tier}-{number}. Notes: " + text(rng, workload.context_words),
        }
    ]
    for turn in range(workload.turns):
        question = text(rng, 20)
        if turn == 0 and long_document:
            question += "\n\nDocument:\n" + text(rng, workload.long_document_words)
        messages.append({"role": "user", "content": question})
        body = {"model": tier, "messages": messages, "stream": True, "max_tokens": 64}
        outcome = await first_token(session, url, body)
        report.outcomes.append(outcome)
        # A failed turn is counted, and the client goes on as if answered: every mode sends
        # the same requests, so ``failed`` compares.
        messages.append({"role": "assistant", "content": REPLY})
        await asyncio.sleep(workload.think_seconds)


async def run(mode: str, workload: Workload, seed: int) -> Report:
    """Serve the scenario once through a router configured for ``mode``, its draws seeded."""
    fleet = build_fleet()
    report = Report(mode)
    async with fleet:
        config = parse_config(config_text(fleet, mode))
        app = create_app(config, rng=random.Random(seed))
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/v1/chat/completions"
        runtime = app[RUNTIME]
        async with asyncio.timeout(10):
            await runtime.prober.wait_rounds(1)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                tasks = []
                for number in range(workload.conversations_per_tier):
                    if number and number % workload.burst == 0:
                        await asyncio.sleep(workload.burst_gap)
                    for tier in TIERS:
                        long_document = number < workload.long_conversations_per_tier
                        tasks.append(
                            asyncio.create_task(
                                conversation(
                                    session, url, tier, number, workload, long_document, report
                                )
                            )
                        )
                await asyncio.gather(*tasks)
        finally:
            await runner.cleanup()
    served = [m for tier in TIERS for m in fleet.tier(tier)]
    report.cut = sum(r.truncated for m in served for r in m.chat_requests)
    report.cold_loads = sum(m.engine.cold_loads for m in served)
    report.cache_hits = sum(m.engine.cache_hits for m in served)
    report.served = sum(len(m.chat_requests) for m in served)
    return report


HEADER: Final = (
    "| run | selection | TTFT p50 (s) | TTFT p99 (s) | TTFT mean (s) | failed "
    "| cut by the window | cold loads | cache hits |\n|---|---|---|---|---|---|---|---|---|"
)


def median_row(reports: list[Report]) -> str:
    """The medians of one mode's runs, as a table row."""
    med = statistics.median
    return (
        f"| median | {reports[0].mode} | {med(r.percentile(0.5) for r in reports):.2f} | "
        f"{med(r.percentile(0.99) for r in reports):.2f} | {med(r.mean() for r in reports):.2f} | "
        f"{med(r.failed for r in reports):g} | "
        f"{med(r.cut for r in reports):g} | {med(r.cold_loads for r in reports):g} | "
        f"{med(r.cache_hits for r in reports):g}/{reports[0].served} |"
    )


def main(*, quick: bool = False, repeats: int | None = None, seed: int = 1) -> int:
    """Run both modes ``repeats`` times (3 by default, 1 with ``quick``) and print the table."""
    configure_logging("warning", LogFormat.TEXT)
    workload = Workload()
    if quick:
        workload = Workload(conversations_per_tier=6, turns=3, burst=3)
    runs = repeats or (1 if quick else 3)
    load = os.getloadavg()
    print(
        f"placement: {workload.conversations_per_tier} conversations x {workload.turns} turns "
        f"per tier, {len(TIERS)} tiers x 3 replicas x {SLOTS} slots; {runs} run(s), seeds "
        f"{seed}..{seed + runs - 1}; load average before: {load[0]:.2f} {load[1]:.2f}"
    )
    print(HEADER, flush=True)
    reports: dict[str, list[Report]] = {mode: [] for mode in MODES}
    for number in range(runs):
        # The modes take turns going first, so a drift in the host's load favours neither.
        order = MODES if number % 2 == 0 else MODES[::-1]
        for mode in order:
            report = asyncio.run(run(mode, workload, seed + number))
            reports[mode].append(report)
            print(f"| {seed + number} {report.row()}", flush=True)
    if runs > 1:
        for mode in MODES:
            print(median_row(reports[mode]))
    v1, fleet = (statistics.median(r.percentile(0.99) for r in reports[m]) for m in MODES)
    load = os.getloadavg()
    print(
        f"p99 TTFT v1 / fleet-aware (medians): {v1 / fleet:.1f}x (target >= 3x); "
        f"load average after: {load[0]:.2f} {load[1]:.2f}"
    )
    return 0

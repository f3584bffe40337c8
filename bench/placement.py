"""``python -m bench placement``: what fleet-aware placement gains over v1-style selection.

Issue #18's scenario, on a simulated fleet scaled down in time (about ten times): two tiers of
three replicas, two slots each. In each tier one replica starts cold (its first request waits
``LOAD_SECONDS``) and one runs a 2048-token window and cuts longer prompts silently, as Ollama
does. Every replica prefills uncached prompt tokens at ``PREFILL_SECONDS_PER_1K`` and keeps a
prefix cache, so a conversation that stays on one replica answers its later turns much sooner.

The workload: multi-turn conversations (each with its own long context, like a coding agent's
repository notes) arriving in bursts per tier, and a few conversations whose first message
carries a document too long for the small window. Every request streams; time to first token is
the client's wait for the first SSE event.

Reported per mode: time to first token p50 and p99, requests that failed (not 200, or a broken
stream) or were cut by a too-small window, cold loads, and prefix-cache hits (requests at least
half of whose prompt was cached on the replica that served it).

Modes: ``v1`` is today's selection (health, priority, weight). ``fleet-aware`` adds each
endpoint's ``kind`` and ``max_concurrent`` so the prober's facts, slots, context windows and
affinity steer placement; it runs only when the configuration accepts those keys (the placement
core of #18), and is reported as pending otherwise.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import web

from octoroute.api.common import RUNTIME
from octoroute.app import create_app
from octoroute.config import parse_config
from octoroute.config.schema import EndpointConfig
from octoroute.enums import Kind, LogFormat
from octoroute.observability.logging import configure_logging
from octoroute.simulator import Behaviour, SimulatedFleet, SimulatedModel, fleet_config_toml

SLOTS: Final = 2
LOAD_SECONDS: Final = 8.0
PREFILL_SECONDS_PER_1K: Final = 0.5
SMALL_WINDOW: Final = 2048
LARGE_WINDOW: Final = 32768
TIERS: Final = ("fast", "balanced")
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

    def percentile(self, share: float) -> float:
        """The ``share`` quantile of time to first token over answered requests, seconds."""
        values = sorted(o.ttft for o in self.outcomes if o.ttft is not None)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(share * (len(values) - 1)))]

    @property
    def failed(self) -> int:
        """Requests not answered 200 with a whole stream."""
        return sum(not o.ok for o in self.outcomes)

    def row(self) -> str:
        """One markdown table row."""
        return (
            f"| {self.mode} | {self.percentile(0.5):.2f} | {self.percentile(0.99):.2f} | "
            f"{self.failed} | {self.cut} | {self.cold_loads} | {self.cache_hits}/{self.served} |"
        )


def replica(name: str, index: int) -> SimulatedModel:
    """Replica 0 warm and large, 1 cold, 2 warm with the small window that cuts (Ollama-like)."""
    behaviour = Behaviour(
        reply="Done: the change is in place and the tests pass.",
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


def placement_keys_supported() -> bool:
    """Whether the configuration has the per-endpoint placement keys yet."""
    fields = EndpointConfig.__struct_fields__
    return "kind" in fields and "max_concurrent" in fields


def config_text(fleet: SimulatedFleet, mode: str) -> str:
    """The router's config for ``mode``: ``fleet-aware`` adds kinds and slots per endpoint."""
    if mode == "fleet-aware":
        for tier in TIERS:
            for model in fleet.tier(tier):
                model.config_keys.update(kind=model.behaviour.kind.value, max_concurrent=SLOTS)
    return fleet_config_toml(
        fleet,
        strategy="rule",
        request_timeout_seconds=120,
        health_interval_seconds=0.5,
    )


def text(rng: random.Random, words: int) -> str:
    """Deterministic filler prose of ``words`` words."""
    return " ".join(rng.choice(WORDS) for _ in range(words))


async def first_token(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[Outcome, str]:
    """Stream one request; the time to its first SSE event and the answer's text."""
    started = time.monotonic()
    ttft = None
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                await response.read()
                return Outcome(None, False), ""
            raw = b""
            async for chunk in response.content.iter_any():
                if ttft is None:
                    ttft = time.monotonic() - started
                raw += chunk
    except aiohttp.ClientError:
        return Outcome(ttft, False), ""
    ok = raw.rstrip().endswith(b"data: [DONE]")
    return Outcome(ttft, ok), "Done: the change is in place and the tests pass."


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
        outcome, answer = await first_token(session, url, body)
        report.outcomes.append(outcome)
        if not outcome.ok:
            return
        messages.append({"role": "assistant", "content": answer})
        await asyncio.sleep(workload.think_seconds)


async def run(mode: str, workload: Workload) -> Report:
    """Serve the scenario once through a router configured for ``mode``."""
    fleet = build_fleet()
    report = Report(mode)
    async with fleet:
        config = parse_config(config_text(fleet, mode))
        app = create_app(config)
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
    "| selection | TTFT p50 (s) | TTFT p99 (s) | failed | cut by the window | cold loads "
    "| cache hits |\n|---|---|---|---|---|---|---|"
)


def main(*, quick: bool = False) -> int:
    """Run every available mode and print the table."""
    configure_logging("warning", LogFormat.TEXT)
    workload = Workload()
    if quick:
        workload = Workload(conversations_per_tier=6, turns=3, burst=3)
    modes = ["v1"] + (["fleet-aware"] if placement_keys_supported() else [])
    reports = [asyncio.run(run(mode, workload)) for mode in modes]
    print(
        f"placement: {workload.conversations_per_tier} conversations x {workload.turns} turns "
        f"per tier, {len(TIERS)} tiers x 3 replicas x {SLOTS} slots"
    )
    print(HEADER)
    for report in reports:
        print(report.row())
    if len(modes) == 1:
        print("| fleet-aware | pending: the config does not accept kind / max_concurrent yet |")
    return 0

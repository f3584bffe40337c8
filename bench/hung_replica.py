"""``python -m bench.hung_replica``: how much traffic a hung replica still delays.

The scenario of issue #15: two replicas of one fast model; one accepts connections and answers
the health probe (``GET /v1/models``) but never answers a chat request. Requests arrive open-loop
at a fixed rate for a fixed time; a request is *delayed* when it took at least 90 % of the
per-attempt timeout (it waited on the hung replica before failing over). With the defaults
(``request_timeout_seconds = 30``, probes every 30 s, ejection after 3 failures for 30 s × n) the
command reproduces the recorded run in ``docs/performance.md``; the integration test
``tests/integration/test_outliers.py`` runs the same function with one-second timeouts.

Usage::

    python -m bench.hung_replica                      # 5 req/s for 150 s, default settings
    python -m bench.hung_replica --rate 10 --duration 20 --timeout 1 --eject-base 2
    python -m bench.hung_replica --no-eject           # the same without outlier detection
    python -m bench.hung_replica --healthy-latency 1  # a busier healthy replica
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from octoroute.api.common import RUNTIME
from octoroute.app import create_app
from octoroute.config import parse_config
from octoroute.enums import LogFormat
from octoroute.observability.logging import configure_logging
from octoroute.runtime import Runtime
from octoroute.simulator import Hang, SimulatedFleet, SimulatedModel, fleet_config_toml

DELAYED_SHARE_OF_TIMEOUT = 0.9
"""A request that took this share of the attempt timeout or more waited on the hung replica."""


@dataclass
class Result:
    """What one run measured."""

    sent: int
    ok: int
    delayed: int
    ejections: int
    hung_chat_requests: int
    """Chat requests the hung replica received (each one held a client until the timeout)."""

    @property
    def delayed_share(self) -> float:
        """Delayed requests over requests sent."""
        return self.delayed / self.sent if self.sent else 0.0


@dataclass
class Settings:
    """The knobs of one run; ``None`` keeps octoroute's default."""

    rate: float = 5.0
    duration: float = 150.0
    timeout: float | None = None
    health_interval: float | None = None
    eject_after: int | None = None
    eject_base: float | None = None
    eject_max: float | None = None
    healthy_latency: float = 0.0
    """Seconds the healthy replica takes per answer: with more in flight on it, least-loaded
    selection alone protects less, and ejection has to do the work."""


def _config_text(fleet: SimulatedFleet, settings: Settings) -> str:
    health = []
    if settings.health_interval is not None:
        health.append(f"interval_seconds = {settings.health_interval}")
    if settings.eject_after is not None:
        health.append(f"eject_after_failures = {settings.eject_after}")
    if settings.eject_base is not None:
        health.append(f"eject_base_seconds = {settings.eject_base}")
    if settings.eject_max is not None:
        health.append(f"eject_max_seconds = {settings.eject_max}")
    extra = "[health]\n" + "\n".join(health) if health else ""
    return fleet_config_toml(
        fleet, strategy="rule", request_timeout_seconds=settings.timeout, extra=extra
    )


async def _one(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    started = time.monotonic()
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    async with session.post(url, json=body) as response:
        await response.read()
        return response.status, time.monotonic() - started


async def run(settings: Settings) -> tuple[Result, Runtime]:
    """Run the scenario once and return what it measured and the router's runtime."""
    hung = SimulatedModel("sim-fast")
    hung.behaviour.fault = Hang()
    healthy = SimulatedModel("sim-fast")
    healthy.behaviour.latency = settings.healthy_latency
    fleet = SimulatedFleet(
        fast=[hung, healthy],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    async with fleet:
        config = parse_config(_config_text(fleet, settings))
        app = create_app(config)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/v1/chat/completions"
        runtime = app[RUNTIME]
        timeout = config.timeout_for(config.models.fast[0].pool)
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                tasks = []
                start = time.monotonic()
                count = int(settings.rate * settings.duration)
                for index in range(count):
                    delay = start + index / settings.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(_one(session, url)))
                results = await asyncio.gather(*tasks)
            ejections = sum(
                int(sample.value)
                for family in runtime.metrics.ejections.collect()
                for sample in family.samples
                if sample.name.endswith("_total")
            )
        finally:
            await runner.cleanup()
    delayed = sum(elapsed >= DELAYED_SHARE_OF_TIMEOUT * timeout for _, elapsed in results)
    result = Result(
        sent=len(results),
        ok=sum(status == 200 for status, _ in results),
        delayed=delayed,
        ejections=ejections,
        hung_chat_requests=len(hung.chat_requests),
    )
    return result, runtime


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.hung_replica", description=__doc__)
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of traffic")
    parser.add_argument("--timeout", type=float, help="request_timeout_seconds (default 30)")
    parser.add_argument("--health-interval", type=float, help="probe interval (default 30)")
    parser.add_argument("--eject-base", type=float, help="eject_base_seconds (default 30)")
    parser.add_argument("--healthy-latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--no-eject", action="store_true", help="turn outlier detection off")
    args = parser.parse_args(argv)
    settings = Settings(
        rate=args.rate,
        duration=args.duration,
        timeout=args.timeout,
        health_interval=args.health_interval,
        eject_base=args.eject_base,
        eject_after=1_000_000 if args.no_eject else None,
        healthy_latency=args.healthy_latency,
    )
    configure_logging("warning", LogFormat.TEXT)
    result, _ = asyncio.run(run(settings))
    print(
        f"sent {result.sent}, answered 200: {result.ok}, delayed by the timeout: "
        f"{result.delayed} ({result.delayed_share:.1%}), chat requests to the hung replica: "
        f"{result.hung_chat_requests}, ejections: {result.ejections}"
    )


if __name__ == "__main__":
    main()

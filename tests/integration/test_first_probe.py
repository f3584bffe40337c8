"""The first probe round, as a newcomer sees it: ``GET /health`` says ``unknown`` for an
endpoint nothing has answered yet (not ``healthy``), and start-up logs one line per endpoint that
did not answer the first round plus a summary line.

Probes are held with a gate (``GatedModel.probe_gate``), so "not probed yet" is a state the test
holds; every wait is on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import orjson

from octoroute.config import Config, parse_config
from octoroute.enums import LogFormat
from octoroute.fleet.endpoint import Health
from octoroute.observability.logging import configure_logging
from octoroute.runtime import STARTUP_ROUND_EVENT, STARTUP_UNREACHABLE_EVENT
from octoroute.simulator import SimulatedFleet, SimulatedModel
from tests.gated import GatedModel, gated
from tests.harness import config_for, endpoint, first_probe_round, running_router, wait_until


def gated_config(fast: list[GatedModel], balanced: GatedModel, deep: GatedModel) -> Config:
    """A router in front of gated fakes, probing every 100 ms (5 s per probe at most)."""
    lines = ["[server]", 'host = "127.0.0.1"', "port = 0"]
    for tier, models in (("fast", fast), ("balanced", [balanced]), ("deep", [deep])):
        for model in models:
            lines += [f"[[models.{tier}]]", f'name = "{model.name}"']
            lines += [f'base_url = "{model.base_url}"', "max_tokens = 64"]
    lines += ["[routing]", 'strategy = "rule"']
    lines += ["[health]", "interval_seconds = 0.1", "probe_timeout_seconds = 5"]
    return parse_config("\n".join(lines) + "\n")


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200
        return orjson.loads(await response.read())


def instances(health: Any, tier: str) -> dict[str, Any]:
    return {entry["name"]: entry for entry in health["placement"][tier]["instances"]}


async def test_health_shows_unknown_for_an_endpoint_not_probed_yet_then_healthy(
    session: aiohttp.ClientSession,
) -> None:
    gate = asyncio.Event()
    async with gated("held", "answers", "up", "top") as (held, answers, up, top):
        held.probe_gate = gate
        async with running_router(gated_config([held, answers], up, top)) as router:
            others = [endpoint(router, name) for name in ("answers", "up", "top")]
            await wait_until(
                lambda: held.probes >= 1 and all(other.seen_healthy for other in others),
                what="every probe answered but the held one",
            )
            health = await get_json(session, router.url + "/health")
            listing = await get_json(session, router.url + "/models")

            assert health["status"] == "OK"
            assert health["tiers"]["fast"] == {"healthy": 1, "unknown": 1, "total": 2}
            assert health["tiers"]["balanced"] == {"healthy": 1, "unknown": 0, "total": 1}
            fast = instances(health, "fast")
            assert (fast["held"]["health"], fast["held"]["healthy"]) == ("unknown", None)
            assert (fast["answers"]["health"], fast["answers"]["healthy"]) == ("healthy", True)
            # /models keeps v1's boolean: the unknown instance is still in rotation.
            models = {entry["name"]: entry for entry in listing["models"]}
            assert (models["held"]["health"], models["held"]["healthy"]) == ("unknown", True)

            gate.set()
            await wait_until(
                lambda: endpoint(router, "held").health is Health.HEALTHY,
                what="the held probe answered",
            )
            health = await get_json(session, router.url + "/health")
            assert health["tiers"]["fast"] == {"healthy": 2, "unknown": 0, "total": 2}
            assert instances(health, "fast")["held"]["healthy"] is True


async def test_a_request_answered_before_the_first_probe_makes_the_endpoint_healthy(
    session: aiohttp.ClientSession,
) -> None:
    gate = asyncio.Event()
    async with gated("held", "up", "top") as (held, up, top):
        held.probe_gate = gate
        async with running_router(gated_config([held], up, top)) as router:
            await wait_until(lambda: held.probes >= 1, what="the held probe arrived")
            assert endpoint(router, "held").health is Health.UNKNOWN
            body = {"model": "held", "messages": [{"role": "user", "content": "hi"}]}
            async with session.post(router.v1 + "/chat/completions", json=body) as response:
                assert response.status == 200
            health = await get_json(session, router.url + "/health")
            gate.set()

    assert health["tiers"]["fast"] == {"healthy": 1, "unknown": 0, "total": 1}


def log_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


async def test_start_up_logs_each_unreachable_endpoint_with_its_reason_and_a_summary(
    session: aiohttp.ClientSession,
) -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-alive"), SimulatedModel("sim-dead")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    try:
        async with fleet:
            await fleet.fast[1].stop()
            async with running_router(config_for(fleet, strategy="rule")) as router:
                await first_probe_round(router)
                health = await get_json(session, router.url + "/health")
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)

    lines = log_lines(out)
    unreachable = [line for line in lines if line["event"] == STARTUP_UNREACHABLE_EVENT]
    assert [(line["endpoint"], line["id"], line["tier"]) for line in unreachable] == [
        ("sim-dead", "fast[1]", "fast")
    ]
    assert unreachable[0]["level"] == "warning"
    assert "cannot connect" in unreachable[0]["reason"]
    (summary,) = [line for line in lines if line["event"] == STARTUP_ROUND_EVENT]
    assert summary["level"] == "warning"
    assert (summary["answered"], summary["unreachable"], summary["total"]) == (3, 1, 4)
    assert 0 <= summary["seconds"] < 10
    # One failure is below failure_threshold: not unhealthy yet, but not healthy either.
    fast = instances(health, "fast")
    assert (fast["sim-dead"]["health"], fast["sim-dead"]["healthy"]) == ("unknown", None)
    assert health["tiers"]["fast"] == {"healthy": 1, "unknown": 1, "total": 2}


async def test_start_up_logs_only_an_info_summary_when_every_endpoint_answers(
    fleet: SimulatedFleet,
) -> None:
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    try:
        async with running_router(config_for(fleet, strategy="rule")) as router:
            await first_probe_round(router)
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)

    lines = log_lines(out)
    assert not [line for line in lines if line["event"] == STARTUP_UNREACHABLE_EVENT]
    (summary,) = [line for line in lines if line["event"] == STARTUP_ROUND_EVENT]
    assert summary["level"] == "info"
    assert (summary["answered"], summary["unreachable"], summary["total"]) == (4, 0, 4)

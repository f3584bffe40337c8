"""Fleet health over real sockets: the start-up probe round, probe-driven unhealthy and recovery,
what real requests then skip, and how ``GET /models`` and ``GET /health`` show it.

The prober runs every 100 ms here; every wait is on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from octoroute.enums import Tier
from octoroute.fleet.endpoint import Endpoint
from octoroute.simulator import MODELS_PATH, SimulatedFleet
from tests.harness import RouterHandle, config_for, endpoint, running_router, wait_until

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
FAST_PROBES = "[health]\ninterval_seconds = 0.1\nprobe_timeout_seconds = 0.5\n"
"""Probe every 100 ms. The short probe timeout bounds a probe caught by a simulator's ``stop()``
(a connection accepted while the server shuts down is never answered)."""


def failure_state(ep: Endpoint) -> tuple[int, str | None]:
    """Read afresh (mypy would otherwise keep an earlier narrowing of ``last_error``)."""
    return ep.consecutive_failures, ep.last_error


async def chat(
    session: aiohttp.ClientSession, router: RouterHandle, model: str, *, stream: bool = False
) -> tuple[int, str | None, Any]:
    """POST a chat completion; status, serving endpoint header and the parsed JSON body (if any)."""
    body = {"model": model, "messages": HELLO, "stream": stream}
    async with session.post(router.v1 + "/chat/completions", json=body) as response:
        served = response.headers.get("x-octoroute-endpoint")
        if response.content_type == "application/json":
            return response.status, served, await response.json()
        await response.read()
        return response.status, served, None


async def models_view(session: aiohttp.ClientSession, router: RouterHandle) -> dict[str, Any]:
    """``GET /models`` keyed by endpoint name (the standard fleet's names are distinct)."""
    async with session.get(router.url + "/models") as response:
        assert response.status == 200
        listing = await response.json()
    return {entry["name"]: entry for entry in listing["models"]}


async def test_first_probe_round_runs_at_start_up_before_any_chat_request(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    # The configured interval is the default 30 s: a probe within seconds is the start-up round.
    assert router.config.health.interval_seconds == 30
    for sim in fleet.models:
        await sim.wait_for_requests(1, path=MODELS_PATH)
        probe = next(r for r in sim.requests if r.path == MODELS_PATH)
        assert probe.method == "GET"
        assert probe.headers["User-Agent"].startswith("octoroute/")
        assert sim.chat_requests == []
    await asyncio.wait_for(router.runtime.prober.wait_rounds(1), 5)
    assert all(ep.healthy and ep.consecutive_failures == 0 for ep in router.runtime.fleet.all())


async def test_failed_probes_mark_unhealthy_at_the_threshold_and_one_good_probe_restores(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    async with running_router(config_for(fleet, strategy="rule", extra=FAST_PROBES)) as router:
        watched = endpoint(router, "sim-fast-a")
        assert watched.failure_threshold == 3
        status, served, _ = await chat(session, router, "fast")
        assert (status, served) == (200, "sim-fast-a")

        preferred.behaviour.health_status = 503
        seen: set[tuple[int, bool]] = set()

        def unhealthy() -> bool:
            seen.add((min(watched.consecutive_failures, 4), watched.healthy))
            return not watched.healthy

        await wait_until(unhealthy, what="sim-fast-a marked unhealthy by probes")
        # Below the threshold it stayed in rotation; at the threshold it left.
        assert all(healthy for failures, healthy in seen if failures < 3)
        assert watched.consecutive_failures >= 3
        assert watched.last_error is not None
        assert "503" in watched.last_error
        view = await models_view(session, router)
        assert view["sim-fast-a"]["healthy"] is False
        assert view["sim-fast-a"]["consecutive_failures"] >= 3
        assert view["sim-fast-b"]["healthy"] is True

        before = len(preferred.chat_requests)
        for _ in range(5):
            status, served, _ = await chat(session, router, "fast")
            assert (status, served) == (200, "sim-fast-b")
        status, served, _ = await chat(session, router, "fast", stream=True)
        assert (status, served) == (200, "sim-fast-b")
        assert len(preferred.chat_requests) == before

        preferred.behaviour.health_status = 200
        await wait_until(lambda: watched.healthy, what="sim-fast-a restored by a good probe")
        assert failure_state(watched) == (0, None)
        status, served, _ = await chat(session, router, "fast")
        assert (status, served) == (200, "sim-fast-a")
        assert len(other.chat_requests) == 6


async def test_stopped_endpoint_is_skipped_and_restored_after_a_restart(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    preferred, _ = fleet.fast
    preferred.config_keys["priority"] = 2
    async with running_router(config_for(fleet, strategy="rule", extra=FAST_PROBES)) as router:
        await asyncio.wait_for(router.runtime.prober.wait_rounds(1), 5)
        watched = endpoint(router, "sim-fast-a")
        port = preferred.port
        await preferred.stop()
        await wait_until(lambda: not watched.healthy, what="stopped sim-fast-a marked unhealthy")
        status, served, _ = await chat(session, router, "fast")
        assert (status, served) == (200, "sim-fast-b")
        await preferred.start(port=port)
        await wait_until(lambda: watched.healthy, what="restarted sim-fast-a restored")
        status, served, _ = await chat(session, router, "fast")
        assert (status, served) == (200, "sim-fast-a")


async def test_tier_with_every_endpoint_unhealthy_answers_503_no_healthy_endpoint(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.fast:
        sim.behaviour.health_status = 500
    async with running_router(config_for(fleet, strategy="rule", extra=FAST_PROBES)) as router:
        await wait_until(
            lambda: router.runtime.fleet.healthy_count(Tier.FAST) == 0,
            what="the whole fast tier marked unhealthy",
        )
        for stream in (False, True):
            status, _, body = await chat(session, router, "fast", stream=stream)
            assert status == 503
            assert set(body["error"]) == {"message", "type", "param", "code"}
            assert body["error"]["code"] == "no_healthy_endpoint"
            assert body["error"]["type"] == "api_error"
            assert "tier 'fast'" in body["error"]["message"]
            assert "all 2 configured endpoints" in body["error"]["message"]
        # A model name in the tier is refused the same way, naming the model.
        status, _, body = await chat(session, router, "sim-fast-b")
        assert status == 503
        assert "model 'sim-fast-b'" in body["error"]["message"]
        assert all(sim.chat_requests == [] for sim in fleet.fast)
        # Other tiers are unaffected.
        status, served, _ = await chat(session, router, "balanced")
        assert (status, served) == (200, "sim-balanced")
        async with session.get(router.url + "/health") as response:
            health = await response.json()
        assert health["status"] == "OK"
        assert health["tiers"]["fast"] == {"healthy": 0, "unknown": 0, "total": 2}
        assert health["tiers"]["balanced"] == {"healthy": 1, "unknown": 0, "total": 1}
        async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(model="fast", messages=HELLO)
        assert caught.value.status_code == 503
        assert caught.value.code == "no_healthy_endpoint"


async def test_models_view_has_one_entry_per_endpoint_with_its_health(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    await asyncio.wait_for(router.runtime.prober.wait_rounds(1), 5)
    view = await models_view(session, router)
    assert set(view) == {"sim-fast-a", "sim-fast-b", "sim-balanced", "sim-deep"}
    for sim in fleet.models:
        entry = view[sim.name]
        assert entry["endpoint"] == sim.base_url
        assert entry["healthy"] is True
        assert entry["consecutive_failures"] == 0
        assert entry["last_check_seconds_ago"] >= 0
    assert view["sim-fast-a"]["tier"] == "fast"
    assert view["sim-deep"]["tier"] == "deep"

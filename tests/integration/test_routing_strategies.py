"""``llm`` and ``hybrid`` over real sockets: the router tier's model is asked exactly when it
should be, and a routing failure never fails the user's request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest

from octoroute.simulator import ROUTER_PROMPT_SIGNATURE, HttpError, SimulatedFleet, SimulatedModel
from tests.harness import RouterHandle, config_for, running_router

AMBIGUOUS = {"message": "hi", "task_type": "casual_chat", "importance": "high"}
"""v1's table has no rule for high-importance small talk: hybrid must ask the router model."""
CODE = {"message": "Fix the off-by-one in my loop", "task_type": "code"}
"""A short code task: v1's table sends it to balanced without asking anyone."""


def routing_prompts(model: SimulatedModel) -> int:
    """How many of the requests ``model`` received were LLM-router prompts."""
    return sum(
        1
        for request in model.chat_requests
        if ROUTER_PROMPT_SIGNATURE in request.body.decode("utf-8", errors="replace")
    )


@pytest.fixture
async def hybrid(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    async with running_router(config_for(fleet, strategy="hybrid")) as handle:
        yield handle


async def chat(handle: RouterHandle, body: Mapping[str, object]) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(handle.url + "/chat", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        result: dict[str, object] = await response.json()
        return result


async def test_hybrid_asks_the_router_model_only_when_no_rule_matches(
    hybrid: RouterHandle, fleet: SimulatedFleet
) -> None:
    router_model = fleet.balanced[0]
    router_model.behaviour.router_answer = "DEEP"

    ruled = await chat(hybrid, CODE)
    assert ruled["routing_strategy"] == "rule"
    assert ruled["model_tier"] == "balanced"
    assert routing_prompts(router_model) == 0

    asked = await chat(hybrid, AMBIGUOUS)
    assert asked["routing_strategy"] == "llm"
    assert asked["model_tier"] == "deep"
    assert asked["model_name"] == "sim-deep"
    assert routing_prompts(router_model) == 1
    for other in (*fleet.fast, *fleet.deep):
        assert routing_prompts(other) == 0


async def test_llm_strategy_asks_the_router_model_for_every_auto_request(
    fleet: SimulatedFleet,
) -> None:
    fleet.balanced[0].behaviour.router_answer = "FAST"
    async with (
        running_router(config_for(fleet, strategy="llm")) as handle,
        aiohttp.ClientSession() as session,
    ):
        for prompt in ("hello", "Prove that sqrt(2) is irrational.", "Write a haiku"):
            async with session.post(
                handle.v1 + "/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": prompt}]},
            ) as response:
                assert response.status == 200
                assert response.headers["x-octoroute-strategy"] == "llm"
                assert response.headers["x-octoroute-tier"] == "fast"
        async with session.post(
            handle.v1 + "/chat/completions",
            json={"model": "deep", "messages": [{"role": "user", "content": "hello"}]},
        ) as response:
            assert response.headers["x-octoroute-strategy"] == "direct"
    assert routing_prompts(fleet.balanced[0]) == 3


async def test_router_tier_setting_picks_which_model_decides(fleet: SimulatedFleet) -> None:
    fleet.deep[0].behaviour.router_answer = "BALANCED"
    config = config_for(fleet, strategy="llm", router_tier="deep")
    async with running_router(config) as handle:
        answer = await chat(handle, {"message": "hello"})
    assert answer["model_tier"] == "balanced"
    assert routing_prompts(fleet.deep[0]) == 1
    assert routing_prompts(fleet.balanced[0]) == 0


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("I cannot help with routing.", "refusal"),
        ("", "empty"),
        ("x" * 2048, "oversize"),
        ("no idea", "unparseable"),
    ],
)
async def test_an_unusable_router_answer_falls_back_to_the_rules(
    fleet: SimulatedFleet, answer: str, reason: str
) -> None:
    fleet.balanced[0].behaviour.router_answer = answer
    async with running_router(config_for(fleet, strategy="hybrid")) as handle:
        result = await chat(handle, AMBIGUOUS)
        async with (
            aiohttp.ClientSession() as session,
            session.get(handle.url + "/metrics") as response,
        ):
            metrics = await response.text()
    assert result["routing_strategy"] == "rule"
    assert result["model_tier"] == "balanced"  # routing.default_tier
    warnings = result["warnings"]
    assert isinstance(warnings, list)
    assert reason in warnings[0]
    assert f'octoroute_routing_fallbacks_total{{reason="{reason}"}} 1.0' in metrics
    # An answer the router cannot use is the model's fault, not the server's.
    assert handle.runtime.fleet.by_name("sim-balanced")[0].consecutive_failures == 0


async def test_a_router_model_that_is_down_never_fails_the_request(
    fleet: SimulatedFleet,
) -> None:
    router_model = fleet.balanced[0]
    router_model.behaviour.fault = HttpError(500)
    async with running_router(config_for(fleet, strategy="llm")) as handle:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                handle.v1 + "/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "hello there"}]},
            ) as response,
        ):
            assert response.status == 200
            assert response.headers["x-octoroute-strategy"] == "rule"
            assert response.headers["x-octoroute-tier"] == "fast"
        balanced = handle.runtime.fleet.by_name("sim-balanced")[0]
        # Transport failures of the router model do count against its endpoint's health.
        assert balanced.consecutive_failures >= 1


async def test_a_slow_router_model_is_cut_at_its_router_timeout(fleet: SimulatedFleet) -> None:
    fleet.balanced[0].behaviour.latency = 10.0
    config = config_for(
        fleet, strategy="hybrid", extra="[routing.router_timeouts]\nbalanced = 0.5\n"
    )
    async with (
        running_router(config) as handle,
        aiohttp.ClientSession() as session,
        session.post(handle.url + "/route", json=AMBIGUOUS) as response,
    ):
        assert response.status == 200
        decision = await response.json()
    assert decision["strategy"] == "rule"
    assert decision["fallback"] == "timeout"
    # One attempt (a single router endpoint) bounded by 0.5 s, not the 10 s it would take.
    assert 450 <= decision["routing_ms"] < 2500

"""The learned strategy over real sockets: confidence in ``/route`` and in the response headers of
every dialect, and ``hybrid`` asking the router model only below ``confidence_threshold``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx
import openai
import pytest

from octoroute.simulator import HttpError, SimulatedFleet, SimulatedModel
from tests.harness import RouterHandle, config_for, running_router
from tests.integration.test_routing_strategies import routing_prompts
from tests.learned_models import SURE_FAST, UNSURE, model_data, write_model

SMALL_TALK = [{"role": "user", "content": "thanks, that's all for today!"}]


@pytest.fixture
async def learned(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    async with running_router(config_for(fleet, strategy="learned")) as handle:
        yield handle


async def dry_run(handle: RouterHandle, messages: object, **headers: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            handle.url + "/route", json={"model": "auto", "messages": messages}, headers=headers
        ) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, object] = await response.json()
        return body


async def test_route_shows_the_learned_decision_and_its_confidence(learned: RouterHandle) -> None:
    decision = await dry_run(learned, SMALL_TALK)
    assert (decision["tier"], decision["strategy"], decision["reason"]) == (
        "fast",
        "learned",
        "learned",
    )
    confidence = decision["confidence"]
    assert isinstance(confidence, float)
    assert 0.5 < confidence <= 1.0
    raised = await dry_run(learned, SMALL_TALK, **{"x-octoroute-importance": "high"})
    assert raised["tier"] == "fast"  # small talk stays on fast at any importance


OFFER_THREAD = [
    {"role": "user", "content": "Is the sum of two odd squares ever a perfect square?"},
    {
        "role": "assistant",
        "content": "No: an odd square is 1 mod 4, so the sum is 2 mod 4, which no square is.\n\n"
        "Shall I write the complete formal proof, with the generalisation to three odd squares?",
    },
]


async def test_a_yes_to_an_offer_is_routed_as_the_offered_work(learned: RouterHandle) -> None:
    accepted = await dry_run(learned, [*OFFER_THREAD, {"role": "user", "content": "sí, dale"}])
    assert accepted["tier"] == "deep"
    assert "accepts_offer" in accepted["signals"]  # type: ignore[operator]
    explained = accepted["explanation"]
    assert isinstance(explained, dict)
    assert "(accepts_offer)" in explained["summary"]
    alone = await dry_run(learned, [{"role": "user", "content": "sí, dale"}])
    assert alone["tier"] == "fast"
    assert "accepts_offer" not in alone["signals"]  # type: ignore[operator]


async def test_rule_decisions_have_no_confidence(router: RouterHandle) -> None:
    decision = await dry_run(router, SMALL_TALK)
    assert (decision["strategy"], decision["confidence"]) == ("rule", None)


async def test_the_confidence_header_matches_the_dry_run(
    learned: RouterHandle, fleet: SimulatedFleet
) -> None:
    decision = await dry_run(learned, SMALL_TALK)
    client = openai.AsyncOpenAI(base_url=learned.v1, api_key="unused", max_retries=0)
    reply = await client.chat.completions.with_raw_response.create(
        model="auto",
        messages=SMALL_TALK,  # type: ignore[arg-type]
    )
    assert reply.headers["x-octoroute-strategy"] == "learned"
    assert reply.headers["x-octoroute-reason"] == "learned"
    assert reply.headers["x-octoroute-confidence"] == f"{decision['confidence']:.3f}"
    assert reply.parse().model in {model.name for model in fleet.fast}
    direct = await client.chat.completions.with_raw_response.create(
        model="deep",
        messages=SMALL_TALK,  # type: ignore[arg-type]
    )
    assert "x-octoroute-confidence" not in direct.headers
    await client.close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": "auto", "max_tokens": 50, "messages": SMALL_TALK}),
        ("/api/chat", {"model": "auto", "stream": False, "messages": SMALL_TALK}),
        ("/v1/responses", {"model": "auto", "input": SMALL_TALK[0]["content"]}),
        ("/chat", {"message": SMALL_TALK[0]["content"]}),
    ],
)
async def test_every_dialect_carries_the_confidence_header(
    learned: RouterHandle, path: str, body: dict[str, object]
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(learned.url + path, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-octoroute-strategy"] == "learned"
    assert 0.5 < float(response.headers["x-octoroute-confidence"]) <= 1.0


async def test_rule_answers_carry_no_confidence_header(router: RouterHandle) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            router.v1 + "/chat/completions", json={"model": "auto", "messages": SMALL_TALK}
        )
    assert response.status_code == 200
    assert "x-octoroute-confidence" not in response.headers


# --- hybrid -----------------------------------------------------------------------------------


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> Path:
    """A model sure of "hello" (fast) and unsure of "printing" (confidence about 0.3)."""
    return write_model(
        tmp_path / "tiny.json.gz", model_data(words={"hello": SURE_FAST, "printing": UNSURE})
    )


async def send(handle: RouterHandle, text: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            handle.v1 + "/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": text}]},
        )
    assert response.status_code == 200, response.text
    return response


async def test_hybrid_asks_the_router_model_only_below_the_threshold(
    fleet: SimulatedFleet, tiny_model_file: Path
) -> None:
    router_model: SimulatedModel = fleet.balanced[0]
    router_model.behaviour.router_answer = "DEEP"
    config = config_for(
        fleet,
        strategy="hybrid",
        routing={"model_file": str(tiny_model_file), "confidence_threshold": 0.6},
    )
    async with running_router(config) as handle:
        sure = await send(handle, "hello")
        assert routing_prompts(router_model) == 0
        assert sure.headers["x-octoroute-strategy"] == "learned"
        assert float(sure.headers["x-octoroute-confidence"]) >= 0.6
        assert sure.headers["x-octoroute-tier"] == "fast"

        unsure = await send(handle, "printing")
        assert routing_prompts(router_model) == 1
        assert unsure.headers["x-octoroute-strategy"] == "llm"
        assert unsure.headers["x-octoroute-tier"] == "deep"
        assert "x-octoroute-confidence" not in unsure.headers


async def test_hybrid_threshold_zero_never_asks_and_one_always_asks(
    fleet: SimulatedFleet, tiny_model_file: Path
) -> None:
    router_model = fleet.balanced[0]
    for threshold, asked in ((0.0, 0), (1.0, 2)):
        before = routing_prompts(router_model)
        config = config_for(
            fleet,
            strategy="hybrid",
            routing={"model_file": str(tiny_model_file), "confidence_threshold": threshold},
        )
        async with running_router(config) as handle:
            await send(handle, "hello")
            await send(handle, "printing")
        assert routing_prompts(router_model) - before == asked


async def test_hybrid_keeps_the_learned_decision_when_the_router_model_fails(
    fleet: SimulatedFleet, tiny_model_file: Path
) -> None:
    fleet.balanced[0].behaviour.fault = HttpError(500)
    config = config_for(fleet, strategy="hybrid", routing={"model_file": str(tiny_model_file)})
    async with running_router(config) as handle, httpx.AsyncClient() as client:
        response = await send(handle, "printing")
        metrics = (await client.get(handle.url + "/metrics")).text
    assert response.headers["x-octoroute-strategy"] == "learned"
    assert float(response.headers["x-octoroute-confidence"]) < 0.6
    assert 'octoroute_routing_fallbacks_total{reason="transport"} 1.0' in metrics
    assert 'strategy="learned"' in metrics

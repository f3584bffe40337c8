"""Placement as clients see it, over real sockets with the official SDKs: context windows (skip,
escalate, 400 in each dialect's shape), conversation affinity and its fail-over, and streaming
failover with slots, affinity and overflow all on."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anthropic
import ollama
import openai
import orjson
import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from octoroute.enums import Tier
from tests.gated import GatedModel, gated
from tests.harness import RouterHandle, wait_until
from tests.integration.test_placement import Tiers, metrics, post, router_for, sample

LONG = "hi " + "and so on " * 3000
"""About 7 500 tokens by the router's estimate: routed to the default tier (fast here)."""
HUGE = "and so on " * 16000
"""About 40 000 tokens: more than any window below."""
WINDOWS = "context_window = 4096", "context_window = 32768", "context_window = 4096"


def windowed(small: GatedModel, large: GatedModel, top: GatedModel) -> Tiers:
    fast, balanced, deep = WINDOWS
    return {"fast": [(small, fast)], "balanced": [(large, balanced)], "deep": [(top, deep)]}


def sdk(router: RouterHandle) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0)


# --- context windows ------------------------------------------------------------------------------


async def test_a_routed_chat_too_long_for_its_tier_goes_to_the_nearest_tier_up_that_fits(
    session: aiohttp.ClientSession,
) -> None:
    async with (
        gated("small", "large", "top") as (small, large, top),
        router_for(windowed(small, large, top)) as router,
    ):
        async with session.post(
            router.url + "/route",
            json={"model": "auto", "messages": [{"role": "user", "content": LONG}]},
        ) as response:
            dry = orjson.loads(await response.read())
        async with sdk(router) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": LONG}]
            )
            streamed = await client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": LONG}], stream=True
            )
            pieces = [chunk async for chunk in streamed]

        assert raw.headers["x-octoroute-tier"] == "balanced"
        assert raw.headers["x-octoroute-reason"] == "context_overflow"
        assert raw.parse().choices[0].message.content == "large answers"
        assert (dry["tier"], dry["reason"]) == ("balanced", "context_overflow")
        assert "".join(p.choices[0].delta.content or "" for p in pieces if p.choices)
        assert len(large.chats) == 2
        assert small.chats == []
        text = await metrics(session, router)
        escalated = 'octoroute_context_escalations_total{from_tier="fast",to_tier="balanced"}'
        assert sample(text, escalated) == 2, "the /route dry run is not counted"


async def test_an_instance_too_small_is_skipped_within_a_named_tier(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("small", "roomy", "large", "top") as (small, roomy, large, top):
        tiers: Tiers = {
            "fast": [(small, "context_window = 4096"), (roomy, "context_window = 65536")],
            "balanced": [(large, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers) as router:
            for _ in range(4):
                status, headers, _ = await post(
                    session,
                    router,
                    {"model": "fast", "messages": [{"role": "user", "content": LONG}]},
                )
                assert status == 200
                assert headers["x-octoroute-reason"] == "explicit_tier"

            assert (len(small.chats), len(roomy.chats)) == (0, 4)


async def test_a_named_tier_that_cannot_hold_the_request_is_a_400_before_any_upstream_call() -> (
    None
):
    async with gated("small", "large", "top") as (small, large, top):
        async with router_for(windowed(small, large, top)) as router, sdk(router) as client:
            with pytest.raises(openai.BadRequestError) as named:
                await client.chat.completions.create(
                    model="fast", messages=[{"role": "user", "content": LONG}]
                )
            with pytest.raises(openai.BadRequestError) as routed:
                await client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": HUGE}]
                )

        for caught in (named, routed):
            assert caught.value.status_code == 400
            assert caught.value.code == "context_length_exceeded"
            body = caught.value.body
            assert isinstance(body, dict)
            assert body["param"] == "messages"
            assert "tokens" in body["message"]
        assert "tier 'fast'" in str(named.value)
        assert "or any tier above it" in str(routed.value)
        assert "32768" in str(routed.value), "the largest window is named"
        assert small.chats == large.chats == top.chats == []


async def test_the_output_the_client_asks_for_counts_against_the_window() -> None:
    async with gated("small", "large", "top") as (small, large, top):
        async with router_for(windowed(small, large, top)) as router, sdk(router) as client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.chat.completions.create(
                    model="fast",
                    messages=[{"role": "user", "content": "short question"}],
                    max_completion_tokens=5000,
                )
            fits = await client.chat.completions.create(
                model="fast",
                messages=[{"role": "user", "content": "short question"}],
                max_completion_tokens=1000,
            )

        assert caught.value.code == "context_length_exceeded"
        assert fits.choices[0].message.content == "small answers"


async def test_messages_escalate_and_refuse_in_anthropics_error_shape() -> None:
    async with gated("small", "large", "top") as (small, large, top):
        async with router_for(windowed(small, large, top)) as router:
            client = AsyncAnthropic(base_url=router.url, api_key="x", max_retries=0)
            try:
                raw = await client.messages.with_raw_response.create(
                    model="auto", max_tokens=100, messages=[{"role": "user", "content": LONG}]
                )
                with pytest.raises(anthropic.BadRequestError) as caught:
                    await client.messages.create(
                        model="fast", max_tokens=100, messages=[{"role": "user", "content": LONG}]
                    )
            finally:
                await client.close()

        assert raw.headers["x-octoroute-reason"] == "context_overflow"
        assert (await raw.parse()).content[0].type == "text"
        assert len(large.chats) == 1
        assert caught.value.status_code == 400
        body = caught.value.body
        assert isinstance(body, dict)
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert "tokens of context" in body["error"]["message"]
        assert small.chats == []


async def test_ollama_escalates_counts_num_predict_and_refuses_in_its_error_shape() -> None:
    async with gated("small", "large", "top") as (small, large, top):
        async with (
            router_for(windowed(small, large, top)) as router,
            ollama.AsyncClient(host=router.url) as client,
        ):
            routed = await client.chat(
                model="auto", messages=[{"role": "user", "content": LONG}], stream=False
            )
            with pytest.raises(ollama.ResponseError) as too_long:
                await client.chat(model="fast", messages=[{"role": "user", "content": LONG}])
            with pytest.raises(ollama.ResponseError) as too_much_output:
                await client.generate(
                    model="fast", prompt="short question", options={"num_predict": 5000}
                )
            fits = await client.generate(
                model="fast", prompt="short question", options={"num_predict": 1000}
            )

        assert routed.message.content == "large answers"
        assert len(large.chats) == 1
        for caught in (too_long, too_much_output):
            assert caught.value.status_code == 400
            assert "tokens of context" in caught.value.error
        assert fits.response == "small answers"
        assert len(small.chats) == 1


# --- conversation affinity ------------------------------------------------------------------------


@asynccontextmanager
async def replicated() -> AsyncIterator[tuple[list[GatedModel], RouterHandle]]:
    """A router whose fast tier is three replicas ``r0``..``r2`` (and a balanced and a deep
    server): the replicas and the router."""
    async with gated("r0", "r1", "r2", "up", "top") as (*replicas, up, top):
        tiers: Tiers = {
            "fast": [(replica, "") for replica in replicas],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers) as router:
            yield replicas, router


def conversation(turns: int, opener: str = "What is a monad?") -> list[Any]:
    messages: list[Any] = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": opener},
    ]
    for number in range(turns - 1):
        messages += [
            {"role": "assistant", "content": f"answer {number}"},
            {"role": "user", "content": f"follow-up {number}"},
        ]
    return messages


async def test_a_conversation_stays_on_one_replica_and_others_spread(
    session: aiohttp.ClientSession,
) -> None:
    async with replicated() as (_replicas, router):
        served: dict[str, set[str]] = {}
        for session_id in (f"s-{n}" for n in range(12)):
            for _ in range(3):
                _, headers, _ = await post(
                    session,
                    router,
                    {"model": "fast", "messages": conversation(1)},
                    {"x-session-id": session_id},
                )
                served.setdefault(session_id, set()).add(headers["x-octoroute-endpoint"])
        by_history = set()
        for turns in (2, 3, 4):
            _, headers, _ = await post(
                session, router, {"model": "fast", "messages": conversation(turns)}
            )
            by_history.add(headers["x-octoroute-endpoint"])

        assert all(len(replicas_used) == 1 for replicas_used in served.values())
        assert len(set().union(*served.values())) >= 2, "conversations spread over replicas"
        assert len(by_history) == 1, "turns 2-4 of one conversation share a replica"
        text = await metrics(session, router)
        assert sample(text, 'octoroute_affinity_total{result="hit"}') == 39
        assert sample(text, 'octoroute_affinity_total{result="moved"}') == 0


async def test_identical_first_turns_without_a_key_spread_by_load(
    session: aiohttp.ClientSession,
) -> None:
    async with replicated() as (replicas, router):
        for replica in replicas:
            replica.hold = True
        tasks = [
            asyncio.create_task(
                post(session, router, {"model": "fast", "messages": conversation(1)})
            )
            for _ in range(6)
        ]
        await wait_until(lambda: sum(r.held for r in replicas) == 6, what="six held")

        assert [r.held for r in replicas] == [2, 2, 2], "least outstanding, no affinity"
        for replica in replicas:
            replica.open()
        for task in tasks:
            assert (await task)[0] == 200
        text = await metrics(session, router)
        assert sample(text, 'octoroute_affinity_total{result="none"}') == 6


async def test_when_its_replica_goes_down_a_conversation_moves_to_the_next_and_stays(
    session: aiohttp.ClientSession,
) -> None:
    async with replicated() as (replicas, router):
        key = {"x-session-id": "long-chat"}
        body = {"model": "fast", "messages": conversation(1)}
        _, headers, _ = await post(session, router, body, key)
        home = next(r for r in replicas if r.name == headers["x-octoroute-endpoint"])

        await home.stop()
        moved: Counter[str] = Counter()
        for _ in range(5):
            status, headers, _ = await post(session, router, body, key)
            assert status == 200
            moved[headers["x-octoroute-endpoint"]] += 1

        assert len(moved) == 1, f"the conversation stayed on one new replica: {moved}"
        assert home.name not in moved
        text = await metrics(session, router)
        assert sample(text, 'octoroute_affinity_total{result="moved"}') >= 5
        home_endpoint = router.runtime.fleet.by_name(home.name)[0]
        assert home_endpoint.ejected or not home_endpoint.healthy


# --- streaming failover with everything on --------------------------------------------------------


async def test_streaming_failover_still_works_with_slots_affinity_overflow_and_prewarm(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("r0", "r1", "up", "top") as (r0, r1, up, top):
        keys = 'max_concurrent = 2\ncontext_window = 65536\nkind = "ollama"'
        tiers: Tiers = {
            "fast": [(r0, keys), (r1, keys)],
            "balanced": [(up, keys)],
            "deep": [(top, keys)],
        }
        routing = 'overflow = "up"\noverflow_after_ms = 0\nprewarm = true'
        async with router_for(tiers, routing=routing) as router, sdk(router) as client:
            key = {"x-session-id": "streamed"}
            first = await client.chat.completions.with_raw_response.create(
                model="fast", messages=conversation(2), extra_headers=key
            )
            home_name = first.headers["x-octoroute-endpoint"]
            home, other = (r0, r1) if home_name == "r0" else (r1, r0)

            home.fail_before_first_byte = 1
            stream = await client.chat.completions.create(
                model="fast", messages=conversation(2), stream=True, extra_headers=key
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

            assert text == f"{other.name} answers"
            assert len(home.chats) == 2, "the first attempt went to the conversation's replica"

            other.fail_mid_stream = 1
            home.fail_before_first_byte = 1
            broken = await client.chat.completions.create(
                model="fast", messages=conversation(2), stream=True, extra_headers=key
            )
            with pytest.raises(openai.APIError):
                async for _ in broken:
                    pass

            fleet = router.runtime.fleet
            await wait_until(
                lambda: all(ep.in_flight == 0 for ep in fleet.tiers[Tier.FAST]),
                what="every slot back after failover and a broken stream",
            )
            assert router.runtime.dispatcher.depth(fleet.tiers[Tier.FAST][0].pool) == 0

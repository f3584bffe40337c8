"""Placement through the running router, over real sockets: least outstanding, slots and the
queue, overflow up, warm before cold, pre-warming, and what /models, /health and /metrics say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from octoroute.config import Config, parse_config
from octoroute.enums import Kind, Pool
from octoroute.fleet.facts import InstanceFacts
from tests.gated import GatedModel, gated, wait_held
from tests.harness import RouterHandle, first_probe_round, running_router, wait_until

Tiers = dict[str, Sequence[tuple[GatedModel, str]]]
"""Per tier, each fake server with the extra TOML lines of its endpoint table."""


def placement_config(
    tiers: Tiers,
    *,
    embeddings: Sequence[tuple[GatedModel, str]] = (),
    strategy: str = "rule",
    server: str = "",
    routing: str = "",
    health: str = "",
    limits: str = "",
    timeouts: str = "",
) -> Config:
    """A router in front of fake servers: ``default_tier = "fast"``, probes once at start-up
    only (so facts a test sets stay set); the strings are extra lines of their sections."""
    lines = ["[server]", 'host = "127.0.0.1"', "port = 0", server]
    for tier in ("fast", "balanced", "deep"):
        for model, keys in tiers[tier]:
            lines += [
                f"[[models.{tier}]]",
                f'name = "{model.name}"',
                f'base_url = "{model.base_url}"',
                "max_tokens = 64",
                keys,
            ]
    for model, keys in embeddings:
        lines += ["[[embeddings]]", f'name = "{model.name}"', f'base_url = "{model.base_url}"']
        lines.append(keys)
    lines += ["[routing]", f'strategy = "{strategy}"', 'default_tier = "fast"', routing]
    lines += ["[health]", "interval_seconds = 600", health]
    lines += ["[limits]", limits, "[timeouts]", timeouts]
    return parse_config("\n".join(lines) + "\n")


@asynccontextmanager
async def router_for(tiers: Tiers, **options: Any) -> AsyncIterator[RouterHandle]:
    """A running router for :func:`placement_config` ``(tiers, **options)``, probed once."""
    async with running_router(placement_config(tiers, **options)) as router:
        await first_probe_round(router)
        yield router


@asynccontextmanager
async def single_slot(**options: str) -> AsyncIterator[tuple[GatedModel, GatedModel, RouterHandle]]:
    """A router whose fast tier is one server with one slot (``max_concurrent = 1``), in front of
    a balanced and a deep server: the fast and balanced fakes, and the router."""
    async with gated("small", "up", "top") as (fast, up, top):
        tiers: Tiers = {
            "fast": [(fast, "max_concurrent = 1")],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers, **options) as router:
            yield fast, up, router


def chat(text: str = "hi", **fields: object) -> dict[str, object]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **fields}


async def post(
    session: aiohttp.ClientSession,
    router: RouterHandle,
    body: Mapping[str, object],
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], dict[str, object]]:
    async with session.post(
        router.v1 + "/chat/completions", json=body, headers=headers or {}
    ) as response:
        return response.status, dict(response.headers), orjson.loads(await response.read())


Answer = asyncio.Task[tuple[int, dict[str, str], dict[str, object]]]
"""A request under way: its status, headers and JSON body once answered."""


def spawn(
    session: aiohttp.ClientSession,
    router: RouterHandle,
    body: Mapping[str, object],
    headers: dict[str, str] | None = None,
) -> Answer:
    return asyncio.create_task(post(session, router, body, headers))


async def metrics(session: aiohttp.ClientSession, router: RouterHandle) -> str:
    async with session.get(router.url + "/metrics") as response:
        return await response.text()


def sample(text: str, line_start: str) -> float:
    """The value of the first exposition line starting with ``line_start``."""
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start!r}")


def queued(router: RouterHandle, pool: Pool = Pool.FAST) -> int:
    return router.runtime.dispatcher.depth(pool)


# --- least outstanding ----------------------------------------------------------------------------


async def test_a_request_goes_to_the_replica_with_fewer_requests_in_flight(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("a", "b", "up", "top") as (a, b, up, top):
        tiers: Tiers = {"fast": [(a, ""), (b, "")], "balanced": [(up, "")], "deep": [(top, "")]}
        async with router_for(tiers) as router:
            a.hold = b.hold = True
            first = spawn(session, router, chat())
            await wait_until(lambda: a.held + b.held == 1, what="the first request held")
            busy, idle = (a, b) if a.held else (b, a)

            second = spawn(session, router, chat())
            await wait_held(idle, 1)
            assert busy.held == 1, "the second request went to the idle replica"
            a.open()
            b.open()
            assert [(await first)[0], (await second)[0]] == [200, 200]


# --- slots and the queue --------------------------------------------------------------------------


async def test_past_max_concurrent_a_request_waits_and_is_served_when_a_slot_frees(
    session: aiohttp.ClientSession,
) -> None:
    async with single_slot() as (fast, _up, router):
        fast.hold = True
        first = spawn(session, router, chat("one"))
        await wait_held(fast, 1)
        second = spawn(session, router, chat("two"))
        await wait_until(lambda: queued(router) == 1, what="the second request to queue")
        async with session.get(router.url + "/health") as response:
            health = orjson.loads(await response.read())
        assert health["placement"]["fast"]["queue"] == 1
        assert health["placement"]["fast"]["instances"][0]["in_flight"] == 1
        assert fast.held == 1, "the upstream never saw the second request early"

        fast.release()
        await wait_held(fast, 1)
        fast.open()
        statuses = [(await first)[0], (await second)[0]]

        assert statuses == [200, 200]
        assert [seen.text for seen in fast.chats] == ["one", "two"]
        assert fast.peak == 1
        text = await metrics(session, router)
        assert sample(text, 'octoroute_queue_wait_seconds_count{tier="fast"}') == 1
        assert sample(text, 'octoroute_queue_depth{tier="fast"}') == 0
        assert sample(text, 'octoroute_inflight{endpoint="small"') == 0


async def test_the_queue_serves_high_importance_first_then_in_arrival_order(
    session: aiohttp.ClientSession,
) -> None:
    async with single_slot() as (fast, _up, router):
        fast.hold = True
        tasks = [spawn(session, router, chat("blocker"))]
        await wait_held(fast, 1)
        for text, importance in (
            ("n1", "normal"),
            ("low", "low"),
            ("h1", "high"),
            ("n2", None),
        ):
            headers = {} if importance is None else {"x-octoroute-importance": importance}
            # A named tier: routing would send a high-importance "auto" request up a tier.
            tasks.append(spawn(session, router, {**chat(text), "model": "fast"}, headers))
            count = len(tasks) - 1
            await wait_until(lambda: queued(router) == count, what="queueing")  # noqa: B023
        for _ in range(len(tasks)):
            await wait_held(fast, 1)
            fast.release()
        results = await asyncio.gather(*tasks)

        assert [status for status, _, _ in results] == [200] * 5
        assert [seen.text for seen in fast.chats] == ["blocker", "h1", "n1", "low", "n2"]


async def test_a_request_that_waits_out_the_queue_timeout_gets_503_fleet_busy_with_retry_after(
    session: aiohttp.ClientSession,
) -> None:
    async with single_slot(limits="queue_timeout_seconds = 0.2") as (fast, _up, router):
        fast.hold = True
        first = spawn(session, router, chat())
        await wait_held(fast, 1)

        status, headers, body = await post(session, router, chat())

        assert status == 503
        assert headers["Retry-After"] == "1"
        error = body["error"]
        assert isinstance(error, dict)
        assert error["code"] == "fleet_busy"
        assert "queue_timeout_seconds" in error["message"]
        assert queued(router) == 0
        assert len(fast.chats) == 1, "the refused request never reached the upstream"
        text = await metrics(session, router)
        refused = 'octoroute_fleet_busy_total{reason="queue_timeout",tier="fast"}'
        assert sample(text, refused) == 1
        fast.open()
        assert (await first)[0] == 200


async def test_a_full_queue_answers_503_at_once(session: aiohttp.ClientSession) -> None:
    async with single_slot(limits="max_queue = 1") as (fast, _up, router):
        fast.hold = True
        first = spawn(session, router, chat())
        await wait_held(fast, 1)
        second = spawn(session, router, chat())
        await wait_until(lambda: queued(router) == 1, what="one waiting")

        status, headers, body = await post(session, router, chat())

        assert status == 503
        assert headers["Retry-After"] == "1"
        assert "limits.max_queue = 1" in str(body)
        text = await metrics(session, router)
        assert sample(text, 'octoroute_fleet_busy_total{reason="queue_full",tier="fast"}') == 1
        fast.open()
        assert [(await first)[0], (await second)[0]] == [200, 200]


async def test_a_client_that_disconnects_while_queued_leaves_the_queue_and_holds_no_slot(
    session: aiohttp.ClientSession,
) -> None:
    async with single_slot() as (fast, _up, router):
        fast.hold = True
        first = spawn(session, router, chat("first"))
        await wait_held(fast, 1)
        async with aiohttp.ClientSession() as leaving:
            gone = spawn(leaving, router, chat("gone"))
            await wait_until(lambda: queued(router) == 1, what="the request to queue")
            gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        await wait_until(lambda: queued(router) == 0, what="the request to leave the queue")

        fast.release()
        assert (await first)[0] == 200
        fast.open()
        status, _, _ = await post(session, router, chat("after"))

        assert status == 200
        assert [seen.text for seen in fast.chats] == ["first", "after"]
        endpoint = router.runtime.fleet.by_name("small")[0]
        await wait_until(lambda: endpoint.in_flight == 0, what="every slot back")


async def test_a_client_that_leaves_while_its_answer_is_under_way_frees_the_slot(
    session: aiohttp.ClientSession,
) -> None:
    async with single_slot() as (fast, _up, router):
        fast.hold = True
        async with aiohttp.ClientSession() as leaving:
            gone = spawn(leaving, router, chat("gone", stream=True))
            await wait_held(fast, 1)
            gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        await wait_until(lambda: fast.cancelled == 1, what="the upstream request to be dropped")
        endpoint = router.runtime.fleet.by_name("small")[0]
        await wait_until(lambda: endpoint.in_flight == 0, what="the slot back")

        fast.open()
        status, _, _ = await post(session, router, chat("next"))

        assert status == 200
        assert fast.peak == 1


async def test_an_attempt_that_fails_frees_its_slot(session: aiohttp.ClientSession) -> None:
    async with single_slot() as (fast, _up, router):
        fast.fail_before_first_byte = 1

        failed, _, body = await post(session, router, {**chat(), "model": "fast"})
        status, _, _ = await post(session, router, {**chat(), "model": "fast"})

        assert failed == 502, body
        assert status == 200
        assert router.runtime.fleet.by_name("small")[0].in_flight == 0


# --- overflow up ----------------------------------------------------------------------------------


async def test_a_routed_request_waiting_too_long_goes_one_tier_up_and_says_so(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("small", "up", "top") as (fast, up, top):
        tiers: Tiers = {
            "fast": [(fast, "max_concurrent = 1")],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        routing = 'overflow = "up"\noverflow_after_ms = 50'
        async with router_for(tiers, routing=routing) as router:
            fast.hold = True
            first = spawn(session, router, chat())
            await wait_held(fast, 1)

            status, headers, _ = await post(session, router, chat())
            explicit = spawn(session, router, {**chat(), "model": "fast"})
            await wait_until(lambda: queued(router) == 1, what="the explicit request to wait")

            assert status == 200
            assert headers["x-octoroute-tier"] == "balanced"
            assert headers["x-octoroute-reason"] == "queue_overflow"
            assert len(up.chats) == 1
            fast.open()
            assert (await first)[0] == 200
            explicit_status, explicit_headers, _ = await explicit
            assert explicit_status == 200
            assert explicit_headers["x-octoroute-tier"] == "fast", "a named tier never moves"


async def test_without_overflow_a_routed_request_waits_for_its_own_tier(
    session: aiohttp.ClientSession,
) -> None:
    async with single_slot() as (fast, up, router):
        fast.hold = True
        first = spawn(session, router, chat())
        await wait_held(fast, 1)
        second = spawn(session, router, chat())
        await wait_until(lambda: queued(router) == 1, what="waiting")
        fast.open()

        _, headers, _ = await second
        assert (await first)[0] == 200
        assert headers["x-octoroute-tier"] == "fast"
        assert up.chats == []


# --- warm before cold -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [kind.value for kind in Kind])
async def test_a_warm_instance_is_preferred_and_a_cold_one_serves_when_no_warm_one_is_free(
    session: aiohttp.ClientSession, kind: str
) -> None:
    # The facts are set as the prober of any kind reports them (its readers are tested apart).
    # cold_after_ms = 0: no waiting for the warm slot first (see the tests below).
    keys = f'max_concurrent = 1\nkind = "{kind}"'
    async with gated("cold", "warm", "up", "top") as (cold, warm, up, top):
        tiers: Tiers = {
            "fast": [(cold, keys), (warm, keys)],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers, routing="cold_after_ms = 0") as router:
            cold_endpoint = router.runtime.fleet.by_name("cold")[0]
            cold_endpoint.observe(InstanceFacts(loaded=False))
            router.runtime.fleet.by_name("warm")[0].observe(InstanceFacts(loaded=True))

            for _ in range(4):
                assert (await post(session, router, chat()))[0] == 200
            assert (len(cold.chats), len(warm.chats)) == (0, 4)

            warm.hold = True
            held = spawn(session, router, chat())
            await wait_held(warm, 1)
            status, _headers, _ = await post(session, router, chat())
            warm.open()
            assert (await held)[0] == 200

            assert status == 200
            assert len(cold.chats) == 1, "the cold instance served once no warm one was free"
            assert not cold_endpoint.cold, "it answered: warm from now on"
            text = await metrics(session, router)
            assert sample(text, 'octoroute_cold_starts_total{endpoint="cold"') == 1
            assert sample(text, 'octoroute_cold_start_seconds_count{endpoint="cold"') == 1
            assert sample(text, 'octoroute_cold_starts_total{endpoint="warm"') == 0


@asynccontextmanager
async def warm_and_cold(
    session: aiohttp.ClientSession, cold_after_ms: int
) -> AsyncIterator[tuple[GatedModel, GatedModel, RouterHandle, Answer]]:
    """A fast tier of a warm and a cold server with one slot each (Ollama kind, facts set as
    its prober reports them), the warm one's slot taken by a held request: the two servers,
    the router, and that first request."""
    keys = 'max_concurrent = 1\nkind = "ollama"'
    async with gated("cold", "warm", "up", "top") as (cold, warm, up, top):
        tiers: Tiers = {
            "fast": [(cold, keys), (warm, keys)],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers, routing=f"cold_after_ms = {cold_after_ms}") as router:
            router.runtime.fleet.by_name("cold")[0].observe(InstanceFacts(loaded=False))
            router.runtime.fleet.by_name("warm")[0].observe(InstanceFacts(loaded=True))
            warm.hold = True
            first = spawn(session, router, chat())
            await wait_held(warm, 1)
            yield cold, warm, router, first


async def test_a_request_waits_for_the_warm_slot_rather_than_load_the_cold_model(
    session: aiohttp.ClientSession,
) -> None:
    async with warm_and_cold(session, 60_000) as (cold, warm, router, first):
        second = spawn(session, router, chat())
        await wait_until(lambda: queued(router) == 1, what="the second request waiting")

        warm.open()
        results = [await first, await second]

        assert [status for status, _, _ in results] == [200, 200]
        assert len(warm.chats) == 2, "the warm slot served both"
        assert cold.chats == [], "the cold model was never loaded"
        assert router.runtime.fleet.by_name("cold")[0].cold


async def test_a_request_takes_the_cold_instance_after_waiting_cold_after_ms(
    session: aiohttp.ClientSession,
) -> None:
    async with warm_and_cold(session, 300) as (cold, warm, router, first):
        loop = asyncio.get_running_loop()
        started = loop.time()

        status, _headers, _ = await post(session, router, chat())
        waited = loop.time() - started

        assert status == 200
        assert len(cold.chats) == 1, "no slot freed: the timer woke the request for the cold one"
        assert waited >= 0.3, f"it waited for a warm slot first ({waited:.3f} s)"
        assert queued(router) == 0
        warm.open()
        assert (await first)[0] == 200


async def test_prewarm_loads_the_cold_preferred_deep_instance_once_without_delaying_requests(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("small", "up", "big-a", "big-b") as (fast, up, big_a, big_b):
        tiers: Tiers = {
            "fast": [(fast, "")],
            "balanced": [(up, "")],
            "deep": [(big_a, 'kind = "ollama"'), (big_b, "")],
        }
        async with router_for(tiers, routing="prewarm = true") as router:
            deep_a = router.runtime.fleet.by_name("big-a")[0]
            deep_a.observe(InstanceFacts(loaded=False))
            big_a.hold = True  # a load that takes its time

            results = [await post(session, router, {**chat(), "model": "deep"}) for _ in range(3)]
            await wait_held(big_a, 1)

            assert [status for status, _, _ in results] == [200, 200, 200]
            assert len(big_b.chats) == 3, "the requests went to the warm instance"
            loads = [s for s in big_a.seen if s.path == "/api/generate"]
            assert len(loads) == 1, "one pre-warm, not one per request"
            assert loads[0].body == {"model": "big-a"}
            assert big_a.chats == []
            assert deep_a.cold, "still loading"
            big_a.open()
            await wait_until(lambda: not deep_a.cold, what="the pre-warm to count it warm")
            text = await metrics(session, router)
            assert sample(text, 'octoroute_cold_starts_total{endpoint="big-a"') == 1


async def test_prewarm_is_off_by_default(session: aiohttp.ClientSession) -> None:
    async with gated("small", "up", "big-a", "big-b") as (fast, up, big_a, big_b):
        tiers: Tiers = {
            "fast": [(fast, "")],
            "balanced": [(up, "")],
            "deep": [(big_a, 'kind = "ollama"'), (big_b, "")],
        }
        async with router_for(tiers) as router:
            router.runtime.fleet.by_name("big-a")[0].observe(InstanceFacts(loaded=False))

            assert (await post(session, router, {**chat(), "model": "deep"}))[0] == 200

            assert not router.runtime.prewarmer.running(router.runtime.fleet.by_name("big-a")[0])
            assert [s.path for s in big_a.seen] == []


# --- what the status endpoints show ---------------------------------------------------------------


async def test_models_shows_slots_queue_warmth_window_and_affinity_share_per_instance(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("small", "up", "top") as (fast, up, top):
        tiers: Tiers = {
            "fast": [(fast, 'kind = "llamacpp"\nmax_concurrent = 3\ncontext_window = 8192')],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers) as router:
            router.runtime.fleet.by_name("up")[0].observe(
                InstanceFacts(loaded=True, context_window=32768, slots_total=4, slots_idle=3)
            )
            key = {"x-session-id": "conversation-1"}
            for headers in (key, key, None):
                assert (await post(session, router, chat(), headers))[0] == 200
            async with session.get(router.url + "/models") as response:
                entries = {e["name"]: e for e in orjson.loads(await response.read())["models"]}

            first = entries["small"]
            assert first["kind"] == "llamacpp"
            assert first["max_concurrent"] == 3
            assert (first["context_window"], first["context_window_source"]) == (8192, "config")
            assert first["warm"] is None, "unknown"
            assert first["queue"] == 0
            assert first["placed"] == 3
            assert first["affinity_share"] == round(2 / 3, 3)
            balanced = entries["up"]
            assert balanced["context_window_source"] == "discovered"
            assert (balanced["warm"], balanced["slots_total"], balanced["slots_idle"]) == (
                True,
                4,
                3,
            )
            assert balanced["max_concurrent"] is None
            assert balanced["affinity_share"] is None

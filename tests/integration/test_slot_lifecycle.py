"""Every way a request can take a slot gives it back exactly once, over real sockets.

Each test drives the router with real clients in front of fake servers whose answers it
releases one by one (``tests.gated``), walks a request through one way in or out of a slot
(answer, upstream error, failover, disconnect while queued, waiting or streaming, a client that
stops reading, a translator that cannot read an event, timeouts, shutdown), and then checks
what an operator sees: ``/health`` shows no request in flight and no queue, ``/metrics`` agrees.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from octoroute.api.common import RUNTIME
from octoroute.app import create_app
from octoroute.config import Config
from octoroute.enums import Pool
from octoroute.serving import make_runner
from octoroute.simulator import SimulatedFleet, SimulatedModel
from tests.gated import GatedModel, gated, wait_held
from tests.harness import RouterHandle, config_for, first_probe_round, wait_until, within
from tests.integration.test_placement import (
    Tiers,
    chat,
    metrics,
    placement_config,
    post,
    router_for,
    sample,
    spawn,
)

Response = tuple[int, dict[str, str], dict[str, object]]
"""What ``post`` gives: the status, the headers and the decoded body."""


@asynccontextmanager
async def preferred_pair(
    **options: Any,
) -> AsyncIterator[tuple[GatedModel, GatedModel, RouterHandle]]:
    """A fast tier of two one-slot servers, ``small-0`` preferred (priority 2) to ``small-1``
    (priority 1), in front of unlimited balanced and deep ones: the two, and the router."""
    async with gated("small-0", "small-1", "up", "top") as (first, second, up, top):
        tiers: Tiers = {
            "fast": [
                (first, "max_concurrent = 1\npriority = 2"),
                (second, "max_concurrent = 1\npriority = 1"),
            ],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers, **options) as router:
            yield first, second, router


@asynccontextmanager
async def one_slot(
    *, replicas: int = 1, **options: Any
) -> AsyncIterator[tuple[list[GatedModel], GatedModel, RouterHandle]]:
    """A fast tier of ``replicas`` servers with one slot each (names ``small-0``, ...), in front
    of an unlimited balanced and deep server: the fast fakes, the balanced one, the router."""
    names = [f"small-{i}" for i in range(replicas)]
    async with gated(*names, "up", "top") as models:
        *fast, up, top = models
        tiers: Tiers = {
            "fast": [(model, "max_concurrent = 1") for model in fast],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers, **options) as router:
            yield fast, up, router


async def health(session: aiohttp.ClientSession, router: RouterHandle) -> dict[str, object]:
    async with session.get(router.url + "/health") as response:
        body: dict[str, object] = orjson.loads(await response.read())
        return body


def busy_places(view: Mapping[str, object]) -> list[str]:
    """What ``/health``'s ``placement`` shows waiting or in flight anywhere."""
    placement = view["placement"]
    assert isinstance(placement, dict)
    found = []
    for tier, state in placement.items():
        if state["queue"]:
            found.append(f"{tier} queue {state['queue']}")
        for instance in state["instances"]:
            if instance["in_flight"]:
                found.append(f"{instance['id']} in flight {instance['in_flight']}")
    return found


def busy_samples(text: str) -> list[str]:
    """The ``octoroute_inflight`` and ``octoroute_queue_depth`` samples that are not zero."""
    return [
        line
        for line in text.splitlines()
        if line.startswith(("octoroute_inflight{", "octoroute_queue_depth{"))
        and float(line.rsplit(" ", 1)[1]) != 0
    ]


async def assert_settled(session: aiohttp.ClientSession, router: RouterHandle) -> None:
    """Until nothing is in flight or waiting, as ``/health`` and ``/metrics`` tell it."""
    last: list[str] = []

    async def quiet() -> bool:
        nonlocal last
        last = busy_places(await health(session, router)) + busy_samples(
            await metrics(session, router)
        )
        return not last

    deadline = asyncio.get_running_loop().time() + 5
    while not await quiet():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"slots or queue not back to zero: {last}")
        await asyncio.sleep(0.01)


def queued(router: RouterHandle, pool: str = "fast") -> int:
    """Requests waiting for a slot of ``pool`` (a synchronisation point, read in-process)."""
    return router.runtime.dispatcher.depth(Pool(pool))


async def hold_the_slot(
    session: aiohttp.ClientSession, router: RouterHandle, model: GatedModel
) -> asyncio.Task[Response]:
    """A request (text ``held``) that ``model`` holds until released; ``model`` keeps holding
    the ones after it."""
    model.hold = True
    held = spawn(session, router, fast("held"))
    await wait_held(model, 1)
    return held


def fast(text: str = "hi", **fields: object) -> dict[str, object]:
    """A chat request that names the fast tier (routing never moves it)."""
    return {**chat(text, **fields), "model": "fast"}


# --- waking: an instance that becomes ready again serves the line -------------------------------


async def test_a_waiter_is_served_when_the_retry_after_of_the_busy_instance_runs_out(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot(limits="queue_timeout_seconds = 30") as ([small], _up, router):
        small.hold = True
        small.throttle = 1  # the held request is answered 429, Retry-After: 1
        first = spawn(session, router, fast("first"))
        await wait_held(small, 1)
        second = spawn(session, router, fast("second"))
        await wait_until(lambda: queued(router) == 1, what="the second request to queue")

        small.hold = False
        small.release()
        throttled, headers, _ = await first
        served, _, _ = await within_task(second)

        assert (throttled, headers["Retry-After"]) == (429, "1")
        assert served == 200, "served once the instance was ready again, not at the timeout"
        assert [seen.text for seen in small.chats] == ["first", "second"]
        await assert_settled(session, router)


async def test_a_waiter_is_served_by_the_trial_when_an_ejection_begun_while_it_waited_ends(
    session: aiohttp.ClientSession,
) -> None:
    health_keys = "eject_after_failures = 1\neject_base_seconds = 0.3\neject_max_seconds = 1"
    async with one_slot(health=health_keys) as ([small], _up, router):
        small.hold = True
        small.fail_before_first_byte = 1  # the held request fails: the instance is ejected
        first = spawn(session, router, fast("first"))
        await wait_held(small, 1)
        second = spawn(session, router, fast("second"))
        await wait_until(lambda: queued(router) == 1, what="the second request to queue")

        small.hold = False
        small.release()
        failed, _, _ = await first
        served, _, _ = await within_task(second)

        assert failed == 502
        assert served == 200
        assert not router.runtime.fleet.by_name("small-0")[0].ejected, "the trial re-admitted it"
        await assert_settled(session, router)


# --- streams: a client that stops reading ------------------------------------------------------


@asynccontextmanager
async def stalled_client(
    router: RouterHandle, body: Mapping[str, object], *, limit: int = 1024
) -> AsyncIterator[asyncio.StreamReader]:
    """A client that sends ``body``, reads the response head and then stops reading, with a
    small receive buffer so the router's writes back up quickly; closed after the block."""
    host, port = router.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    payload = orjson.dumps(body)
    writer.write(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        yield reader
    finally:
        writer.transport.abort()


async def test_a_client_that_stops_reading_a_stream_is_dropped_and_its_slot_freed(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot(timeouts="fast = 1") as ([small], _up, router):
        small.stream_padding = 24 * 1024 * 1024  # far more than the socket buffers hold
        async with stalled_client(router, fast(stream=True)):
            await wait_until(lambda: small.active == 1, what="the stream to start")
            # The client reads nothing more: within the tier's timeout the router gives up on
            # it, drops the upstream request and frees the slot, while the client is still there.
            await assert_settled(session, router)
            await wait_until(lambda: small.active == 0, what="the upstream request dropped")
            status, _, _ = await post(session, router, fast("next"))
            assert status == 200


async def test_a_slow_client_that_keeps_reading_gets_its_whole_stream(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot(timeouts="fast = 1") as ([small], _up, router):
        small.stream_padding = 3 * 1024 * 1024
        received = b""
        async with stalled_client(router, fast(stream=True), limit=65536) as reader:
            while not received.endswith(b"0\r\n\r\n"):  # the chunked body's end
                # Bursts of reading, then pauses shorter than the tier's timeout: behind all
                # along, but never silent for that long.
                burst = len(received) + 512 * 1024
                while len(received) < burst and not received.endswith(b"0\r\n\r\n"):
                    piece = await within(reader.read(65536), 5)
                    assert isinstance(piece, bytes)
                    assert piece, "the router closed the stream"
                    received += piece
                await asyncio.sleep(0.5)
        assert b"data: [DONE]" in received[-100:]
        await assert_settled(session, router)


# --- ways out of an attempt -----------------------------------------------------------------------


async def test_failover_gives_back_the_failed_replica_s_slot_before_the_next_one_serves(
    session: aiohttp.ClientSession,
) -> None:
    async with preferred_pair() as (first, second, router):
        second.fail_before_first_byte = 1
        first.hold = True
        # The first request holds replica 0 (the preferred one); the next goes to replica
        # 1, fails, and may fail over to replica 0 only once it has a free slot: it waits,
        # holding nothing.
        held = spawn(session, router, fast("held"))
        await wait_held(first, 1)
        failing = spawn(session, router, fast("fails over"))
        await wait_until(lambda: queued(router) == 1, what="the failover to wait for a slot")
        view = await health(session, router)

        first.open()
        results = [await held, await failing]

        assert [status for status, _, _ in results] == [200, 200]
        assert results[1][1]["x-octoroute-endpoint"] == "small-0"
        assert busy_places(view) == ["fast queue 1", "fast[0] in flight 1"], (
            "the failed attempt's slot on replica 1 was given back before it waited"
        )
        await assert_settled(session, router)


async def test_a_client_that_leaves_while_a_buffered_answer_is_awaited_frees_the_slot(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot() as ([small], _up, router):
        small.hold = True
        async with aiohttp.ClientSession() as leaving:
            gone = spawn(leaving, router, fast("gone"))
            await wait_held(small, 1)
            gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        await wait_until(lambda: small.cancelled == 1, what="the upstream request dropped")
        await assert_settled(session, router)


@pytest.mark.parametrize("stream", [False, True])
async def test_an_attempt_that_times_out_frees_the_slot_for_the_request_waiting_behind_it(
    session: aiohttp.ClientSession, stream: bool
) -> None:
    async with one_slot(timeouts="fast = 1") as ([small], _up, router):
        small.hold = True  # the first request hangs until the tier's timeout cuts it
        first = spawn(session, router, fast("hangs", stream=stream))
        await wait_held(small, 1)
        small.hold = False
        second = spawn(session, router, fast("next"))
        await wait_until(lambda: queued(router) == 1, what="the second request to wait")

        timed_out, _, body = await first
        served, _, _ = await within_task(second)

        assert timed_out == 504, body
        assert served == 200
        assert small.cancelled == 1, "the hung upstream request was dropped"
        await assert_settled(session, router)


async def within_task(task: asyncio.Task[Response]) -> Response:
    return await asyncio.wait_for(task, 5)


async def test_a_stream_the_upstream_cuts_mid_answer_frees_the_slot(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot() as ([small], _up, router):
        small.fail_mid_stream = 1
        async with session.post(router.v1 + "/chat/completions", json=fast(stream=True)) as resp:
            body = await resp.read()
        assert b"upstream_stream_interrupted" in body
        assert body.endswith(b"data: [DONE]\n\n")
        await assert_settled(session, router)


UNREADABLE_EVENT = b'data: {"choices":[{"index":0,"delta":{"tool_calls":1}}]}\n\n'
"""A chat chunk whose ``tool_calls`` is a number: translators expect a list."""
FIRST_EVENT = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n'
DIALECTS: dict[str, tuple[str, dict[str, object]]] = {
    "responses": ("/v1/responses", {"model": "fast", "input": "hi", "stream": True}),
    "messages": (
        "/v1/messages",
        {
            "model": "fast",
            "max_tokens": 16,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    "ollama": ("/api/chat", {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}),
}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_first_event_the_translator_cannot_read_is_an_upstream_fault_not_a_crash(
    session: aiohttp.ClientSession, dialect: str
) -> None:
    path, body = DIALECTS[dialect]
    async with one_slot() as ([small], _up, router):
        small.stream_script = [UNREADABLE_EVENT]
        async with session.post(router.url + path, json=body) as response:
            status, answer = response.status, await response.read()

        assert status != 500, answer
        if status >= 400:
            assert orjson.loads(answer), "a JSON error in the dialect's shape"
        await assert_settled(session, router)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_event_the_translator_cannot_read_mid_stream_ends_the_stream_cleanly(
    session: aiohttp.ClientSession, dialect: str
) -> None:
    path, body = DIALECTS[dialect]
    async with one_slot() as ([small], _up, router):
        # The first event reaches the client before the unreadable one is sent.
        small.stream_script = [FIRST_EVENT, None, UNREADABLE_EVENT, b"data: [DONE]\n\n"]
        async with session.post(router.url + path, json=body) as response:
            assert response.status == 200
            first = await within(response.content.readany(), 5)
            assert first
            small.release()
            rest = await within(response.read(), 5)  # a broken connection would raise here

        assert isinstance(rest, bytes)
        await assert_settled(session, router)


async def test_a_buffered_answer_the_translator_cannot_read_is_an_upstream_fault(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot() as ([small], _up, router):
        small.answer_body = b'{"choices":[{"index":0,"message":5,"finish_reason":"stop"}]}'
        for path, body in DIALECTS.values():
            buffered = {**body, "stream": False}
            async with session.post(router.url + path, json=buffered) as response:
                status, answer = response.status, await response.read()
            assert status != 500, (path, answer)
            assert orjson.loads(answer)
        await assert_settled(session, router)


# --- waiting: timeouts, disconnects and what the metrics say -------------------------------------


async def test_a_timed_out_and_a_departed_waiter_are_both_observed_and_leave_nothing_behind(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot(limits="queue_timeout_seconds = 0.3") as ([small], _up, router):
        held = await hold_the_slot(session, router, small)

        timed_out, headers, _ = await post(session, router, fast("times out"))
        async with aiohttp.ClientSession() as leaving:
            gone = spawn(leaving, router, fast("gone"))
            await wait_until(lambda: queued(router) == 1, what="the request to queue")
            gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        await wait_until(lambda: queued(router) == 0, what="the departed request to leave")
        small.open()
        assert (await held)[0] == 200

        assert (timed_out, headers["Retry-After"]) == (503, "1")
        text = await metrics(session, router)
        assert sample(text, 'octoroute_queue_wait_seconds_count{tier="fast"}') == 2
        assert sample(text, 'octoroute_fleet_busy_total{reason="queue_timeout",tier="fast"}') == 1
        await assert_settled(session, router)


async def test_a_waiter_whose_instances_went_down_meanwhile_is_told_so_at_the_timeout(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot(limits="queue_timeout_seconds = 0.5", health="failure_threshold = 1") as (
        [small],
        _up,
        router,
    ):
        small.hold = True
        small.fail_before_first_byte = 1  # the held request fails: the instance is unhealthy
        first = spawn(session, router, fast("fails"))
        await wait_held(small, 1)
        second = spawn(session, router, fast("waits"))
        await wait_until(lambda: queued(router) == 1, what="the second request to wait")
        small.release()

        failed, _, _ = await first
        refused, headers, body = await within_task(second)

        assert failed == 502
        assert (refused, headers["Retry-After"]) == (503, "1")
        assert "none of them is available now" in str(body), body
        await assert_settled(session, router)


async def test_a_failover_after_the_request_used_its_wait_is_refused_saying_so(
    session: aiohttp.ClientSession,
) -> None:
    async with preferred_pair(limits="queue_timeout_seconds = 0.2") as (first, second, router):
        first.hold = second.hold = True
        second.fail_before_first_byte = 1
        held = spawn(session, router, fast("held"))
        await wait_held(first, 1)
        failing = spawn(session, router, fast("fails late"))
        await wait_held(second, 1)
        await asyncio.sleep(0.3)  # its attempt outlasts its queue_timeout_seconds
        second.release()

        status, headers, body = await within_task(failing)
        first.open()

        assert (status, headers["Retry-After"]) == (503, "1")
        assert "has used its 0.2 s of waiting for slots" in str(body), body
        assert (await held)[0] == 200
        await assert_settled(session, router)


async def test_a_request_waiting_in_two_tiers_queues_takes_one_slot(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("small", "up", "top") as (small, up, top):
        tiers: Tiers = {
            "fast": [(small, "max_concurrent = 1")],
            "balanced": [(up, "max_concurrent = 1")],
            "deep": [(top, "")],
        }
        routing = 'overflow = "up"\noverflow_after_ms = 0'
        async with router_for(tiers, routing=routing) as router:
            small.hold = up.hold = True
            held_fast = spawn(session, router, fast("held"))
            held_up = spawn(session, router, {**chat("held up"), "model": "balanced"})
            await wait_held(small, 1)
            await wait_held(up, 1)
            routed = spawn(session, router, chat("routed"))
            await wait_until(
                lambda: queued(router, "fast") == 1 and queued(router, "balanced") == 1,
                what="the routed request to wait in both lines",
            )
            view = busy_places(await health(session, router))

            up.release()  # the balanced slot frees first: the routed request takes it
            await wait_held(up, 1)
            after = busy_places(await health(session, router))
            up.open()
            small.open()
            status, headers, _ = await routed

            assert view == [
                "fast queue 1",
                "fast[0] in flight 1",
                "balanced queue 1",
                "balanced[0] in flight 1",
            ]
            assert after == ["fast[0] in flight 1", "balanced[0] in flight 1"], after
            assert (status, headers["x-octoroute-reason"]) == (200, "queue_overflow")
            assert [(await held_fast)[0], (await held_up)[0]] == [200, 200]
            assert (small.peak, up.peak) == (1, 1)
            await assert_settled(session, router)


async def test_a_waiter_for_one_named_model_does_not_block_the_tier_s_line(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("x", "x", "y", "up", "top") as (x1, x2, y, up, top):
        tiers: Tiers = {
            "fast": [
                (x1, "max_concurrent = 1"),
                (x2, "max_concurrent = 1"),
                (y, "max_concurrent = 1"),
            ],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers) as router:
            x1.hold = x2.hold = y.hold = True
            holders = [spawn(session, router, {**chat(), "model": "x"}) for _ in range(2)]
            await wait_until(lambda: x1.held + x2.held == 2, what="both x replicas held")
            holders.append(spawn(session, router, fast("holds y")))
            await wait_held(y, 1)
            named = spawn(session, router, {**chat("named"), "model": "x"})
            await wait_until(lambda: queued(router) == 1, what="the named request to wait")
            tier_wide = spawn(session, router, fast("tier-wide"))
            await wait_until(lambda: queued(router) == 2, what="the tier-wide request to wait")

            y.release()  # only y frees: the named request ahead cannot use it
            await wait_until(lambda: len(y.chats) == 2, what="the tier-wide request served")
            assert y.chats[1].text == "tier-wide"
            assert queued(router) == 1, "the named request still waits"
            x1.release()
            await wait_until(lambda: len(x1.chats) == 2, what="the named request served")
            assert x1.chats[1].text == "named"
            for model in (x1, x2, y):
                model.open()
            assert [(await task)[0] for task in (*holders, named, tier_wide)] == [200] * 5
            await assert_settled(session, router)


# --- interactions -----------------------------------------------------------------------------


async def test_the_router_model_call_never_waits_for_a_slot_nor_takes_a_second_one(
    session: aiohttp.ClientSession,
) -> None:
    answer = orjson.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "FAST"}}]}
    )
    async with gated("small", "up", "top") as (small, up, top):
        tiers: Tiers = {
            "fast": [(small, "max_concurrent = 1")],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        async with router_for(tiers, strategy="llm", routing='router_tier = "fast"') as router:
            small.answer_body = answer
            # A free slot: the router model takes it, gives it back, and the request takes it.
            status, headers, _ = await post(session, router, chat("free"))
            assert (status, headers["x-octoroute-strategy"]) == (200, "llm")

            held = await hold_the_slot(session, router, small)
            routed = spawn(session, router, chat("routed"))
            await wait_until(lambda: queued(router) == 1, what="the routed request to wait")
            text = await metrics(session, router)
            small.open()
            status, headers, _ = await routed

            assert sample(text, 'octoroute_routing_fallbacks_total{reason="unavailable"}') == 1
            assert (status, headers["x-octoroute-strategy"]) == (200, "rule")
            assert (await held)[0] == 200
            assert small.peak == 1
            await assert_settled(session, router)


async def test_embedding_requests_wait_for_their_own_pool_s_slots(
    session: aiohttp.ClientSession,
) -> None:
    async with gated("small", "up", "top", "embedder") as (small, up, top, embedder):
        tiers: Tiers = {"fast": [(small, "")], "balanced": [(up, "")], "deep": [(top, "")]}
        async with router_for(tiers, embeddings=[(embedder, "max_concurrent = 1")]) as router:
            embedder.hold = True
            body = {"model": "embedder", "input": "text"}
            first = spawn_embedding(session, router, body)
            await wait_held(embedder, 1)
            second = spawn_embedding(session, router, body)
            await wait_until(lambda: queued(router, "embeddings") == 1, what="the second to wait")
            placement = (await health(session, router))["placement"]
            chat_status, _, _ = await post(session, router, chat("chat is not held up"))

            embedder.open()
            statuses = [await first, await second]

            assert isinstance(placement, dict)
            assert placement["embeddings"]["queue"] == 1
            assert placement["fast"]["queue"] == 0
            assert chat_status == 200
            assert statuses == [200, 200]
            assert embedder.peak_embeddings == 1
            await assert_settled(session, router)


def spawn_embedding(
    session: aiohttp.ClientSession, router: RouterHandle, body: Mapping[str, object]
) -> asyncio.Task[int]:
    async def send() -> int:
        async with session.post(router.v1 + "/embeddings", json=body) as response:
            await response.read()
            return response.status

    return asyncio.create_task(send())


async def test_static_placement_ignores_slot_limits_and_never_queues(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot(routing='placement = "static"') as ([small], _up, router):
        small.hold = True
        tasks = [spawn(session, router, fast(str(number))) for number in range(3)]
        await wait_held(small, 3)
        assert queued(router) == 0
        small.open()

        assert [(await task)[0] for task in tasks] == [200] * 3
        assert small.peak == 3
        await assert_settled(session, router)


async def test_requests_waiting_for_a_slot_count_against_max_in_flight(
    session: aiohttp.ClientSession,
) -> None:
    async with one_slot(server="max_in_flight = 2") as ([small], _up, router):
        held = await hold_the_slot(session, router, small)
        waiting = spawn(session, router, fast("waits"))
        await wait_until(lambda: queued(router) == 1, what="the second to wait")

        status, _, body = await post(session, router, fast("refused"))
        small.open()

        assert status == 503
        error = body["error"]
        assert isinstance(error, dict)
        assert error["code"] == "server_overloaded", "refused by max_in_flight, not the queue"
        assert [(await held)[0], (await waiting)[0]] == [200, 200]
        await assert_settled(session, router)


# --- shutdown -----------------------------------------------------------------------------------


async def runner_for(config: Config, grace: float) -> tuple[web.AppRunner, RouterHandle]:
    """A router serving ``config`` on an ephemeral port whose runner the test shuts down itself
    (``grace`` seconds for requests to finish): the runner, and the router's handle."""
    app = create_app(config)
    runner = make_runner(app, config.server, shutdown_timeout=grace)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, RouterHandle(f"http://{host}:{port}", app[RUNTIME], config)


@asynccontextmanager
async def waiting_at_shutdown(
    session: aiohttp.ClientSession, grace: float
) -> AsyncIterator[tuple[GatedModel, RouterHandle, web.AppRunner, list[asyncio.Task[Response]]]]:
    """A router whose runner the test shuts down itself (``grace`` seconds for requests to
    finish), one slot in its fast tier held by a request and one more request waiting for it:
    the fast fake, the router, its runner and the two requests."""
    async with gated("small", "up", "top") as (small, up, top):
        tiers: Tiers = {
            "fast": [(small, "max_concurrent = 1")],
            "balanced": [(up, "")],
            "deep": [(top, "")],
        }
        runner, router = await runner_for(placement_config(tiers), grace)
        try:
            await first_probe_round(router)
            held = await hold_the_slot(session, router, small)
            waiting = spawn(session, router, fast("waits"))
            await wait_until(lambda: queued(router) == 1, what="the second to wait")
            yield small, router, runner, [held, waiting]
        finally:
            await runner.cleanup()


async def test_requests_waiting_at_shutdown_are_served_while_the_router_drains(
    session: aiohttp.ClientSession,
) -> None:
    async with waiting_at_shutdown(session, grace=5) as (small, router, runner, requests):
        stopping = asyncio.create_task(runner.cleanup())
        await asyncio.sleep(0)  # the runner has stopped listening and is draining
        small.open()
        results = [await within_task(request) for request in requests]
        await within(stopping)

        assert [result[0] for result in results] == [200, 200]
        assert [seen.text for seen in small.chats] == ["held", "waits"]
        assert router.runtime.dispatcher.depth(Pool.FAST) == 0
        assert all(endpoint.in_flight == 0 for endpoint in router.runtime.fleet.all())


async def test_a_request_still_waiting_when_the_grace_ends_leaves_nothing_behind(
    session: aiohttp.ClientSession,
) -> None:
    async with waiting_at_shutdown(session, grace=0.3) as (small, router, runner, requests):
        await within(runner.cleanup())
        outcomes = await asyncio.gather(*requests, return_exceptions=True)

        assert all(isinstance(outcome, aiohttp.ClientError) for outcome in outcomes)
        assert router.runtime.dispatcher.depth(Pool.FAST) == 0
        assert all(endpoint.in_flight == 0 for endpoint in router.runtime.fleet.all())
        assert small.cancelled == 1, "the held upstream request was dropped"


async def test_a_stream_longer_than_the_grace_period_is_cut_when_the_grace_ends(
    session: aiohttp.ClientSession,
) -> None:
    """The drain at shutdown is bounded by its grace period in all: a stream still running
    when it ends is cut then, its upstream request dropped, not after twice the grace."""
    model = SimulatedModel("sim-fast")
    model.behaviour.reply = "word " * 400
    model.behaviour.token_gap = 0.05  # about 20 s of tokens
    fleet = SimulatedFleet(
        fast=[model], balanced=[SimulatedModel("sim-b")], deep=[SimulatedModel("sim-d")]
    )
    grace = 1.0
    async with fleet:
        runner, router = await runner_for(config_for(fleet, strategy="rule"), grace)
        try:
            await first_probe_round(router)
            body = {
                "model": "fast",
                "messages": [{"role": "user", "content": "go"}],
                "stream": True,
            }
            response = await session.post(router.v1 + "/chat/completions", json=body)
            assert response.status == 200
            await within(response.content.readline())  # the stream is under way
            started = time.monotonic()
            await within(runner.cleanup(), 10.0)
            elapsed = time.monotonic() - started
            with contextlib.suppress(aiohttp.ClientError):
                await within(response.read())
            response.release()
        finally:
            await runner.cleanup()
        await wait_until(
            lambda: model.requests[-1].finished_at is not None, what="the upstream end"
        )

    assert elapsed < 1.7 * grace  # not two grace periods back to back
    assert not model.requests[-1].completed  # cut, not left to run its 20 s

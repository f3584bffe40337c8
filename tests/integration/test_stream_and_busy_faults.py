"""Streams that never end an event, upstreams that say busy, and a router pushed past its limits.

Raw scripted upstreams (``tests/misbehaving.py``) write exactly the bytes each fault needs; the
router runs in-process where its state is inspected, and as a real process where memory or the
file-descriptor limit is what is tested. Everything binds 127.0.0.1 and is bounded in time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from octoroute.config import parse_config
from tests.harness import RouterHandle, first_probe_round, running_router, wait_until
from tests.misbehaving import (
    LAST_CHUNK,
    Request,
    Script,
    chat_script,
    chunk,
    config_toml,
    flood,
    peak_rss_bytes,
    raw_server,
    response,
    router_process,
)

CHAT = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**CHAT, "stream": True}
GOOD_ANSWER = (
    b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}]}'
)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
FIRST_EVENT = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n'
)
GIGABYTE = 1024**3
MIB = 1024 * 1024


def endless_event_upstream(sent: list[int], *, first: bytes = b"") -> Script:
    """Streams ``first``, then one event that never ends: up to 1 GB of ``data`` bytes with no
    blank line. Probes are answered well."""

    async def endless(request: Request, writer: asyncio.StreamWriter) -> None:
        head = SSE_HEAD + (chunk(first) if first else b"") + chunk(b"data: ")
        await flood(writer, head, b"x", sent, GIGABYTE)

    return chat_script(endless)


def good_stream_upstream(served: list[Request]) -> Script:
    """Answers every chat request with a short, well-formed stream."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        served.append(request)
        writer.write(SSE_HEAD + chunk(FIRST_EVENT + b"data: [DONE]\n\n") + LAST_CHUNK)
        await writer.drain()

    return chat_script(answer)


def sse_events(raw: bytes) -> list[bytes]:
    return [event for event in raw.split(b"\n\n") if event.startswith(b"data: ")]


# --- an SSE event that never ends ---------------------------------------------------------------


async def test_an_endless_first_event_fails_over_and_memory_stays_bounded() -> None:
    sent = [0]
    served: list[Request] = []
    async with (
        raw_server(endless_event_upstream(sent)) as flood,
        raw_server(good_stream_upstream(served)) as good,
    ):
        config = config_toml([flood.base_url, good.base_url])  # the flood is tried first
        async with router_process(config) as router, aiohttp.ClientSession() as session:
            async with session.get(router.url + "/health") as warm:
                await warm.read()
            before = peak_rss_bytes(router.pid)
            async with session.post(router.v1 + "/chat/completions", json=STREAM) as answer:
                assert answer.status == 200
                assert answer.headers["x-octoroute-endpoint"] == "fast-1"
                raw = await asyncio.wait_for(answer.read(), 30)
            grown = peak_rss_bytes(router.pid) - before

    assert sse_events(raw) == [FIRST_EVENT.rstrip(b"\n"), b"data: [DONE]"]
    assert len(served) == 1
    assert 4 * MIB <= sent[0] < GIGABYTE / 8  # read up to the limit, then let go
    assert grown < 100 * MIB, grown / MIB


async def test_an_endless_event_after_the_first_one_ends_the_stream_with_an_error() -> None:
    sent = [0]
    async with (
        raw_server(endless_event_upstream(sent, first=FIRST_EVENT)) as flood,
        router_process(config_toml([flood.base_url])) as router,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(router.url + "/health") as warm:
            await warm.read()
        before = peak_rss_bytes(router.pid)
        async with session.post(router.v1 + "/chat/completions", json=STREAM) as answer:
            assert answer.status == 200
            raw = await asyncio.wait_for(answer.read(), 30)
        grown = peak_rss_bytes(router.pid) - before

    events = sse_events(raw)
    assert events[0] == FIRST_EVENT.rstrip(b"\n")
    assert events[-1] == b"data: [DONE]"
    error = orjson.loads(events[-2][6:])["error"]
    assert error["code"] == "upstream_event_too_large"
    assert "limits.max_event_bytes" in error["message"]
    assert len(events) == 3
    assert grown < 100 * MIB, grown / MIB


async def test_an_endless_event_from_the_only_endpoint_is_a_502_naming_the_limit() -> None:
    sent = [0]
    extra = "[limits]\nmax_event_bytes = 65536\n"
    async with (
        raw_server(endless_event_upstream(sent)) as flood,
        running_router(parse_config(config_toml([flood.base_url], extra=extra))) as router,
        aiohttp.ClientSession() as session,
    ):
        await first_probe_round(router)
        async with session.post(router.v1 + "/chat/completions", json=STREAM) as answer:
            status = answer.status
            error = (await answer.json())["error"]
        fast = router.runtime.fleet.by_name("fast-0")[0]

    assert status == 502
    assert error["code"] == "upstream_event_too_large"
    assert "more than 65536 bytes" in error["message"]
    assert fast.consecutive_failures == 1  # an upstream fault: held against it


# --- busy upstreams (429, 503 with Retry-After) --------------------------------------------------


def busy_upstream(status: str, retry_after: str | None, chats: list[float]) -> Script:
    """Answers every chat request with ``status`` (and ``Retry-After``), recording when."""
    headers = () if retry_after is None else (f"Retry-After: {retry_after}",)

    async def busy(request: Request, writer: asyncio.StreamWriter) -> None:
        chats.append(time.monotonic())
        body = b'{"error":{"message":"slow down","type":"requests","code":"rate_limit"}}'
        writer.write(response(body, status=status, headers=headers))
        await writer.drain()

    return chat_script(busy)


def good_upstream(chats: list[float], gate: asyncio.Event | None = None) -> Script:
    """Answers every chat request with a small completion, recording when it came; with
    ``gate``, only once the gate is open."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        chats.append(time.monotonic())
        if gate is not None:
            await gate.wait()
        writer.write(response(GOOD_ANSWER))
        await writer.drain()

    return chat_script(answer)


async def post(session: aiohttp.ClientSession, router: RouterHandle) -> tuple[int, Any, Any]:
    async with session.post(router.v1 + "/chat/completions", json=CHAT) as answer:
        return answer.status, answer.headers, await answer.json()


@pytest.mark.parametrize(("status", "code"), [("429 Too Many Requests", 429), ("503 Busy", 503)])
async def test_a_busy_instance_is_left_alone_for_its_retry_after_and_health_is_untouched(
    session: aiohttp.ClientSession, status: str, code: int
) -> None:
    busy_chats: list[float] = []
    good_chats: list[float] = []
    async with (
        raw_server(busy_upstream(status, "30", busy_chats)) as busy,
        raw_server(good_upstream(good_chats)) as good,
        running_router(parse_config(config_toml([busy.base_url, good.base_url]))) as router,
    ):
        await first_probe_round(router)
        results = [await post(session, router) for _ in range(5)]
        first = router.runtime.fleet.by_name("fast-0")[0]
        throttled = router.runtime.metrics.registry.get_sample_value(
            "octoroute_upstream_throttled_total", {"endpoint": "fast-0"}
        )

    assert [status for status, _, _ in results] == [200] * 5
    assert all(headers["x-octoroute-endpoint"] == "fast-1" for _, headers, _ in results)
    assert len(busy_chats) == 1  # asked once, then left alone for 30 s
    assert len(good_chats) == 5
    assert first.healthy
    assert first.consecutive_failures == 0
    assert not first.ejected
    assert first.busy_status == code
    assert first.busy_until - time.monotonic() == pytest.approx(30, abs=2)
    assert throttled == 1


async def test_when_only_busy_instances_are_left_the_client_gets_429_with_retry_after(
    session: aiohttp.ClientSession,
) -> None:
    chats: list[float] = []
    async with (
        raw_server(busy_upstream("429 Too Many Requests", "7", chats)) as busy,
        running_router(parse_config(config_toml([busy.base_url]))) as router,
    ):
        await first_probe_round(router)
        first = await post(session, router)
        second = await post(session, router)  # nothing tried: the only instance is busy

    for status, headers, body in (first, second):
        assert status == 429
        assert headers["Retry-After"] in {"6", "7"}
        assert body["error"]["code"] == "upstream_throttled"
        assert body["error"]["type"] == "rate_limit_error"
        assert "tier 'fast'" in body["error"]["message"]
    assert len(chats) == 1


async def test_a_429_without_retry_after_rests_the_instance_one_second(
    session: aiohttp.ClientSession,
) -> None:
    chats: list[float] = []
    async with (
        raw_server(busy_upstream("429 Too Many Requests", None, chats)) as busy,
        running_router(parse_config(config_toml([busy.base_url]))) as router,
    ):
        await first_probe_round(router)
        status, headers, _ = await post(session, router)
        first = router.runtime.fleet.by_name("fast-0")[0]
        await wait_until(lambda: first.busy_until <= time.monotonic(), timeout=3, what="rest")
        await post(session, router)

    assert status == 429
    assert headers["Retry-After"] == "1"
    assert len(chats) == 2
    assert chats[1] - chats[0] >= 0.9


# --- overload: more clients than the router can hold --------------------------------------------


async def test_a_burst_past_the_fd_limit_is_refused_locally_and_never_blamed_on_the_upstream() -> (
    None
):
    # 600 concurrent requests at a router whose hard limit is 256 file descriptors, in front of
    # two healthy (slow) replicas: the burst cannot all be held. What must not happen is what
    # did: fd errors blamed on the upstream, which then got marked unhealthy (503
    # no_healthy_endpoint). Connections the kernel could not hand over fail on the client side.
    gate = asyncio.Event()
    chats: list[float] = []
    async with (
        raw_server(good_upstream(chats, gate)) as one,
        raw_server(good_upstream(chats, gate)) as two,
    ):
        config = config_toml([one.base_url, two.base_url])
        async with router_process(config, nofile=256) as router:
            startup_log = "\n".join(router.log)
            connector = aiohttp.TCPConnector(limit=0, force_close=True)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

                async def one_request() -> tuple[int, str | None]:
                    try:
                        async with session.post(router.v1 + "/chat/completions", json=CHAT) as r:
                            body = await r.json()
                            return r.status, (body.get("error") or {}).get("code")
                    except aiohttp.ClientError:
                        return -1, None  # not even accepted: the router had no fd for it

                burst = [asyncio.create_task(one_request()) for _ in range(600)]
                await wait_until(
                    lambda: sum(task.done() for task in burst) + len(chats) >= 600,
                    timeout=30,
                    what="every request answered or waiting upstream",
                )
                gate.set()
                results = await asyncio.wait_for(asyncio.gather(*burst), 60)
                reached_upstream = len(chats)
                async with session.get(router.url + "/models") as models:
                    states = (await models.json())["models"]
                async with session.get(router.url + "/metrics") as metrics:
                    exposition = await metrics.text()
                async with session.post(router.v1 + "/chat/completions", json=CHAT) as after:
                    after_status = after.status

    codes = {code for status, code in results if status not in (200, -1)}
    assert codes == {"server_overloaded"}, codes
    assert sum(status == 200 for status, _ in results) == reached_upstream > 0
    fast = [state for state in states if state["tier"] == "fast"]
    assert all(state["healthy"] for state in fast), fast
    assert all(state["consecutive_failures"] == 0 for state in fast), fast
    assert 'octoroute_overload_rejections_total{reason="file_descriptors"}' in exposition
    assert after_status == 200
    assert "the open-file limit is too low for server.max_in_flight" in startup_log


async def test_a_low_soft_fd_limit_is_raised_at_start_up() -> None:
    async with (
        raw_server(good_upstream([])) as good,
        router_process(config_toml([good.base_url]), nofile=256, nofile_hard=4096) as router,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(router.v1 + "/chat/completions", json=CHAT) as answer:
            assert answer.status == 200
        limits = await asyncio.to_thread(Path(f"/proc/{router.pid}/limits").read_text)
        line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
        log = "\n".join(router.log)

    assert line.split()[3:5] == ["2112", "4096"]  # 1024 in flight x 2 + 64, under the hard 4096
    assert "raised the open-file limit" in log
    assert "too low" not in log


# --- a response head that never ends ------------------------------------------------------------


def endless_head_upstream(start: bytes, piece: bytes) -> Callable[[list[int]], Script]:
    """An upstream that starts a 200 answer's head with ``start`` and then writes ``piece``
    after ``piece`` (up to 256 MB, counted in ``sent``), never ending the head."""

    def script(sent: list[int]) -> Script:
        async def flood(request: Request, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + start)
            while sent[0] < 256 * MIB:
                writer.write(piece)
                sent[0] += len(piece)
                await writer.drain()

        return chat_script(flood)

    return script


endless_header_upstream = endless_head_upstream(b"X-Junk: ", b"a" * 65536)
"""One header line that never ends."""
endless_short_headers_upstream = endless_head_upstream(b"", b"X-Junk: a\r\n" * 4096)
"""Short header lines, each complete, that never end."""


@pytest.mark.parametrize(
    "upstream",
    [endless_header_upstream, endless_short_headers_upstream],
    ids=["one endless line", "endless short lines"],
)
async def test_an_endless_response_head_fails_over_at_once_and_stays_bounded(
    session: aiohttp.ClientSession, upstream: Callable[[list[int]], Script]
) -> None:
    sent = [0]
    answered: list[float] = []
    async with (
        raw_server(upstream(sent)) as flood,
        raw_server(good_upstream(answered)) as good,
        running_router(parse_config(config_toml([flood.base_url, good.base_url]))) as router,
    ):
        await first_probe_round(router)
        started = time.monotonic()
        status, headers, body = await post(session, router)
        elapsed = time.monotonic() - started
        flooded = router.runtime.fleet.by_name("fast-0")[0]

    assert status == 200, body
    assert headers["x-octoroute-endpoint"] == "fast-1"
    assert elapsed < 2.0  # not the 30 s timeout
    assert sent[0] < 16 * MIB  # the router stopped reading
    assert flooded.consecutive_failures == 1
    assert "65536 bytes" in (flooded.last_error or "")  # the head's bound, named

"""The upstream client against upstreams that misbehave: too much, refused, busy, stale, full.

Each test scripts a raw server on 127.0.0.1 (``tests/misbehaving.py``) and checks the error the
client raises, or that it recovers. The last tests run the router as a process to measure what
only a process shows: its peak memory in front of an endless answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import resource
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.utils import formatdate

import aiohttp
import pytest

from octoroute.config.schema import EndpointConfig
from octoroute.enums import Pool
from octoroute.errors import (
    BadUpstreamResponse,
    EndpointSaturated,
    ResponseTooLarge,
    ServerOverloaded,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamStatusError,
    UpstreamThrottled,
)
from octoroute.upstream.client import Target, UpstreamClient
from octoroute.upstream.decoding import parse_retry_after
from tests.harness import wait_until
from tests.misbehaving import (
    LAST_CHUNK,
    OK_BODY,
    RawServer,
    Request,
    Script,
    chat_script,
    chunk,
    config_toml,
    flood,
    peak_rss_bytes,
    raw_server,
    read_request,
    response,
    router_process,
)

LIMIT = 64 * 1024


def target_for(server: RawServer, **keys: object) -> Target:
    """A target for ``server`` as the runtime builds one, with extra endpoint keys."""
    return Target(
        EndpointConfig(
            pool=Pool.FAST,
            index=0,
            name="raw-model",
            base_url=server.base_url,
            max_tokens=64,
            **keys,  # type: ignore[arg-type]
        )
    )


@asynccontextmanager
async def client(max_response_bytes: int = LIMIT) -> AsyncIterator[UpstreamClient]:
    """An opened client with a small response limit, closed afterwards."""
    upstream = UpstreamClient(max_response_bytes=max_response_bytes)
    await upstream.open()
    try:
        yield upstream
    finally:
        await upstream.close()


async def endless_body(writer: asyncio.StreamWriter, head: bytes) -> None:
    """Write ``head`` then chunks of garbage until the client hangs up."""
    writer.write(head)
    piece = chunk(b"x" * 65536)
    while True:
        writer.write(piece)
        await writer.drain()


ENDLESS_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


# --- max_response_bytes -----------------------------------------------------------------------


async def test_an_endless_answer_stops_at_the_limit_and_the_connection_is_closed() -> None:
    async def endless(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        await endless_body(writer, ENDLESS_HEAD)

    async with raw_server(endless) as server, client() as upstream:
        target = target_for(server)
        with pytest.raises(ResponseTooLarge) as caught:
            await upstream.send(target, b"{}", timeout=5)
        assert str(caught.value) == (
            f"raw-model at {server.base_url}: answer larger than {LIMIT} bytes "
            "(limits.max_response_bytes); stopped reading it"
        )
        assert caught.value.code == "upstream_response_too_large"
        await wait_until(lambda: server.active == 0, what="the server saw the hang-up")
        assert upstream.idle_connections(target) == 0
        assert target.slots.busy == 0


async def test_a_declared_length_over_the_limit_fails_before_reading() -> None:
    async def huge(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{")
        await writer.drain()
        await server.release.wait()

    async with raw_server(huge) as server, client() as upstream:
        with pytest.raises(ResponseTooLarge):
            await upstream.send(target_for(server), b"{}", timeout=5)
        server.release.set()


async def test_an_answer_of_exactly_the_limit_is_read() -> None:
    body = b"y" * LIMIT

    async def exact(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            writer.write(response(body))
            await writer.drain()

    async with raw_server(exact) as server, client() as upstream:
        assert (await upstream.send(target_for(server), b"{}", timeout=5)).body == body


async def test_a_stream_read_whole_is_bounded_too() -> None:
    async def endless(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        await endless_body(writer, ENDLESS_HEAD)

    async with raw_server(endless) as server, client() as upstream:
        target = target_for(server)
        stream = await upstream.open_stream(target, b"{}", timeout=5, read_timeout=5)
        with pytest.raises(ResponseTooLarge, match="max_response_bytes"):
            await stream.read_rest()
        stream.close()
        assert target.slots.busy == 0


# --- refused, throttled, relayed ---------------------------------------------------------------


def status_server(
    status: str, *headers: str, body: bytes = b'{"error":"sk-secret-echo"}'
) -> Script:
    """A script answering every request (probes included) with ``status``."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            writer.write(response(body, status=status, headers=headers))
            await writer.drain()

    return script


@pytest.mark.parametrize("status", ["401 Unauthorized", "403 Forbidden"])
async def test_a_refused_key_is_an_auth_error_without_the_body(status: str) -> None:
    async with raw_server(status_server(status)) as server, client() as upstream:
        target = target_for(server)
        code = status.split()[0]
        for call in (
            upstream.send(target, b"{}", timeout=5),
            upstream.open_stream(target, b"{}", timeout=5, read_timeout=5),
            upstream.probe(target, timeout=5),
        ):
            with pytest.raises(UpstreamAuthFailed) as caught:
                await call
            assert str(caught.value) == (
                f"raw-model at {server.base_url} refused the router's credentials "
                f"(HTTP {code}); check api_key_env for this endpoint"
            )
            assert "sk-secret-echo" not in repr(vars(caught.value))
        assert server.connections == 3  # never pooled
        assert target.slots.busy == 0


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        ("429 Too Many Requests", (), None),
        ("429 Too Many Requests", ("Retry-After: 7",), 7.0),
        ("429 Too Many Requests", ("Retry-After: 3600",), 60.0),
        ("429 Too Many Requests", ("Retry-After: soon",), None),
        ("503 Service Unavailable", ("Retry-After: 2",), 2.0),
    ],
    ids=["429", "429-delta", "429-capped", "429-garbage", "503-retry-after"],
)
async def test_a_busy_upstream_is_throttled_with_its_retry_after(
    status: str, headers: tuple[str, ...], retry_after: float | None
) -> None:
    async with raw_server(status_server(status, *headers)) as server, client() as upstream:
        with pytest.raises(UpstreamThrottled) as caught:
            await upstream.send(target_for(server), b"{}", timeout=5)
        code = int(status.split()[0])
        assert caught.value.upstream_status == code
        assert caught.value.retry_after == retry_after
        assert caught.value.status == code
        assert not caught.value.counts_against_health
        assert f"busy (HTTP {code})" in str(caught.value)


@pytest.mark.parametrize("status", ["503 Service Unavailable", "500 Internal Server Error"])
async def test_a_5xx_without_retry_after_stays_a_status_error(status: str) -> None:
    async with raw_server(status_server(status, body=b'{"e":1}')) as server, client() as upstream:
        with pytest.raises(UpstreamStatusError) as caught:
            await upstream.send(target_for(server), b"{}", timeout=5)
        assert caught.value.body == b'{"e":1}'
        assert caught.value.retryable


async def test_another_4xx_is_relayed_with_its_body() -> None:
    body = b'{"error":{"message":"context too long"}}'
    async with (
        raw_server(status_server("400 Bad Request", body=body)) as server,
        client() as upstream,
    ):
        with pytest.raises(UpstreamStatusError) as caught:
            await upstream.send(target_for(server), b"{}", timeout=5)
        assert caught.value.is_client_error
        assert (caught.value.status, caught.value.body) == (400, body)


def test_retry_after_reads_delta_seconds_and_http_dates() -> None:
    now = 1_000_000_000.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 12 ") == 12.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(formatdate(now + 600, usegmt=True), now=now) == 60.0
    for useless in (None, "", "-5", "1.5", "tomorrow", formatdate(now - 30, usegmt=True)):
        assert parse_retry_after(useless, now=now) is None, useless


# --- stale keep-alive connections --------------------------------------------------------------


async def test_pooled_connections_closed_by_the_server_are_retried_on_a_fresh_one() -> None:
    stale: list[bytes] = []

    async def one_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        # Promises keep-alive, then closes as soon as the next request arrives unanswered:
        # the moment a server's idle timeout and a reused connection cross.
        await read_request(reader, server)
        writer.write(response(OK_BODY))
        await writer.drain()
        if first_byte := await reader.read(1):
            stale.append(first_byte)

    async with raw_server(one_then_close) as server, client() as upstream:
        target = target_for(server)
        for _ in range(20):
            assert (await upstream.send(target, b"{}", timeout=5)).body == OK_BODY
        # Every reuse met a closing server and was retried once on a fresh connection.
        assert len(stale) == 19
        assert server.connections == 20
        assert len(server.requests) == 20


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried() -> None:
    async def drop(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)

    async with raw_server(drop) as server, client() as upstream:
        with pytest.raises(UpstreamError, match="closed the connection"):
            await upstream.send(target_for(server), b"{}", timeout=5)
        assert server.connections == 1


# --- max_connections ------------------------------------------------------------------------------


def slow_server(delay_gate: asyncio.Event) -> Script:
    """Answers each request once ``delay_gate`` is set (kept set by the test when it should flow)."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            await delay_gate.wait()
            writer.write(response(OK_BODY))
            await writer.drain()

    return script


async def test_no_more_than_max_connections_are_open_to_one_endpoint() -> None:
    gate = asyncio.Event()
    async with raw_server(slow_server(gate)) as server, client() as upstream:
        target = target_for(server, max_connections=2)
        calls = [asyncio.ensure_future(upstream.send(target, b"{}", timeout=10)) for _ in range(10)]
        await wait_until(lambda: len(server.requests) == 2, what="two requests upstream")
        assert target.slots.busy == 2
        gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*calls), 10)
        assert all(answer.body == OK_BODY for answer in answers)
        assert server.peak_active <= 2
        assert server.connections <= 2
        assert target.slots.busy == 0


async def test_a_request_that_finds_every_connection_busy_gives_up_at_its_timeout() -> None:
    gate = asyncio.Event()
    async with raw_server(slow_server(gate)) as server, client() as upstream:
        target = target_for(server, max_connections=1)
        gate.set()
        first = await upstream.open_stream(target, b"{}", timeout=5, read_timeout=5)
        with pytest.raises(EndpointSaturated) as caught:
            await upstream.send(target, b"{}", timeout=0.2)
        assert str(caught.value) == (
            f"raw-model at {server.base_url}: all 1 connections (max_connections) stayed busy "
            "for 0.2 s"
        )
        assert not caught.value.counts_against_health
        assert await first.read_rest() == OK_BODY
        first.release()
        assert (await upstream.send(target, b"{}", timeout=5)).body == OK_BODY


async def test_a_probe_that_finds_every_connection_busy_says_saturated_at_once() -> None:
    # Waiting for a slot as long as the prober's own timeout would race that timeout and turn a
    # busy endpoint into "probe timed out", a health failure.
    gate = asyncio.Event()
    async with raw_server(slow_server(gate)) as server, client() as upstream:
        target = target_for(server, max_connections=1)
        busy = asyncio.ensure_future(upstream.send(target, b"{}", timeout=10))
        await wait_until(lambda: len(server.requests) == 1, what="the request upstream")
        with pytest.raises(EndpointSaturated) as caught:
            # At once: within 5 s although the probe's own timeout is 30 s.
            await asyncio.wait_for(upstream.probe(target, timeout=30), 5)
        gate.set()
        assert (await busy).body == OK_BODY

    assert not caught.value.counts_against_health
    assert "busy serving requests; not probed" in str(caught.value)
    assert len(server.requests) == 1


async def test_cancelled_waiters_leave_no_slot_behind() -> None:
    gate = asyncio.Event()
    async with raw_server(slow_server(gate)) as server, client() as upstream:
        target = target_for(server, max_connections=3)
        calls = [asyncio.ensure_future(upstream.send(target, b"{}", timeout=30)) for _ in range(30)]
        await wait_until(lambda: len(server.requests) == 3, what="three requests upstream")
        for call in calls:
            call.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(result, asyncio.CancelledError) for result in results)
        assert target.slots.busy == 0
        gate.set()
        again = [upstream.send(target, b"{}", timeout=5) for _ in range(3)]
        answers = await asyncio.wait_for(asyncio.gather(*again), 10)
        assert [answer.body for answer in answers] == [OK_BODY] * 3


# --- out of file descriptors ---------------------------------------------------------------------


@contextlib.contextmanager
def no_file_descriptors_left() -> Iterator[None]:
    """Lower the soft fd limit and fill every free descriptor below it; restore afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = [int(name) for name in os.listdir("/proc/self/fd")]
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(used) + 8, hard))
    held: list[int] = []
    try:
        with contextlib.suppress(OSError):
            while len(held) < 1000:
                held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_running_out_of_file_descriptors_is_the_routers_overload_not_the_upstreams() -> None:
    async with raw_server(status_server("200 OK")) as server, client() as upstream:
        target = target_for(server)
        with no_file_descriptors_left(), pytest.raises(ServerOverloaded) as caught:
            await upstream.send(target, b"{}", timeout=5)
        assert not isinstance(caught.value, UpstreamError)
        assert caught.value.reason == "file_descriptors"
        assert caught.value.retry_after == 1
        assert "ran out of file descriptors" in str(caught.value)
        assert "ulimit -n" in str(caught.value)
        assert target.slots.busy == 0
        assert (await upstream.send(target, b"{}", timeout=5)).status == 200


# --- compression --------------------------------------------------------------------------------


def compressed_server(encoding: str, payload: bytes, *, chunked: bool = False) -> Script:
    """Answers with ``payload`` compressed as ``encoding`` (asked for identity or not)."""
    if encoding == "gzip":
        wire = gzip.compress(payload)
    elif encoding == "deflate":
        wire = zlib.compress(payload)
    else:
        wire = payload

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while (request := await read_request(reader, server)) is not None:
            assert request.header("accept-encoding") == "identity"
            if not chunked:
                writer.write(response(wire, headers=(f"Content-Encoding: {encoding}",)))
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Content-Encoding: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                    % encoding.encode()
                )
                for start in range(0, len(wire), 7):
                    writer.write(chunk(wire[start : start + 7]))
                    await writer.drain()
                writer.write(LAST_CHUNK)
            await writer.drain()

    return script


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
async def test_a_compressed_answer_is_decoded_and_the_connection_reused(encoding: str) -> None:
    async with (
        raw_server(compressed_server(encoding, OK_BODY)) as server,
        client() as upstream,
    ):
        target = target_for(server)
        for _ in range(2):
            assert (await upstream.send(target, b"{}", timeout=5)).body == OK_BODY
        assert server.connections == 1


async def test_a_compressed_stream_is_decoded_chunk_by_chunk() -> None:
    events = b"".join(b'data: {"n":%d}\n\n' % n for n in range(200)) + b"data: [DONE]\n\n"
    async with (
        raw_server(compressed_server("gzip", events, chunked=True)) as server,
        client() as upstream,
    ):
        target = target_for(server)
        stream = await upstream.open_stream(target, b"{}", timeout=5, read_timeout=5)
        received = b""
        while piece := await stream.next_chunk():
            received += piece
        assert received == events
        assert stream.at_eof()
        stream.release()
        assert upstream.idle_connections(target) == 1


async def test_a_zip_bomb_counts_its_decoded_size() -> None:
    bomb = b"\0" * (50 * LIMIT)  # 3.2 MB of zeros, a few KiB on the wire
    async with (
        raw_server(compressed_server("gzip", bomb)) as server,
        client() as upstream,
    ):
        with pytest.raises(ResponseTooLarge):
            await upstream.send(target_for(server), b"{}", timeout=5)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
async def test_an_encoding_we_do_not_decode_is_a_bad_response(encoding: str) -> None:
    async with (
        raw_server(compressed_server(encoding, OK_BODY)) as server,
        client() as upstream,
    ):
        with pytest.raises(BadUpstreamResponse) as caught:
            await upstream.send(target_for(server), b"{}", timeout=5)
        assert str(caught.value) == (
            f"raw-model at {server.base_url} answered with Content-Encoding: {encoding} "
            "although asked for identity"
        )


async def test_a_corrupt_gzip_body_is_a_protocol_error() -> None:
    async def corrupt(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(response(b"not gzip at all", headers=("Content-Encoding: gzip",)))
        await writer.drain()

    async with raw_server(corrupt) as server, client() as upstream:
        with pytest.raises(UpstreamError, match="undecodable compressed body"):
            await upstream.send(target_for(server), b"{}", timeout=5)


# --- the router as a process: memory stays bounded -------------------------------------------


CHAT = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
GOOD_ANSWER = (
    b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}]}'
)
GIGABYTE = 1024**3


def garbage_upstream(sent: list[int]) -> Script:
    """Answers chat requests with 200 and up to 1 GB of chunked garbage; probes well."""

    async def garbage(request: Request, writer: asyncio.StreamWriter) -> None:
        await flood(writer, ENDLESS_HEAD, b"\x07", sent, GIGABYTE)

    return chat_script(garbage)


def good_upstream(request_log: list[Request]) -> Script:
    """Answers every chat request with a small valid completion."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        request_log.append(request)
        writer.write(response(GOOD_ANSWER))
        await writer.drain()

    return chat_script(answer)


async def baseline_rss(router_pid: int, url: str, session: aiohttp.ClientSession) -> int:
    """The router's peak RSS after start-up and one ordinary request (imports, pools warm)."""
    async with session.get(url + "/health") as warm:
        await warm.read()
    return peak_rss_bytes(router_pid)


async def test_the_router_process_survives_an_endless_answer_with_bounded_memory() -> None:
    sent = [0]
    async with (
        raw_server(garbage_upstream(sent)) as flood,
        router_process(config_toml([flood.base_url])) as router,
        aiohttp.ClientSession() as session,
    ):
        before = await baseline_rss(router.pid, router.url, session)
        async with session.post(router.v1 + "/chat/completions", json=CHAT) as answer:
            status = answer.status
            body = await answer.json()
        peak = peak_rss_bytes(router.pid)
        assert status == 502, body
        assert body["error"]["code"] == "upstream_response_too_large"
        assert "limits.max_response_bytes" in body["error"]["message"]
        assert sent[0] < GIGABYTE / 4, "the router kept reading"
        assert peak - before < 100 * 1024 * 1024, (peak - before) / 1e6


async def test_an_endless_answer_fails_over_to_a_healthy_instance() -> None:
    sent = [0]
    answered: list[Request] = []
    async with (
        raw_server(garbage_upstream(sent)) as flood,
        raw_server(good_upstream(answered)) as good,
    ):
        config = config_toml([flood.base_url, good.base_url])  # the flood has priority
        async with router_process(config) as router, aiohttp.ClientSession() as session:
            before = await baseline_rss(router.pid, router.url, session)
            async with session.post(router.v1 + "/chat/completions", json=CHAT) as answer:
                assert answer.status == 200, await answer.text()
                assert answer.headers["x-octoroute-endpoint"] == "fast-1"
                assert (await answer.read()) == GOOD_ANSWER
            assert peak_rss_bytes(router.pid) - before < 100 * 1024 * 1024
        assert sent[0] > 0
        assert len(answered) == 1

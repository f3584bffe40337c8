"""The upstream HTTP/1.1 client against scripted raw TCP servers on 127.0.0.1.

The simulator speaks well-formed HTTP through aiohttp; these servers write exact bytes, so the
framing cases a real model server can produce (chunked, close-delimited, ``Connection: close``,
garbage, drops, stalls) are each pinned by a test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from octoroute.config.schema import EndpointConfig, Secret
from octoroute.enums import Pool
from octoroute.errors import (
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from octoroute.upstream.client import Target, UpstreamClient
from tests.harness import wait_until

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]
OK_BODY = b'{"id":"x","object":"chat.completion","choices":[]}'


@dataclass
class RawServer:
    """A TCP server running ``script`` per connection, recording what it received."""

    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed_by_peer: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def target(self, *, base: str | None = None, api_key: str | None = None) -> Target:
        """A target for this server, as the runtime builds one from the configuration."""
        return Target(
            EndpointConfig(
                pool=Pool.FAST,
                index=0,
                name="raw-model",
                base_url=base or f"http://127.0.0.1:{self.port}/v1",
                max_tokens=64,
                api_key=Secret(api_key) if api_key else None,
            )
        )


async def read_request(reader: asyncio.StreamReader, server: RawServer) -> bytes | None:
    """One request (head and Content-Length body), or None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        server.closed_by_peer.set()
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    request = head + await reader.readexactly(length)
    server.requests.append(request)
    return request


def response(body: bytes, *, status: str = "200 OK", extra: bytes = b"") -> bytes:
    """A Content-Length framed JSON response."""
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status.encode(),
        len(body),
        extra,
        body,
    )


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[RawServer]:
    """Serve ``script`` on a free port for the duration of the block."""
    state = RawServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            await script(reader, writer, state)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def client() -> AsyncIterator[UpstreamClient]:
    """An opened client, closed afterwards."""
    upstream = UpstreamClient()
    await upstream.open()
    try:
        yield upstream
    finally:
        await upstream.close()


async def keep_alive_json(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    while await read_request(reader, server) is not None:
        writer.write(response(OK_BODY))
        await writer.drain()


async def test_keep_alive_connection_is_reused_for_the_next_request() -> None:
    async with raw_server(keep_alive_json) as server, client() as upstream:
        target = server.target()
        for _ in range(3):
            answer = await upstream.send(target, b'{"model":"m"}', timeout=5)
            assert answer.status == 200
            assert answer.body == OK_BODY
            assert answer.content_type == "application/json"
        assert server.connections == 1
        assert len(server.requests) == 3
        assert upstream.idle_connections(target) == 1


async def test_request_head_carries_host_length_and_bearer_key() -> None:
    async with raw_server(keep_alive_json) as server, client() as upstream:
        await upstream.send(server.target(api_key="sk-test"), b'{"model":"m"}', timeout=5)
        head = server.requests[0].decode()
        assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{server.port}\r\n" in head
        assert "Content-Length: 13\r\n" in head
        assert "Authorization: Bearer sk-test\r\n" in head
        assert "Content-Type: application/json\r\n" in head
        assert head.endswith('\r\n\r\n{"model":"m"}')


async def test_userinfo_in_base_url_becomes_basic_auth_and_stays_out_of_messages() -> None:
    async def refuse(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(response(b'{"error":"no"}', status="503 Service Unavailable"))
        await writer.drain()

    async with raw_server(refuse) as server, client() as upstream:
        target = server.target(base=f"http://alice:s%40cret@127.0.0.1:{server.port}/v1")
        with pytest.raises(UpstreamStatusError) as caught:
            await upstream.send(target, b"{}", timeout=5)
        head = server.requests[0].decode()
        assert "Authorization: Basic YWxpY2U6c0BjcmV0\r\n" in head  # alice:s@cret
        assert "cret" not in caught.value.message
        assert "alice" not in target.label


async def test_chunked_stream_hands_over_each_chunk_as_it_arrives() -> None:
    async def chunked(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(b"6\r\ndata: \r\n")
        await writer.drain()
        await server.release.wait()
        writer.write(b"5\r\nhello\r\n0\r\n\r\n")
        await writer.drain()
        await read_request(reader, server)

    async with raw_server(chunked) as server, client() as upstream:
        stream = await upstream.open_stream(server.target(), b"{}", timeout=5, read_timeout=5)
        assert stream.status == 200
        assert stream.content_type == "text/event-stream"
        assert await stream.next_chunk() == b"data: "
        assert not stream.at_eof()
        server.release.set()
        assert await stream.next_chunk() == b"hello"
        assert await stream.next_chunk() == b""
        assert stream.at_eof()
        stream.release()


async def test_body_without_framing_runs_until_close_and_is_not_reused() -> None:
    async def close_delimited(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + OK_BODY)
        await writer.drain()

    async with raw_server(close_delimited) as server, client() as upstream:
        for _ in range(2):
            answer = await upstream.send(server.target(), b"{}", timeout=5)
            assert answer.body == OK_BODY
        assert server.connections == 2


async def test_connection_close_header_is_honoured() -> None:
    async def closing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            writer.write(response(OK_BODY, extra=b"Connection: close\r\n"))
            await writer.drain()

    async with raw_server(closing) as server, client() as upstream:
        for _ in range(2):
            assert (await upstream.send(server.target(), b"{}", timeout=5)).body == OK_BODY
        assert server.connections == 2


async def test_connection_closed_by_the_upstream_while_idle_is_not_reused() -> None:
    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        # Says nothing of closing, then closes: as a server whose keep-alive expired does.
        await read_request(reader, server)
        writer.write(response(OK_BODY))
        await writer.drain()

    async with raw_server(one_per_connection) as server, client() as upstream:
        target = server.target()
        assert (await upstream.send(target, b"{}", timeout=5)).body == OK_BODY
        await wait_until(lambda: upstream.idle_connections(target) == 0, what="idle close seen")
        answer = await upstream.send(target, b"{}", timeout=5)
        assert answer.body == OK_BODY


@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [
        (b"", UpstreamConnectError, "closed the connection"),
        (b"SPDY/9 hello\r\n\r\n", UpstreamProtocolError, "invalid HTTP response"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{",
            UpstreamProtocolError,
            "cut short",
        ),
    ],
    ids=["drop-before-response", "garbage", "drop-mid-body"],
)
async def test_broken_responses_map_to_upstream_errors(
    reply: bytes, error: type[Exception], words: str
) -> None:
    async def broken(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(reply)
        await writer.drain()

    async with raw_server(broken) as server, client() as upstream:
        with pytest.raises(error) as caught:
            await upstream.send(server.target(), b"{}", timeout=5)
        assert words in str(caught.value)
        assert "raw-model at http://127.0.0.1" in str(caught.value)


async def test_error_status_keeps_its_body_and_drops_the_connection() -> None:
    async def failing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            writer.write(
                response(b'{"error":{"message":"busy"}}', status="500 Internal Server Error")
            )
            await writer.drain()

    async with raw_server(failing) as server, client() as upstream:
        for _ in range(2):
            with pytest.raises(UpstreamStatusError) as caught:
                await upstream.send(server.target(), b"{}", timeout=5)
            assert caught.value.upstream_status == 500
            assert caught.value.body == b'{"error":{"message":"busy"}}'
            assert caught.value.content_type == "application/json"
        assert server.connections == 2


async def test_connect_refused_is_a_connect_error() -> None:
    async with raw_server(keep_alive_json) as server:
        target = server.target()
    async with client() as upstream:
        with pytest.raises(UpstreamConnectError, match="cannot connect"):
            await upstream.send(target, b"{}", timeout=5)


async def stall_after_one_chunk(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    await read_request(reader, server)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n"
    )
    await writer.drain()
    await server.release.wait()


async def test_stream_that_goes_quiet_times_out_between_reads() -> None:
    async with raw_server(stall_after_one_chunk) as server, client() as upstream:
        stream = await upstream.open_stream(server.target(), b"{}", timeout=5, read_timeout=0.2)
        assert await stream.next_chunk() == b"hi"
        with pytest.raises(UpstreamTimeout, match="waiting for data"):
            await asyncio.wait_for(stream.next_chunk(), 5)
        stream.close()
        server.release.set()


async def test_buffered_request_times_out_as_a_whole_and_hangs_up() -> None:
    async def partial(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{")
        await writer.drain()
        await read_request(reader, server)  # returns None once the client hangs up

    async with raw_server(partial) as server, client() as upstream:
        with pytest.raises(UpstreamTimeout, match=r"no complete answer within 0\.2 s"):
            await asyncio.wait_for(upstream.send(server.target(), b"{}", timeout=0.2), 5)
        await asyncio.wait_for(server.closed_by_peer.wait(), 5)


async def test_cancelled_request_closes_its_connection_so_the_upstream_stops() -> None:
    async def slow(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        await read_request(reader, server)  # returns None once the client hangs up

    async with raw_server(slow) as server, client() as upstream:
        pending = asyncio.ensure_future(upstream.send(server.target(), b"{}", timeout=30))
        await wait_until(lambda: len(server.requests) == 1)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await asyncio.wait_for(server.closed_by_peer.wait(), 5)


async def test_large_stream_survives_back_pressure_intact() -> None:
    piece = b"x" * 65536
    count = 40  # 2.5 MiB: far above the point where the client stops reading the socket

    async def big(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        await read_request(reader, server)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(count):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await read_request(reader, server)

    async with raw_server(big) as server, client() as upstream:
        stream = await upstream.open_stream(server.target(), b"{}", timeout=5, read_timeout=5)
        received = 0
        while chunk := await stream.next_chunk():
            assert set(chunk) == {ord("x")}
            received += len(chunk)
        assert received == len(piece) * count
        assert stream.at_eof()
        stream.release()


async def test_probe_gets_models_and_reuses_the_connection() -> None:
    async with raw_server(keep_alive_json) as server, client() as upstream:
        for _ in range(2):
            await upstream.probe(server.target(), timeout=5)
        assert server.requests[0].startswith(b"GET /v1/models HTTP/1.1\r\n")
        assert server.connections == 1

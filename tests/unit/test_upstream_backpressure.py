"""Writing to a client that falls behind: waited for while it takes bytes, dropped when it
takes none for the timeout. A fake transport stands for the client's connection (its write
buffer) and a fake response for aiohttp's, whose writes wait until the test lets them end."""

from __future__ import annotations

import asyncio

import pytest

from octoroute.upstream.backpressure import UNWATCHED_WRITE_BYTES, ClientStalled, ClientWriter


class Transport:
    """The client's connection: how many bytes wait in its write buffer."""

    def __init__(self, buffered: int = 0) -> None:
        self.buffered = buffered
        self.drained = asyncio.Event()

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def take(self, count: int) -> None:
        """The client reads ``count`` bytes."""
        self.buffered = max(0, self.buffered - count)
        if not self.buffered:
            self.drained.set()

    async def drain(self) -> None:
        if self.buffered:
            self.drained.clear()
            await self.drained.wait()


class Response:
    """A response whose writes add to the transport's buffer and, when ``blocking``, wait (as
    aiohttp's drain does) until the buffer is empty."""

    def __init__(self, transport: Transport, *, blocking: bool = False) -> None:
        self.transport = transport
        self.blocking = blocking
        self.written: list[bytes] = []
        self.ended = False

    async def write(self, data: bytes) -> None:
        self.written.append(data)
        self.transport.buffered += len(data)
        if self.blocking:
            await self.transport.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        if self.blocking:
            await self.transport.drain()
        self.ended = True


def test_a_small_write_to_a_client_that_keeps_up_goes_unwatched() -> None:
    transport = Transport()
    writer = ClientWriter(transport, 1.0)

    assert writer.keeping_up(100)
    assert not writer.keeping_up(UNWATCHED_WRITE_BYTES), "a large write may fill the buffer"
    transport.buffered = 10
    assert not writer.keeping_up(100), "a client with unsent bytes is watched"


async def test_a_client_that_takes_nothing_is_stalled_after_the_timeout() -> None:
    transport = Transport(buffered=70_000)
    response = Response(transport, blocking=True)
    writer = ClientWriter(transport, 0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(ClientStalled, match=r"read nothing of its answer for 0\.05 s"):
        await asyncio.wait_for(writer.write(response, b"x" * 100), 2)

    assert loop.time() - started >= 0.04
    assert response.written == [b"x" * 100], "the bytes were handed over before the wait"


async def test_a_client_that_keeps_taking_bytes_is_waited_for_past_the_timeout() -> None:
    transport = Transport(buffered=70_000)
    response = Response(transport, blocking=True)
    writer = ClientWriter(transport, 0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def slow_reader() -> None:
        while transport.buffered:
            await asyncio.sleep(0.02)  # less than the timeout between two bites
            transport.take(10_000)

    reader = asyncio.create_task(slow_reader())
    await asyncio.wait_for(writer.write(response, b"x" * 100), 2)
    await reader

    assert loop.time() - started > 0.05, "it waited longer than the timeout in all"


async def test_a_quiet_stream_notices_a_stalled_client_without_writing() -> None:
    transport = Transport(buffered=500)
    writer = ClientWriter(transport, 0.05)

    writer.check()  # behind, but within its time
    await asyncio.sleep(0.06)

    with pytest.raises(ClientStalled):
        writer.check()
    transport.take(500)
    writer.check()  # caught up: nothing waits for it


async def test_the_end_of_a_stream_waits_for_the_client_no_longer_than_the_timeout() -> None:
    transport = Transport()
    response = Response(transport, blocking=True)
    writer = ClientWriter(transport, 0.05)
    await writer.finish(response)
    assert response.ended

    transport.buffered = 1000
    response.ended = False
    with pytest.raises(ClientStalled):
        await asyncio.wait_for(writer.finish(response), 2)
    assert not response.ended


async def test_a_writer_without_a_transport_writes_as_is() -> None:
    response = Response(Transport())
    writer = ClientWriter(None, 0.05)

    assert writer.keeping_up(100)
    await writer.write(response, b"x" * UNWATCHED_WRITE_BYTES)
    await writer.finish(response)

    assert response.ended

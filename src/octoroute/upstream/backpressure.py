"""Writing a stream to its client, bounded: a client that stops reading cannot hold it for ever.

aiohttp waits for the client whenever unsent bytes pile up (``write`` drains past 64 KiB, and the
end of the response always does), and it never gives up: a client that stays connected and
reads nothing would keep the stream's slot, its upstream request (the GPU keeps generating) and
the buffered bytes until it closed the connection. Here the client gets ``timeout`` seconds
(the tier's, what an upstream gets between two reads) to take *something* of its unsent bytes;
one that takes nothing for that long is :class:`ClientStalled`, which the relay treats as a
client that left. A slow client that keeps reading, however slowly, is never cut.

Progress is read from the client's transport (its write buffer shrank since the last look), and
only while that buffer holds something: a client that keeps up costs one call per write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Final, Protocol

UNWATCHED_WRITE_BYTES: Final = 16384
"""A write to a client whose buffer is empty is watched only from this size up: a smaller one
cannot push the buffer past its high-water mark (64 KiB), so it never waits for the client."""


class ClientStalled(ConnectionResetError):
    """The client of a stream took none of its answer for the timeout while unsent bytes waited:
    treated as gone (its connection is closed, the upstream request dropped)."""


class Buffered(Protocol):
    """What is read of the client's transport (asyncio's and uvloop's alike)."""

    def get_write_buffer_size(self) -> int: ...


class Writable(Protocol):
    """The response being streamed (``aiohttp.web.StreamResponse``)."""

    async def write(self, data: bytes) -> None: ...

    async def write_eof(self, data: bytes = b"") -> None: ...


class ClientWriter:
    """Writes one stream's bytes to its client, waiting for it only while it makes progress."""

    __slots__ = ("_behind_since", "_expected", "timeout", "transport")

    def __init__(self, transport: Buffered | None, timeout: float) -> None:
        self.transport = transport
        """The client's connection; ``None``: nothing to watch (it is gone already)."""
        self.timeout = timeout
        self._behind_since: float | None = None
        """Loop time since which unsent bytes have waited without the client taking any."""
        self._expected = 0
        """The write buffer's size at the next look if the client takes nothing meanwhile."""

    def keeping_up(self, size: int) -> bool:
        """Whether a write of ``size`` bytes may go unwatched (the client's buffer is empty and
        ``size`` small), its bookkeeping done; else the caller uses :meth:`write`. The relay's
        per-event check, cheaper than a call of :meth:`write`."""
        transport = self.transport
        if size >= UNWATCHED_WRITE_BYTES or (
            transport is not None and transport.get_write_buffer_size()
        ):
            return False
        self._behind_since = None
        self._expected = size
        return True

    def check(self) -> None:
        """``ClientStalled`` when the client has taken nothing for ``timeout`` seconds; called
        while the upstream is quiet, when nothing is written."""
        left = self._look()
        if left is not None and left <= 0:
            raise self._stalled()

    async def write(self, response: Writable, data: bytes) -> None:
        """Write ``data``, waiting for the client only while it keeps taking bytes."""
        left = self._look()
        if left is not None and left <= 0:
            raise self._stalled()
        self._expected += len(data)
        if left is None and len(data) >= UNWATCHED_WRITE_BYTES:
            left = self.timeout  # this write alone may fill the buffer and wait
        if left is None:
            await response.write(data)
        else:
            await self._within(response.write(data), left)

    async def finish(self, response: Writable) -> None:
        """End the response, waiting for the client only while it keeps taking bytes."""
        left = self._look()
        if left is None:
            await response.write_eof()
            return
        if left <= 0:
            raise self._stalled()
        await self._within(response.write_eof(), left)

    def _look(self) -> float | None:
        """Seconds the client has left to take some of its unsent bytes (``<= 0``: none left),
        or ``None`` when nothing waits for it."""
        transport = self.transport
        size = 0 if transport is None else transport.get_write_buffer_size()
        if not size:
            self._behind_since = None
            self._expected = 0
            return None
        now = asyncio.get_running_loop().time()
        if self._behind_since is None or size < self._expected:
            self._behind_since = now  # behind, but it took something since the last look
        self._expected = size
        return self._behind_since + self.timeout - now

    async def _within(self, write: Awaitable[None], left: float) -> None:
        """Await ``write`` (which may wait for the client to drain its buffer), looking again
        each time the client's time runs out: one that took something meanwhile has another
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        try:
            async with asyncio.timeout(None) as deadline:

                def look() -> None:
                    nonlocal timer
                    remaining = self._look()
                    if remaining is not None and remaining <= 0:
                        deadline.reschedule(loop.time())
                        return
                    timer = loop.call_later(remaining or self.timeout, look)

                timer = loop.call_later(left, look)
                await write
        except TimeoutError:
            raise self._stalled() from None
        finally:
            if timer is not None:
                timer.cancel()

    def _stalled(self) -> ClientStalled:
        return ClientStalled(f"the client read nothing of its answer for {self.timeout:g} s")

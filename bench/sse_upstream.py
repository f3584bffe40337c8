"""A tiny, fast fake model server for streams: raw asyncio ``Protocol`` on uvloop.

nginx cannot space events in time, and the project's simulator costs more CPU per event than the
proxy under test would, so it would be the bottleneck. This server parses just enough HTTP/1.1
(request line, ``Content-Length``, keep-alive) to answer:

- ``GET /v1/models``: the models list (the router's health probe);
- ``POST /v1/chat/completions`` with ``"stream": true``: ``bench_events`` SSE chunk events
  ``bench_gap_ms`` apart (extra body fields the router forwards untouched; the defaults come from
  the command line), then ``[DONE]``, chunked-encoded like a real server;
- the same without ``stream``: the fixed 947-byte completion.

``python -m bench.sse_upstream --port 18082 [--events 16 --gap-ms 2 --max-seconds 900]``
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Final, cast

import orjson
import uvloop

from bench.payloads import COMPLETION, MODELS, SSE_DONE, sse_event

_MAX_EVENTS: Final = 10_000
_JSON_HEAD: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
)
_SSE_HEAD: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_NOT_FOUND: Final = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_EVENTS: Final = [sse_event(i) for i in range(256)]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Upstream(asyncio.Protocol):
    """One keep-alive client connection; requests are answered one at a time, in order."""

    def __init__(self, events: int, gap: float) -> None:
        self._events = events
        self._gap = gap
        self._buffer = b""
        self._transport: asyncio.WriteTransport | None = None
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not a subclass of asyncio.Transport; it has the same methods.
        self._transport = cast("asyncio.WriteTransport", transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._next()

    def _next(self) -> None:
        while not self._busy and self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            self._answer(head[0].split(" "), body)

    def _answer(self, line: list[str], body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        method, path = line[0], line[1] if len(line) > 1 else ""
        if method == "GET" and path.endswith("/models"):
            transport.write(_JSON_HEAD % len(MODELS) + MODELS)
            return
        if method != "POST" or not path.endswith("/chat/completions"):
            transport.write(_NOT_FOUND)
            return
        request = orjson.loads(body) if body else {}
        if not request.get("stream"):
            transport.write(_JSON_HEAD % len(COMPLETION) + COMPLETION)
            return
        events = min(_MAX_EVENTS, int(request.get("bench_events", self._events)))
        gap = float(request.get("bench_gap_ms", self._gap * 1000)) / 1000
        self._busy = True
        asyncio.get_running_loop().create_task(self._stream(events, gap))

    async def _stream(self, events: int, gap: float) -> None:
        try:
            transport = self._transport
            if transport is None:
                return
            if gap <= 0:  # bulk: everything in one write, as a fast local model server does
                parts = b"".join(_chunk(_EVENTS[i % len(_EVENTS)]) for i in range(events))
                transport.write(_SSE_HEAD + parts + _chunk(SSE_DONE) + b"0\r\n\r\n")
                return
            transport.write(_SSE_HEAD + _chunk(_EVENTS[0]))
            for index in range(1, events):
                await asyncio.sleep(gap)
                if self._transport is None:
                    return
                transport.write(_chunk(_EVENTS[index % len(_EVENTS)]))
            await asyncio.sleep(gap)
            if self._transport is not None:
                transport.write(_chunk(SSE_DONE) + b"0\r\n\r\n")
        finally:
            self._busy = False
            self._next()


async def serve(port: int, events: int, gap: float, max_seconds: float) -> None:
    """Serve on ``127.0.0.1:port`` for at most ``max_seconds`` (the harness stops it sooner)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Upstream(events, gap), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await asyncio.sleep(max_seconds)


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench.sse_upstream")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=int, default=16)
    parser.add_argument("--gap-ms", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.events, args.gap_ms / 1000, args.max_seconds))


if __name__ == "__main__":
    main()

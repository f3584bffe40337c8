"""A lean HTTP/1.1 client for the upstream leg: keep-alive connections, nothing else.

Why not aiohttp's ``ClientSession`` here: on this hot path it was three quarters of the router's
CPU per request (``research/stack.md`` §A3), spent on machinery a router never uses (cookies,
redirects, auth helpers, per-request URL and header merging, a stream reader per response).
Our upstreams are OpenAI-compatible servers answering one POST at a time on a keep-alive
connection, so this module does exactly that: a pre-rendered request head per endpoint, one
``asyncio.Protocol`` per connection, the C parser from ``httptools`` (the one uvicorn uses) and
an idle stack per origin.

The module knows HTTP, not our error tree: it raises ``ConnectionClosed``, ``MalformedResponse``
and ``ReadTimeout``; ``upstream.client`` maps them (and ``OSError`` from connecting) to
``octoroute.errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Final, cast
from urllib.parse import urlsplit

import httptools

MAX_HEADER_BYTES: Final = 64 * 1024
"""The most bytes an upstream may send without the parser completing one header line (or the
head, or a body piece): httptools grows a header value by concatenation, so an endless header
line would cost quadratic CPU and unbounded memory until the read timeout."""
PAUSE_READING_BYTES: Final = 256 * 1024
"""Unread body bytes above which the socket stops being read (back-pressure on the upstream)."""


class ConnectionClosed(Exception):
    """The upstream closed the connection before the response was complete."""

    def __init__(self, *, got_bytes: bool) -> None:
        super().__init__("closed the connection")
        self.got_bytes = got_bytes
        """Some of this response had arrived: the upstream did see the request."""


class MalformedResponse(Exception):
    """The upstream's bytes are not an HTTP/1.x response."""


class ReadTimeout(Exception):
    """No bytes arrived within the read timeout."""


class Origin:
    """Scheme, host and port of an endpoint, with what connecting to it needs.

    ``tls_context`` is the endpoint's own TLS settings (``None``: the pool's shared default);
    ``tls_key`` tells settings apart, so endpoints that trust different CAs or present different
    client certificates never share a pooled connection.
    """

    __slots__ = ("host", "host_header", "key", "port", "tls", "tls_context")

    def __init__(
        self,
        url: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        tls_key: tuple[object, ...] = (),
    ) -> None:
        parts = urlsplit(url)
        self.tls: Final = parts.scheme == "https"
        self.host: Final = parts.hostname or "localhost"
        self.port: Final = parts.port or (443 if self.tls else 80)
        default_port = 443 if self.tls else 80
        bracketed = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header: Final = (
            bracketed if self.port == default_port else f"{bracketed}:{self.port}"
        )
        self.tls_context: Final = tls_context
        self.key: Final[tuple[object, ...]] = (self.tls, self.host, self.port, *tls_key)


def request_head(method: str, url: str, origin: Origin, headers: dict[str, str]) -> bytes:
    """The request line and fixed header lines (each ending in CRLF), rendered once per
    endpoint; ``Connection.send`` adds the per-request lines and ``Content-Length``."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return "".join(line + "\r\n" for line in lines).encode("latin-1")


class Connection(asyncio.Protocol):
    """One keep-alive connection, carrying one request/response exchange at a time.

    The protocol callbacks collect the response; the awaiting side reads it through
    ``head()`` and ``read_some()``. The body is buffered in arrival order and handed over in
    whatever pieces arrived, so a stream is relayed as it comes; above ``PAUSE_READING_BYTES``
    unread, the socket is not read until the reader catches up, so memory stays bounded however
    much an upstream sends.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Connection], None]
    ) -> None:
        self._loop = loop
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.served = 0
        """Responses completed on this connection: above zero, it came from the pool."""
        self.idle_since = 0.0
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.content_type = ""
        self.content_encoding = ""
        """Lower-cased ``Content-Encoding`` (``""`` when absent)."""
        self.content_length: int | None = None
        self.retry_after: str | None = None
        """The raw ``Retry-After`` value, kept only for the statuses that use it."""
        self.complete = False
        self.keep_alive = False
        self._header_name = b""
        self._framed = False
        self._got_bytes = False
        self._headers_done = False
        self._unparsed = 0
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._read_timeout: float | None = None
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._head_bytes = 0
        """Bytes received before the response head ended (bounded by ``MAX_HEADER_BYTES``)."""

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but they are ones.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        self._last_data = self._loop.time()
        if self.complete:
            # Bytes after a complete response: the connection's framing can no longer be trusted.
            self._fail(MalformedResponse("data after the end of the response"))
            return
        self._unparsed += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(MalformedResponse(f"invalid HTTP response ({error})"))
            return
        except httptools.HttpParserUpgrade:
            self._fail(MalformedResponse("unexpected protocol upgrade"))
            return
        if self._unparsed > MAX_HEADER_BYTES:
            # Every callback below resets the count: only bytes that complete nothing add up.
            self._fail(
                MalformedResponse(f"sent over {MAX_HEADER_BYTES} bytes of an unfinished header")
            )
        elif not self._headers_done:
            # A head of endless short lines completes a header every few bytes: it is bounded
            # by its total size, or it would be read until the attempt's timeout.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._fail(
                    MalformedResponse(
                        f"sent a response head of over {MAX_HEADER_BYTES} bytes without ending it"
                    )
                )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(self)
        if self.complete:
            return
        if self._headers_done and not self._framed:
            # No Content-Length and not chunked: the body runs until the connection closes.
            self.complete = True
            self.keep_alive = False
            self._cancel_timer()
            self._wake()
            return
        if isinstance(exc, ssl.SSLError) and not self._got_bytes:
            # A TLS alert (a refused client certificate, say) says more than "closed".
            self._fail(exc)
            return
        self._fail(ConnectionClosed(got_bytes=self._got_bytes))

    def pause_writing(self) -> None:
        # Request bodies are written in one call and are small next to the socket buffers.
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._unparsed = 0
        # Only the few headers a router acts on are kept; the rest are never decoded.
        lowered = name.lower()
        if lowered == b"content-type":
            self.content_type = value.decode("latin-1")
        elif lowered == b"content-length":
            self._framed = True
            if value.isdigit():
                self.content_length = int(value)
        elif lowered == b"transfer-encoding":
            self._framed = True
        elif lowered == b"content-encoding":
            self.content_encoding = value.decode("latin-1").strip().lower()
        elif lowered == b"retry-after":
            self.retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._unparsed = 0
        self.status = self._parser.get_status_code()
        self._headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._unparsed = 0
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > PAUSE_READING_BYTES and not self._paused and self._transport:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._unparsed = 0
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._cancel_timer()
        self._wake()

    # --- the awaiting side --------------------------------------------------------------------

    def send(
        self, head: bytes, body: bytes, read_timeout: float | None, extra: bytes = b""
    ) -> None:
        """Write one request; ``read_timeout`` bounds every later wait for bytes.

        ``extra`` is header lines of this request alone (each ending in CRLF, already checked
        for header safety by the caller), e.g. the trace context.
        """
        if self.served:
            self._reset()
        self._read_timeout = read_timeout
        self._last_data = self._loop.time()
        assert self._transport is not None
        self._transport.write(b"%s%sContent-Length: %d\r\n\r\n%s" % (head, extra, len(body), body))

    async def head(self) -> None:
        """Wait for the status line and headers (``status`` and ``content_type`` then hold)."""
        while not self._headers_done:
            await self._wait()

    async def read_some(self) -> bytes:
        """The body bytes that have arrived (at least one), or ``b""`` once the body is done."""
        while not self._chunks:
            if self.complete:
                return b""
            await self._wait()
        if len(self._chunks) == 1:
            data = self._chunks.popleft()
        else:
            data = b"".join(self._chunks)
            self._chunks.clear()
        self._buffered = 0
        self._resume()
        return data

    def _resume(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            # The upstream was held back by us, not idle: its read timeout restarts now.
            self._last_data = self._loop.time()
            self._transport.resume_reading()

    @property
    def at_eof(self) -> bool:
        """The whole response was received and read."""
        return self.complete and not self._chunks

    @property
    def reusable(self) -> bool:
        """Whether the connection may carry another request."""
        return self.complete and self.keep_alive and not self.closed and not self._chunks

    def close(self) -> None:
        """Drop the connection now (the upstream sees the request abandoned)."""
        self.closed = True
        self._cancel_timer()
        if self._transport is not None:
            self._transport.close()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        waiter = self._loop.create_future()
        self._waiter = waiter
        if self._read_timeout is not None and self._deadline_timer is None:
            self._deadline_timer = self._loop.call_at(
                self._last_data + self._read_timeout, self._check_idle
            )
        try:
            await waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _check_idle(self) -> None:
        # One timer per wait, moved forward by the bytes that arrived meanwhile: cheaper than
        # rescheduling a timer on every read of a long stream.
        self._deadline_timer = None
        if self.complete or self._read_timeout is None:
            return
        if self._waiter is None:
            return  # nobody is waiting: the next wait arms a new timer from the last bytes
        due = self._last_data + self._read_timeout
        if self._loop.time() >= due:
            self._fail(ReadTimeout())
        else:
            self._deadline_timer = self._loop.call_at(due, self._check_idle)

    def _cancel_timer(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._cancel_timer()
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.close()
        self._wake()


class Slots:
    """At most ``limit`` connections busy at once for one endpoint; the rest wait in order.

    A slot is taken before a connection is acquired and given back once that connection is
    pooled or closed. A freed slot is handed straight to the longest waiter, so a burst cannot
    overtake requests already queued. Cancelled waiters leave the queue and never hold a slot.
    """

    __slots__ = ("_waiters", "busy", "limit")

    def __init__(self, limit: int) -> None:
        self.limit: Final = limit
        self.busy = 0
        """Slots held now."""
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free without waiting (the common case, no coroutine)."""
        if self.busy < self.limit and not self._waiters:
            self.busy += 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot; the caller bounds the wait (``asyncio.timeout``)."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # handed a slot in the same instant we were cancelled
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give_back(self) -> None:
        """Free a slot: hand it to the first live waiter, else count it free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; ``busy`` stays
                return
        self.busy -= 1


class Pool:
    """Idle keep-alive connections per origin, most recently used first."""

    def __init__(self, keepalive_seconds: float) -> None:
        self._keepalive = keepalive_seconds
        self._idle: dict[tuple[object, ...], deque[Connection]] = {}
        self._open: set[Connection] = set()
        self._tls_context: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        # Built on first use: loading the CA store takes milliseconds, most fleets are plain HTTP.
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context()
        return self._tls_context

    async def acquire(self, origin: Origin, connect_timeout: float) -> Connection:
        """An idle connection to ``origin`` if a fresh one is pooled, else a new connection.

        Raises ``OSError`` (refused, unreachable, TLS) or ``TimeoutError`` from connecting.
        """
        idle = self._idle.get(origin.key)
        if idle:
            expired_before = time.monotonic() - self._keepalive
            while idle:
                connection = idle.pop()
                if not connection.closed and connection.idle_since > expired_before:
                    return connection
                connection.close()
        return await self.connect(origin, connect_timeout)

    async def connect(self, origin: Origin, connect_timeout: float) -> Connection:
        """A new connection to ``origin``, never a pooled one."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout):
            _transport, connection = await loop.create_connection(
                lambda: Connection(loop, self._open.discard),
                origin.host,
                origin.port,
                ssl=(origin.tls_context or self._tls()) if origin.tls else None,
                server_hostname=origin.host if origin.tls else None,
            )
        self._open.add(connection)
        return connection

    def release(self, origin: Origin, connection: Connection) -> None:
        """Pool a connection whose response was read to its end, or close it if unusable."""
        if not connection.reusable:
            self.discard(connection)
            return
        connection.served += 1
        connection.idle_since = time.monotonic()
        idle = self._idle.setdefault(origin.key, deque())
        # Close the pool's stale end while here, so idle sockets do not linger past keep-alive.
        expired_before = connection.idle_since - self._keepalive
        while idle and (idle[0].closed or idle[0].idle_since <= expired_before):
            self.discard(idle.popleft())
        idle.append(connection)

    def idle_count(self, origin: Origin) -> int:
        """Pooled connections to ``origin`` still open, ready for a request."""
        return sum(not connection.closed for connection in self._idle.get(origin.key, ()))

    def close_idle(self, origin: Origin) -> None:
        """Close every pooled connection to ``origin``."""
        for connection in self._idle.pop(origin.key, ()):
            self.discard(connection)

    def discard(self, connection: Connection) -> None:
        """Close a connection and forget it."""
        connection.close()
        self._open.discard(connection)

    def close(self) -> None:
        """Close every connection, idle or busy."""
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()

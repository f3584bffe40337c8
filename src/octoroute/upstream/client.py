"""The only module that speaks HTTP to upstream model servers.

The wire work is ``upstream.http1``'s lean keep-alive client; this module gives it the interface
the forwarding logic uses (buffered ``send``, streaming ``open_stream``, ``probe``) and maps its
exceptions here, and only here, into ``octoroute.errors``, so the layers above reason about
*what* failed (connect, timeout, protocol, status), never about sockets.

Timeouts are explicit: a connect timeout and, for streams, a per-read idle timeout. There is no
hidden total cap on a stream (v1 silently cut every call at 60 s).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from typing import Final
from urllib.parse import unquote_to_bytes

from octoroute import __version__
from octoroute.config.redact import strip_userinfo, userinfo
from octoroute.config.schema import EndpointConfig
from octoroute.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from octoroute.upstream.http1 import (
    Connection,
    ConnectionClosed,
    MalformedResponse,
    Origin,
    Pool,
    ReadTimeout,
    request_head,
)

CONNECT_TIMEOUT_SECONDS: Final = 10.0
MAX_ERROR_BODY_BYTES: Final = 1024 * 1024
"""An error body is relayed to the client; anything longer than this is not an error message."""
KEEPALIVE_SECONDS: Final = 4.0
"""Idle pooled connections are dropped before common servers (uvicorn: 5 s) close them first."""


class Target:
    """One endpoint's origin and pre-rendered request heads, prepared at start-up."""

    __slots__ = ("chat_head", "label", "models_head", "origin")

    def __init__(self, endpoint: EndpointConfig) -> None:
        base = endpoint.base_url
        self.origin: Final = Origin(base)
        headers = {
            "User-Agent": f"octoroute/{__version__}",
            "Accept": "*/*",
            "Content-Type": "application/json",
        }
        credentials = unquote_to_bytes(userinfo(base))
        if endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
        elif credentials:
            # ``http://user:pass@host`` means HTTP basic auth, as every HTTP client reads it.
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        plain = strip_userinfo(base)
        self.chat_head: Final = request_head(
            "POST", plain + "/chat/completions", self.origin, headers
        )
        self.models_head: Final = request_head("GET", plain + "/models", self.origin, headers)
        self.label: Final = f"{endpoint.name} at {plain}"
        """How messages name this endpoint: model name and URL, never the key."""


class BufferedResponse:
    """A complete 2xx upstream answer."""

    __slots__ = ("body", "content_type", "status", "ttfb")

    def __init__(self, status: int, content_type: str, body: bytes, ttfb: float) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self.ttfb = ttfb


class UpstreamStream:
    """An open 2xx upstream response whose body is read chunk by chunk as it arrives."""

    __slots__ = ("_connection", "_pool", "_target", "content_type", "status")

    def __init__(self, connection: Connection, pool: Pool, target: Target) -> None:
        self._connection = connection
        self._pool = pool
        self._target = target
        self.status = connection.status
        self.content_type = connection.content_type

    async def next_chunk(self) -> bytes:
        """Whatever bytes have arrived (at least one), or ``b""`` at the end of the body."""
        try:
            return await self._connection.read_some()
        except _WIRE_ERRORS as exc:
            raise map_exception(exc, self._target.label, streaming=True) from exc

    async def read_rest(self) -> bytes:
        """The remaining body, for an upstream that answered JSON although asked to stream."""
        try:
            return await self._connection.read_all()
        except _WIRE_ERRORS as exc:
            raise map_exception(exc, self._target.label, streaming=True) from exc

    def at_eof(self) -> bool:
        """Whether the whole body has been received and read."""
        return self._connection.at_eof

    def close(self) -> None:
        """Drop the connection: a half-read response must not go back to the pool."""
        self._pool.discard(self._connection)

    def release(self) -> None:
        """Return a fully read response's connection to the pool."""
        self._pool.release(self._target.origin, self._connection)


_WIRE_ERRORS: Final = (OSError, ConnectionClosed, MalformedResponse, ReadTimeout)


def map_exception(exc: BaseException, label: str, *, streaming: bool = False) -> UpstreamError:
    """Translate a wire-level exception into our error tree."""
    if isinstance(exc, ReadTimeout):
        return UpstreamTimeout(f"{label}: timed out waiting for data", endpoint=label)
    if isinstance(exc, ConnectionClosed):
        if streaming or exc.got_bytes:
            return UpstreamProtocolError(f"{label}: response body cut short", endpoint=label)
        return UpstreamConnectError(f"{label}: closed the connection", endpoint=label)
    if isinstance(exc, MalformedResponse):
        return UpstreamProtocolError(f"{label}: {exc}", endpoint=label)
    if isinstance(exc, ssl.SSLError):
        return UpstreamConnectError(f"{label}: TLS error ({exc.reason})", endpoint=label)
    if isinstance(exc, OSError):
        return UpstreamConnectError(f"{label}: connection error ({exc})", endpoint=label)
    return UpstreamProtocolError(
        f"{label}: invalid response ({type(exc).__name__})", endpoint=label
    )


class UpstreamClient:
    """Buffered and streaming chat calls, and health probes, over one shared connection pool."""

    def __init__(self) -> None:
        self._pool_or_none: Pool | None = None

    @property
    def _pool(self) -> Pool:
        pool = self._pool_or_none
        if pool is None:
            raise RuntimeError("UpstreamClient.open() must be awaited before use")
        return pool

    async def open(self) -> None:
        """Create the process's one connection pool; called at start-up, inside the event loop."""
        self._pool_or_none = Pool(KEEPALIVE_SECONDS)

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._pool_or_none is not None:
            self._pool_or_none.close()
            self._pool_or_none = None

    def idle_connections(self, target: Target) -> int:
        """Open keep-alive connections to ``target``'s origin waiting in the pool."""
        return self._pool.idle_count(target.origin)

    async def _exchange(
        self,
        target: Target,
        head: bytes,
        body: bytes,
        connect_timeout: float,
        read_timeout: float | None,
    ) -> Connection:
        """Send one request and wait for its response head; the connection is the caller's.

        A pooled connection the upstream closed at the moment we reused it is not retried here:
        the upstream may have seen the request (a deliberate drop looks the same), and the
        forwarder fails over to another endpoint instead. Keep-alive expiry below common
        servers' own (``KEEPALIVE_SECONDS``) makes that race rare.
        """
        pool = self._pool
        label = target.label
        try:
            connection = await pool.acquire(target.origin, connect_timeout)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{label}: timed out while connecting", endpoint=label) from exc
        except OSError as exc:
            raise UpstreamConnectError(f"{label}: cannot connect ({exc})", endpoint=label) from exc
        try:
            connection.send(head, body, read_timeout)
            await connection.head()
        except _WIRE_ERRORS as exc:
            pool.discard(connection)
            raise map_exception(exc, label) from exc
        except BaseException:
            # Timed out or cancelled (client gone): drop the connection so the upstream
            # stops generating, rather than whenever it is collected.
            pool.discard(connection)
            raise
        return connection

    async def _status_error(self, connection: Connection, label: str) -> UpstreamStatusError:
        try:
            body = await connection.read_all(MAX_ERROR_BODY_BYTES)
        except _WIRE_ERRORS:
            body = b""
        finally:
            self._pool.discard(connection)
        return UpstreamStatusError(
            f"{label}: answered HTTP {connection.status}",
            endpoint=label,
            upstream_status=connection.status,
            body=body,
            content_type=connection.content_type or "application/json",
        )

    async def send(self, target: Target, body: bytes, *, timeout: float) -> BufferedResponse:
        """POST a chat request and read the whole answer, all within ``timeout`` seconds.

        Raises ``UpstreamStatusError`` for a non-2xx answer (its body kept for relaying) and the
        other ``UpstreamError``s for transport failures.
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                connection = await self._exchange(
                    target,
                    target.chat_head,
                    body,
                    min(timeout, CONNECT_TIMEOUT_SECONDS),
                    None,
                )
                ttfb = time.perf_counter() - started
                if connection.status >= 300:
                    raise await self._status_error(connection, target.label)
                try:
                    payload = await connection.read_all()
                except _WIRE_ERRORS as exc:
                    self._pool.discard(connection)
                    raise map_exception(exc, target.label, streaming=True) from exc
                except BaseException:
                    self._pool.discard(connection)
                    raise
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: no complete answer within {timeout:g} s", endpoint=target.label
            ) from exc
        self._pool.release(target.origin, connection)
        return BufferedResponse(
            connection.status, connection.content_type or "application/json", payload, ttfb
        )

    async def open_stream(
        self, target: Target, body: bytes, *, timeout: float, read_timeout: float
    ) -> UpstreamStream:
        """POST a streaming chat request and return once the response headers arrived.

        ``timeout`` bounds the wait for the headers; ``read_timeout`` is the idle limit between
        later reads. Non-2xx answers raise ``UpstreamStatusError``.
        """
        try:
            async with asyncio.timeout(timeout):
                connection = await self._exchange(
                    target,
                    target.chat_head,
                    body,
                    min(timeout, CONNECT_TIMEOUT_SECONDS),
                    read_timeout,
                )
                if connection.status >= 300:
                    raise await self._status_error(connection, target.label)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: no response within {timeout:g} s", endpoint=target.label
            ) from exc
        return UpstreamStream(connection, self._pool, target)

    async def probe(self, target: Target, *, timeout: float) -> None:
        """``GET {base_url}/models``: returns on any 2xx, raises an ``UpstreamError`` otherwise.

        GET rather than v1's HEAD, which several servers reject.
        """
        try:
            async with asyncio.timeout(timeout):
                connection = await self._exchange(target, target.models_head, b"", timeout, None)
                if connection.status >= 300:
                    raise await self._status_error(connection, target.label)
                try:
                    await connection.read_all()
                except _WIRE_ERRORS as exc:
                    self._pool.discard(connection)
                    raise map_exception(exc, target.label, streaming=True) from exc
                except BaseException:
                    self._pool.discard(connection)
                    raise
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: health probe timed out after {timeout:g} s", endpoint=target.label
            ) from exc
        self._pool.release(target.origin, connection)

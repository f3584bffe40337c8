"""The only module that speaks HTTP to upstream model servers.

One aiohttp ``ClientSession`` serves the whole process; each endpoint's URLs and headers are built
once (``Target``). aiohttp's exceptions are mapped here, and only here, into ``octoroute.errors``,
so the forwarding logic above reasons about *what* failed (connect, timeout, protocol, status),
never about aiohttp.

Timeouts are explicit: a connect timeout and, for streams, a per-read idle timeout. There is no
hidden total cap on a stream (v1 silently cut every call at 60 s).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import aiohttp
from yarl import URL

from octoroute import __version__
from octoroute.config.schema import EndpointConfig
from octoroute.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeout,
)

CONNECT_TIMEOUT_SECONDS: Final = 10.0
MAX_ERROR_BODY_BYTES: Final = 1024 * 1024
"""An error body is relayed to the client; anything longer than this is not an error message."""
KEEPALIVE_SECONDS: Final = 4.0
"""Idle pooled connections are dropped before common servers (uvicorn: 5 s) close them first."""


class Target:
    """One endpoint's request line and headers, prepared at start-up."""

    __slots__ = ("chat_url", "headers", "label", "models_url")

    def __init__(self, endpoint: EndpointConfig) -> None:
        base = endpoint.base_url
        self.chat_url: Final = URL(base + "/chat/completions", encoded=False)
        self.models_url: Final = URL(base + "/models", encoded=False)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"octoroute/{__version__}",
        }
        if endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
        self.headers: Final = headers
        self.label: Final = f"{endpoint.name} at {_without_userinfo(base)}"
        """How messages name this endpoint: model name and URL, never the key."""


def _without_userinfo(url: str) -> str:
    """``url`` minus any ``user:password@``, so messages and logs never carry credentials."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"


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

    __slots__ = ("_label", "_response", "content_type", "status")

    def __init__(self, response: aiohttp.ClientResponse, label: str) -> None:
        self._response = response
        self._label = label
        self.status = response.status
        self.content_type = response.headers.get("Content-Type", "")

    async def next_chunk(self) -> bytes:
        """Whatever bytes have arrived (at least one), or ``b""`` at the end of the body."""
        try:
            return await self._response.content.readany()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise map_exception(exc, self._label) from exc

    async def read_rest(self) -> bytes:
        """The remaining body, for an upstream that answered JSON although asked to stream."""
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise map_exception(exc, self._label) from exc

    def at_eof(self) -> bool:
        """Whether the whole body has been received and read."""
        return self._response.content.at_eof()

    def close(self) -> None:
        """Drop the connection: a half-read response must not go back to the pool."""
        self._response.close()

    def release(self) -> None:
        """Return a fully read response's connection to the pool."""
        self._response.release()


def map_exception(exc: BaseException, label: str) -> UpstreamError:
    """Translate an aiohttp or timeout exception into our error tree."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"{label}: timed out while connecting", endpoint=label)
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return UpstreamTimeout(f"{label}: timed out waiting for data", endpoint=label)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectError(f"{label}: cannot connect ({exc.os_error})", endpoint=label)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamConnectError(f"{label}: closed the connection", endpoint=label)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamProtocolError(f"{label}: response body cut short", endpoint=label)
    if isinstance(exc, aiohttp.ClientOSError):
        return UpstreamConnectError(f"{label}: connection error ({exc})", endpoint=label)
    return UpstreamProtocolError(
        f"{label}: invalid response ({type(exc).__name__})", endpoint=label
    )


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    # ``StreamReader.read(n)`` returns what has arrived so far, not n bytes: loop to the end.
    parts: list[bytes] = []
    size = 0
    while size < limit:
        part = await response.content.read(limit - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


async def _status_error(response: aiohttp.ClientResponse, label: str) -> UpstreamStatusError:
    body = await _read_capped(response, MAX_ERROR_BODY_BYTES)
    response.close()
    return UpstreamStatusError(
        f"{label}: answered HTTP {response.status}",
        endpoint=label,
        upstream_status=response.status,
        body=body,
        content_type=response.headers.get("Content-Type", "application/json"),
    )


class UpstreamClient:
    """Buffered and streaming chat calls, and health probes, over one shared connection pool."""

    def __init__(self) -> None:
        self._session_or_none: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    @property
    def _session(self) -> aiohttp.ClientSession:
        session = self._session_or_none
        if session is None:
            raise RuntimeError("UpstreamClient.open() must be awaited before use")
        return session

    async def open(self) -> None:
        """Create the process's one connection pool; called at start-up, inside the event loop."""
        connector = aiohttp.TCPConnector(
            limit=0, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE_SECONDS
        )
        self._session_or_none = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS),
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session_or_none is not None:
            await self._session_or_none.close()
            self._session_or_none = None

    def _timeout(self, connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        key = (connect, read)
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
            self._timeouts[key] = timeout
        return timeout

    async def send(self, target: Target, body: bytes, *, timeout: float) -> BufferedResponse:
        """POST a chat request and read the whole answer, all within ``timeout`` seconds.

        Raises ``UpstreamStatusError`` for a non-2xx answer (its body kept for relaying) and the
        other ``UpstreamError``s for transport failures.
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                response = await self._session.post(
                    target.chat_url,
                    data=body,
                    headers=target.headers,
                    timeout=self._timeout(min(timeout, CONNECT_TIMEOUT_SECONDS), None),
                )
                try:
                    ttfb = time.perf_counter() - started
                    if response.status >= 300:
                        raise await _status_error(response, target.label)
                    payload = await response.read()
                except BaseException:
                    # A body cut by the timeout or a cancelled request: drop the connection now
                    # so the upstream stops generating, rather than whenever it is collected.
                    response.close()
                    raise
        except aiohttp.ClientError as exc:
            # First: aiohttp's own timeouts (connect, read) are TimeoutErrors too, and say more.
            raise map_exception(exc, target.label) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: no complete answer within {timeout:g} s", endpoint=target.label
            ) from exc
        return BufferedResponse(
            response.status, response.headers.get("Content-Type", "application/json"), payload, ttfb
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
                response = await self._session.post(
                    target.chat_url,
                    data=body,
                    headers=target.headers,
                    timeout=self._timeout(min(timeout, CONNECT_TIMEOUT_SECONDS), read_timeout),
                )
                if response.status >= 300:
                    try:
                        raise await _status_error(response, target.label)
                    finally:
                        response.close()
        except aiohttp.ClientError as exc:
            # First: aiohttp's own timeouts (connect, read) are TimeoutErrors too, and say more.
            raise map_exception(exc, target.label) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: no response within {timeout:g} s", endpoint=target.label
            ) from exc
        return UpstreamStream(response, target.label)

    async def probe(self, target: Target, *, timeout: float) -> None:
        """``GET {base_url}/models``: returns on any 2xx, raises an ``UpstreamError`` otherwise.

        GET rather than v1's HEAD, which several servers reject.
        """
        try:
            async with asyncio.timeout(timeout):
                async with self._session.get(
                    target.models_url, headers=target.headers, timeout=self._timeout(timeout, None)
                ) as response:
                    if response.status >= 300:
                        raise await _status_error(response, target.label)
                    await response.read()
        except aiohttp.ClientError as exc:
            # First: aiohttp's own timeouts (connect, read) are TimeoutErrors too, and say more.
            raise map_exception(exc, target.label) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: health probe timed out after {timeout:g} s", endpoint=target.label
            ) from exc

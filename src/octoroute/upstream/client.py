"""The only module that speaks HTTP to upstream model servers.

The wire work is ``upstream.http1``'s lean keep-alive client; this module gives it the interface
the forwarding logic uses (buffered ``send``, streaming ``open_stream``, ``probe``) and maps its
exceptions here, and only here, into ``octoroute.errors``, so the layers above reason about
*what* failed (connect, timeout, protocol, status, auth, throttling, size), never about sockets.

Timeouts are explicit: a connect timeout and, for streams, a per-read idle timeout. There is no
hidden total cap on a stream (v1 silently cut every call at 60 s).

What an upstream may send back is bounded: a buffered answer (or a stream read whole) stops at
``limits.max_response_bytes`` after decompression, and at most ``max_connections`` connections
per endpoint are busy at once, later requests waiting for one within their own timeout. The
prober's status reads have a budget of their own (``STATUS_CONNECTIONS``) and a smaller bound
on what they read (``STATUS_MAX_BODY_BYTES``).
"""

from __future__ import annotations

import asyncio
import base64
import errno
import ssl
import time
import zlib
from typing import Final
from urllib.parse import unquote_to_bytes

from octoroute import __version__
from octoroute.config.redact import strip_userinfo, userinfo
from octoroute.config.schema import EndpointConfig, LimitsConfig
from octoroute.errors import (
    BadUpstreamResponse,
    EndpointSaturated,
    ResponseTooLarge,
    ServerOverloaded,
    UpstreamAuthFailed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamThrottled,
    UpstreamTimeout,
)
from octoroute.upstream.decoding import SUPPORTED_ENCODINGS, BodyDecoder, parse_retry_after
from octoroute.upstream.http1 import (
    Connection,
    ConnectionClosed,
    MalformedResponse,
    Origin,
    Pool,
    ReadTimeout,
    Slots,
    request_head,
)
from octoroute.upstream.tls import tls_context, tls_settings

CONNECT_TIMEOUT_SECONDS: Final = 10.0
MAX_ERROR_BODY_BYTES: Final = 1024 * 1024
"""An error body is relayed to the client; anything longer than this is not an error message."""
STATUS_MAX_BODY_BYTES: Final = 4 * 1024 * 1024
"""The most of a status answer read (``/metrics``, ``/api/ps``, ``/slots``): the largest real
ones (a data-parallel vLLM's metrics, llama.cpp's slots with their prompts) stay well below it,
and it bounds what a wrong or hostile server makes the prober hold and parse on the event loop."""
STATUS_MAX_ERROR_BODY_BYTES: Final = 64 * 1024
"""Of a non-2xx status answer only a short JSON error (llama.cpp's "Loading model") is read."""
STATUS_CONNECTIONS: Final = 1
"""Connections status reads may hold per endpoint, on top of ``max_connections``."""
KEEPALIVE_SECONDS: Final = 4.0
"""Idle pooled connections are dropped before common servers (uvicorn: 5 s) close them first."""
DEFAULT_MAX_RESPONSE_BYTES: Final = LimitsConfig().max_response_bytes
_OUT_OF_DESCRIPTORS: Final = frozenset({errno.EMFILE, errno.ENFILE})
FD_RETRY_PAUSES: Final = (0.01, 0.02, 0.04, 0.08, 0.16)
"""Waits between connects that failed for want of a file descriptor (0.31 s in all)."""


CHAT_PATH: Final = "chat/completions"
OLLAMA_PATHS: Final = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")
"""Ollama's own API, for endpoints with ``native = ["ollama"]``: a leading ``/`` means from the
server's root (``base_url`` without its ``/v1``), where Ollama serves it."""
UPSTREAM_PATHS: Final = (
    CHAT_PATH,
    "completions",
    "embeddings",
    "responses",
    "messages",
    *OLLAMA_PATHS,
)
"""The API paths requests are forwarded to, under ``base_url`` (or from the server's root for
those starting with ``/``); heads are rendered for each."""


def server_root(base_url: str) -> str:
    """``base_url`` without its trailing ``/v1`` (every ``base_url`` ends so): where a server's
    own, non-OpenAI API lives (Ollama's ``/api/...``)."""
    return base_url.removesuffix("/").removesuffix("/v1")


OLLAMA_LOAD_PATH: Final = "/api/generate"
"""Ollama's native generate endpoint, from the server root: a body with only ``model`` loads the
model (the pre-warm, ``upstream.prewarm``)."""


class Target:
    """One endpoint's origin, pre-rendered request heads, TLS context and connection slots,
    prepared at start-up."""

    __slots__ = (
        "_headers",
        "_status_heads",
        "chat_head",
        "heads",
        "label",
        "models_head",
        "origin",
        "root",
        "slots",
        "status_slots",
    )

    def __init__(self, endpoint: EndpointConfig) -> None:
        base = endpoint.base_url
        self.origin: Final = Origin(
            base, tls_context=tls_context(endpoint), tls_key=tls_settings(endpoint)
        )
        headers = {
            "User-Agent": f"octoroute/{__version__}",
            "Accept": "*/*",
            # Bodies are relayed and size-checked as sent; an upstream that compresses anyway is
            # decoded (gzip, deflate) or refused.
            "Accept-Encoding": "identity",
            "Content-Type": "application/json",
        }
        credentials = unquote_to_bytes(userinfo(base))
        if endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
        elif credentials:
            # ``http://user:pass@host`` means HTTP basic auth, as every HTTP client reads it.
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        plain = strip_userinfo(base)
        root = server_root(plain)
        self.heads: Final = {
            path: request_head(
                "POST",
                root + path if path.startswith("/") else f"{plain}/{path}",
                self.origin,
                headers,
            )
            for path in UPSTREAM_PATHS
        }
        """The POST head for each API path an endpoint may be sent, keyed by the path (those
        starting with ``/`` from the server root, :data:`OLLAMA_LOAD_PATH` among them)."""
        self.chat_head: Final = self.heads[CHAT_PATH]
        self.models_head: Final = request_head("GET", plain + "/models", self.origin, headers)
        self.label: Final = f"{endpoint.name} at {plain}"
        """How messages name this endpoint: model name and URL, never the key."""
        self.slots: Final = Slots(endpoint.max_connections)
        """At most ``max_connections`` requests (probes included) hold a connection at once."""
        self.status_slots: Final = Slots(STATUS_CONNECTIONS)
        """Status reads' own budget: they neither queue behind real traffic for one of the
        ``max_connections`` (a read must see a saturated server, not wait it out) nor hold one
        that a request is waiting for."""
        self.root: Final = plain.removesuffix("/v1")
        """The server's root (``base_url`` without ``/v1``), where its own status paths live."""
        self._headers = headers
        self._status_heads: dict[tuple[str, str], bytes] = {}

    def status_head(self, method: str, path: str) -> bytes:
        """The head for ``method`` on ``path`` under the server's root (``/api/ps``), rendered
        the first time it is asked for: status reads are per probe round, not per request."""
        key = (method, path)
        head = self._status_heads.get(key)
        if head is None:
            head = request_head(method, self.root + path, self.origin, self._headers)
            self._status_heads[key] = head
        return head


class BufferedResponse:
    """A complete 2xx upstream answer, decoded if the upstream compressed it."""

    __slots__ = ("body", "content_type", "status", "ttfb")

    def __init__(self, status: int, content_type: str, body: bytes, ttfb: float) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self.ttfb = ttfb


class UpstreamStream:
    """An open 2xx upstream response whose body is read chunk by chunk as it arrives.

    It holds one of the endpoint's connection slots until ``release()`` or ``close()``; one of
    the two must be called (both may be, and either more than once).
    """

    __slots__ = (
        "_connection",
        "_decoder",
        "_held",
        "_limit",
        "_pool",
        "_target",
        "content_type",
        "status",
    )

    def __init__(
        self,
        connection: Connection,
        decoder: BodyDecoder | None,
        pool: Pool,
        target: Target,
        limit: int,
    ) -> None:
        self._connection = connection
        self._decoder = decoder
        self._pool = pool
        self._target = target
        self._limit = limit
        self._held = True
        self.status = connection.status
        self.content_type = connection.content_type

    async def next_chunk(self) -> bytes:
        """Whatever bytes have arrived (at least one), or ``b""`` at the end of the body."""
        try:
            return await _next_piece(self._connection, self._decoder)
        except _WIRE_ERRORS as exc:
            raise map_exception(exc, self._target.label, streaming=True) from exc

    async def read_rest(self) -> bytes:
        """The remaining body, for an upstream that answered JSON although asked to stream.

        Raises ``ResponseTooLarge`` past ``limits.max_response_bytes`` (then ``close()``).
        """
        try:
            return await _read_body(self._connection, self._decoder, self._target, self._limit)
        except _WIRE_ERRORS as exc:
            raise map_exception(exc, self._target.label, streaming=True) from exc

    def at_eof(self) -> bool:
        """Whether the whole body has been received and read."""
        return self._connection.at_eof and not (self._decoder and self._decoder.pending)

    def close(self) -> None:
        """Drop the connection: a half-read response must not go back to the pool."""
        self._pool.discard(self._connection)
        self._give_back()

    def release(self) -> None:
        """Return a fully read response's connection to the pool (closed if it is not)."""
        if self._held:
            self._pool.release(self._target.origin, self._connection)
        self._give_back()

    def _give_back(self) -> None:
        if self._held:
            self._held = False
            self._target.slots.give_back()


_WIRE_ERRORS: Final = (OSError, ConnectionClosed, MalformedResponse, ReadTimeout, zlib.error)


def map_exception(
    exc: BaseException, label: str, *, streaming: bool = False, connecting: bool = False
) -> UpstreamError | ServerOverloaded:
    """Translate a wire-level exception into our error tree.

    ``connecting``: raised while opening the connection. Running out of file descriptors is then
    the router's own trouble (``ServerOverloaded``), never blamed on the upstream.
    """
    if isinstance(exc, ReadTimeout):
        return UpstreamTimeout(f"{label}: timed out waiting for data", endpoint=label)
    if isinstance(exc, ConnectionClosed):
        if streaming or exc.got_bytes:
            return UpstreamProtocolError(f"{label}: response body cut short", endpoint=label)
        return UpstreamConnectError(f"{label}: closed the connection", endpoint=label)
    if isinstance(exc, MalformedResponse):
        return UpstreamProtocolError(f"{label}: {exc}", endpoint=label)
    if isinstance(exc, zlib.error):
        return UpstreamProtocolError(
            f"{label}: undecodable compressed body ({exc})", endpoint=label
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return UpstreamConnectError(
            f"{label}: TLS certificate not accepted ({exc.verify_message}); for a private CA "
            "set tls_ca_file",
            endpoint=label,
        )
    if isinstance(exc, ssl.SSLError):
        return UpstreamConnectError(f"{label}: TLS error ({exc.reason})", endpoint=label)
    if isinstance(exc, OSError):
        if connecting and exc.errno in _OUT_OF_DESCRIPTORS:
            return ServerOverloaded(
                f"the router ran out of file descriptors opening a connection to {label}; "
                "raise its limit (ulimit -n, LimitNOFILE=)",
                reason="file_descriptors",
                retry_after=1,
            )
        verb = "cannot connect" if connecting else "connection error"
        return UpstreamConnectError(f"{label}: {verb} ({exc})", endpoint=label)
    return UpstreamProtocolError(
        f"{label}: invalid response ({type(exc).__name__})", endpoint=label
    )


def _unanswered(exc: BaseException) -> bool:
    """The connection died before a single byte of the response: the upstream closed it."""
    if isinstance(exc, ConnectionClosed):
        return not exc.got_bytes
    return isinstance(exc, ConnectionResetError | BrokenPipeError)


def _decoder(connection: Connection, label: str) -> BodyDecoder | None:
    encoding = connection.content_encoding
    if not encoding or encoding == "identity":
        return None
    if encoding in SUPPORTED_ENCODINGS:
        return BodyDecoder(encoding)
    raise BadUpstreamResponse(
        f"{label} answered with Content-Encoding: {encoding} although asked for identity",
        endpoint=label,
    )


async def _next_piece(connection: Connection, decoder: BodyDecoder | None) -> bytes:
    """The next body bytes, decoded; ``b""`` at the end of the body."""
    if decoder is None:
        return await connection.read_some()
    while True:
        if decoder.pending:
            piece = decoder.decode(b"")
        else:
            data = await connection.read_some()
            if not data:
                decoder.finish()
                return b""
            piece = decoder.decode(data)
        if piece:
            return piece


async def _read_body(
    connection: Connection,
    decoder: BodyDecoder | None,
    target: Target,
    limit: int,
    *,
    truncate: bool = False,
) -> bytes:
    """The rest of the body, decoded, up to ``limit`` bytes.

    Past the limit reading stops: ``ResponseTooLarge``, or with ``truncate`` the first ``limit``
    bytes. Pieces are read as they arrive, so the socket is paused while they are decoded and
    at most ``limit`` bytes plus one piece are ever held; they are joined once, at the end.
    """
    if (
        decoder is None
        and not truncate
        and connection.content_length is not None
        and connection.content_length > limit
    ):
        raise _too_large(target, limit)
    pieces: list[bytes] = []
    size = 0
    while piece := await _next_piece(connection, decoder):
        size += len(piece)
        if size > limit:
            if not truncate:
                pieces.clear()
                raise _too_large(target, limit)
            pieces.append(piece[: len(piece) - (size - limit)])
            break
        pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _too_large(target: Target, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"{target.label}: answer larger than {limit} bytes (limits.max_response_bytes); "
        "stopped reading it",
        endpoint=target.label,
    )


class UpstreamClient:
    """Buffered and streaming chat calls, and health probes, over one shared connection pool.

    ``max_response_bytes`` (``limits.max_response_bytes``) bounds every answer read whole.
    """

    def __init__(self, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self._pool_or_none: Pool | None = None
        self.max_response_bytes = max_response_bytes
        """The most of one answer read whole (``limits.max_response_bytes``; a reload may
        change it for the answers read after it)."""

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

    def close_idle(self, target: Target) -> None:
        """Close the pooled connections to ``target``'s origin: no endpoint uses it any more (a
        reload removed the last one and it drained)."""
        if self._pool_or_none is not None:
            self._pool_or_none.close_idle(target.origin)

    async def _take_slot(self, target: Target, deadline: float, timeout: float) -> None:
        """Hold one of ``target``'s connection slots, waiting until ``deadline`` at most."""
        if target.slots.try_take():
            return
        try:
            async with asyncio.timeout_at(deadline):
                await target.slots.take()
        except TimeoutError as exc:
            label = target.label
            raise EndpointSaturated(
                f"{label}: all {target.slots.limit} connections (max_connections) stayed busy "
                f"for {timeout:g} s",
                endpoint=label,
            ) from exc

    async def _connect(self, target: Target, connect_timeout: float, *, fresh: bool) -> Connection:
        """A connection to ``target``: pooled unless ``fresh``.

        Out of file descriptors, the connect is tried again a few times over about a third of a
        second before giving up: under a burst, descriptors come free every millisecond as
        other requests finish or are refused, and a short wait serves the request instead of
        refusing it.
        """
        label = target.label
        for pause in (*FD_RETRY_PAUSES, None):
            try:
                if fresh:
                    return await self._pool.connect(target.origin, connect_timeout)
                return await self._pool.acquire(target.origin, connect_timeout)
            except TimeoutError as exc:
                raise UpstreamTimeout(
                    f"{label}: timed out while connecting", endpoint=label
                ) from exc
            except OSError as exc:
                if pause is None or exc.errno not in _OUT_OF_DESCRIPTORS:
                    raise map_exception(exc, label, connecting=True) from exc
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self,
        target: Target,
        head: bytes,
        body: bytes,
        connect_timeout: float,
        read_timeout: float | None,
        extra: bytes = b"",
    ) -> Connection:
        """Send one request and wait for its response head; the connection is the caller's.

        A pooled connection the upstream closed just as we reused it (not one byte of an answer
        came back) is retried once on a fresh connection. That is the keep-alive race every
        HTTP/1.1 client meets: the server timed the idle connection out as our request left.
        Failing over instead would resend the same request to another endpoint anyway, and with
        a single endpoint would turn a routine race into a client-visible 502.
        """
        pool = self._pool
        fresh = False
        while True:
            connection = await self._connect(target, connect_timeout, fresh=fresh)
            try:
                connection.send(head, body, read_timeout, extra)
                await connection.head()
            except _WIRE_ERRORS as exc:
                pool.discard(connection)
                if fresh or not connection.served or not _unanswered(exc):
                    raise map_exception(exc, target.label) from exc
                fresh = True
                continue
            except BaseException:
                # Timed out or cancelled (client gone): drop the connection so the upstream
                # stops generating, rather than whenever it is collected.
                pool.discard(connection)
                raise
            return connection

    async def _status_error(self, connection: Connection, target: Target) -> UpstreamError:
        """The error for a non-2xx answer; the connection is closed, never pooled."""
        label = target.label
        status = connection.status
        if status in (401, 403):
            # The body may echo the key we sent: it is neither read nor relayed.
            self._pool.discard(connection)
            return UpstreamAuthFailed(
                f"{label} refused the router's credentials (HTTP {status}); "
                "check api_key_env for this endpoint",
                endpoint=label,
            )
        if status == 429 or (status == 503 and connection.retry_after is not None):
            self._pool.discard(connection)
            retry_after = parse_retry_after(connection.retry_after)
            wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            return UpstreamThrottled(
                f"{label}: busy (HTTP {status}){wait}",
                endpoint=label,
                upstream_status=status,
                retry_after=retry_after,
            )
        try:
            decoder = _decoder(connection, label)
            body = await _read_body(
                connection, decoder, target, MAX_ERROR_BODY_BYTES, truncate=True
            )
        except (*_WIRE_ERRORS, BadUpstreamResponse):
            body = b""
        finally:
            self._pool.discard(connection)
        redirect = (
            " (a redirect, which the router does not follow: set base_url to the address it "
            "points to, e.g. https instead of http, or with /v1)"
            if 300 <= status < 400
            else ""
        )
        return UpstreamStatusError(
            f"{label}: answered HTTP {status}{redirect}",
            endpoint=label,
            upstream_status=status,
            body=body,
            content_type=connection.content_type or "application/json",
        )

    async def _buffered(
        self,
        target: Target,
        head: bytes,
        body: bytes,
        timeout: float,
        connect_timeout: float,
        extra: bytes = b"",
        *,
        wait_for_slot: bool = True,
    ) -> tuple[Connection, bytes, float]:
        """One whole exchange within ``timeout``: the connection (pooled again), body, ttfb.

        Without ``wait_for_slot`` a busy endpoint raises ``EndpointSaturated`` at once."""
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + timeout
        if wait_for_slot:
            await self._take_slot(target, deadline, timeout)
        elif not target.slots.try_take():
            raise EndpointSaturated(
                f"{target.label}: all {target.slots.limit} connections (max_connections) are "
                "busy serving requests; not probed this round",
                endpoint=target.label,
            )
        connection: Connection | None = None
        done = False
        try:
            async with asyncio.timeout_at(deadline):
                connection = await self._exchange(target, head, body, connect_timeout, None, extra)
                ttfb = time.perf_counter() - started
                if connection.status >= 300:
                    raise await self._status_error(connection, target)
                decoder = _decoder(connection, target.label)
                try:
                    payload = await _read_body(connection, decoder, target, self.max_response_bytes)
                except _WIRE_ERRORS as exc:
                    raise map_exception(exc, target.label, streaming=True) from exc
            done = True
        finally:
            if connection is not None:
                if done:
                    self._pool.release(target.origin, connection)
                else:
                    self._pool.discard(connection)
            target.slots.give_back()
        return connection, payload, ttfb

    async def send(
        self,
        target: Target,
        body: bytes,
        *,
        timeout: float,
        path: str = CHAT_PATH,
        extra: bytes = b"",
    ) -> BufferedResponse:
        """POST a request to ``path`` (one of ``UPSTREAM_PATHS``) and read the whole answer, all
        within ``timeout`` seconds. ``extra`` adds header lines of this request alone.

        Raises ``UpstreamStatusError`` for a non-2xx answer (its body kept for relaying),
        ``UpstreamAuthFailed`` for 401/403, ``UpstreamThrottled`` for 429 (and 503 with
        ``Retry-After``), ``ResponseTooLarge`` past ``max_response_bytes``,
        ``BadUpstreamResponse`` for an encoding other than gzip/deflate/identity,
        ``EndpointSaturated`` when no connection slot came free in time, the other
        ``UpstreamError``s for transport failures, and ``ServerOverloaded`` (not an
        ``UpstreamError``) when the router is out of file descriptors.
        """
        try:
            connection, payload, ttfb = await self._buffered(
                target,
                target.heads[path],
                body,
                timeout,
                min(timeout, CONNECT_TIMEOUT_SECONDS),
                extra,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: no complete answer within {timeout:g} s", endpoint=target.label
            ) from exc
        return BufferedResponse(
            connection.status, connection.content_type or "application/json", payload, ttfb
        )

    async def open_stream(
        self,
        target: Target,
        body: bytes,
        *,
        timeout: float,
        read_timeout: float,
        path: str = CHAT_PATH,
        extra: bytes = b"",
    ) -> UpstreamStream:
        """POST a streaming request to ``path`` and return once the response headers arrived.

        ``timeout`` bounds the wait for a connection slot and the headers; ``read_timeout`` is
        the idle limit between later reads. Errors as for ``send``. The stream holds a
        connection slot until its ``release()`` or ``close()``.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        await self._take_slot(target, deadline, timeout)
        connection: Connection | None = None
        try:
            async with asyncio.timeout_at(deadline):
                connection = await self._exchange(
                    target,
                    target.heads[path],
                    body,
                    min(timeout, CONNECT_TIMEOUT_SECONDS),
                    read_timeout,
                    extra,
                )
                if connection.status >= 300:
                    raise await self._status_error(connection, target)
                decoder = _decoder(connection, target.label)
        except BaseException as exc:
            if connection is not None:
                self._pool.discard(connection)
            target.slots.give_back()
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    f"{target.label}: no response within {timeout:g} s", endpoint=target.label
                ) from exc
            raise
        return UpstreamStream(connection, decoder, self._pool, target, self.max_response_bytes)

    async def status(
        self, target: Target, method: str, path: str, body: bytes | None, *, timeout: float
    ) -> tuple[int, bytes]:
        """One exchange with a status path under the server's root (``GET /api/ps``,
        ``POST /api/show``), whatever its status: ``(status, body)``, all within ``timeout``.

        Unlike ``send``, a non-2xx answer is returned, not raised: a 503 "Loading model" is
        news to a status reader, not a failure. A 2xx body is bounded by
        ``STATUS_MAX_BODY_BYTES`` (``ResponseTooLarge`` past it), an error body cut at
        ``STATUS_MAX_ERROR_BODY_BYTES``. Transport failures raise the ``UpstreamError`` they
        map to. The exchange holds the endpoint's status connection (``Target.status_slots``),
        never one of its ``max_connections``.
        """
        label = target.label
        slots = target.status_slots
        deadline = asyncio.get_running_loop().time() + timeout
        if not slots.try_take():
            try:
                async with asyncio.timeout_at(deadline):
                    await slots.take()
            except TimeoutError as exc:
                raise UpstreamTimeout(
                    f"{label}: {method} {path} waited {timeout:g} s for an earlier status read",
                    endpoint=label,
                ) from exc
        connection: Connection | None = None
        done = False
        try:
            async with asyncio.timeout_at(deadline):
                connection = await self._exchange(
                    target,
                    target.status_head(method, path),
                    body or b"",
                    min(timeout, CONNECT_TIMEOUT_SECONDS),
                    None,
                )
                ok = connection.status < 300
                decoder = _decoder(connection, label)
                limit = STATUS_MAX_BODY_BYTES if ok else STATUS_MAX_ERROR_BODY_BYTES
                payload = await _read_body(connection, decoder, target, limit, truncate=not ok)
            done = ok
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{label}: {method} {path} timed out after {timeout:g} s", endpoint=label
            ) from exc
        except ResponseTooLarge as exc:
            raise ResponseTooLarge(
                f"{label}: {method} {path} answered more than {STATUS_MAX_BODY_BYTES} bytes; "
                "a status answer is not read past that",
                endpoint=label,
            ) from exc
        except _WIRE_ERRORS as exc:
            raise map_exception(exc, label, streaming=True) from exc
        finally:
            if connection is not None:
                if done:
                    self._pool.release(target.origin, connection)
                else:
                    self._pool.discard(connection)
            slots.give_back()
        return connection.status, payload

    async def probe(self, target: Target, *, timeout: float) -> bytes:
        """``GET {base_url}/models``: the body of any 2xx (the model list ``check --probe``
        reads), an ``UpstreamError`` otherwise.

        GET rather than v1's HEAD, which several servers reject. Over the endpoint's TLS
        settings, within its connection slots, and bounded like any answer. When every slot is
        busy it raises ``EndpointSaturated`` at once rather than wait: the endpoint is plainly
        serving, and a wait as long as the prober's own timeout would race it and turn "busy"
        into "probe timed out", a health failure.
        """
        try:
            _, body, _ = await self._buffered(
                target, target.models_head, b"", timeout, timeout, wait_for_slot=False
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{target.label}: health probe timed out after {timeout:g} s", endpoint=target.label
            ) from exc
        return body

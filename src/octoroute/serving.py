"""The client-facing HTTP set-up: how aiohttp serves the application, for production and tests.

``make_runner`` is the one place the runner is built, so ``server.serve`` and the test harness
run the same protocol with the same options: handler cancellation on client disconnect, no access
log (the handlers write one line per request), the shutdown drain, the keep-alive idle timeout
and the guards below against clients that hold connections without sending requests.

**Request-head deadline.** aiohttp closes a kept-alive connection after ``keepalive_timeout`` of
idleness, but nothing bounds how long a client may take to *send* a request head: one byte
every few seconds keeps a connection (and a file descriptor) forever. ``_GuardedHandler``
closes a connection whose head is not complete ``client_header_timeout_seconds`` after it was
opened, or after the first byte of the next request on a kept-alive connection (the wait before
that first byte is keep-alive idleness, bounded by ``keepalive_idle_seconds``).

Why this hook: aiohttp offers no public per-connection timer, and the only way to run our own
``RequestHandler`` (the ``asyncio.Protocol`` of one connection) is a ``web.Server`` whose
``__call__`` builds it, which ``AppRunner._make_server`` must return. The subclass leans only on
members every aiohttp 3.x ``RequestHandler`` has: ``connection_made``, ``data_received``,
``finish_response``, ``handle_error`` and ``force_close`` (none underscored), plus the
``request_factory`` a ``web.Server`` calls once per parsed head. "Head complete" is that call,
"request answered" is the return of ``finish_response``; the protocol's private state (its
message queue, waiter and counters) is never read. ``tests/integration/test_client_faults.py``
fails if an aiohttp upgrade changes any of this.

**Malformed requests.** aiohttp answers a request it cannot parse with a plain-text 400 and logs
an ERROR with a traceback, so one client sending garbage fills the log. ``handle_error`` here
answers the OpenAI envelope instead and logs one WARNING line, at most one per
``WARNING_INTERVAL_SECONDS``, carrying how many were suppressed since the last one.

**Closing instead of draining.** After a response that closes the connection (``Connection:
close``, e.g. a 413 answered from ``Content-Length`` before reading the body) the connection is
closed at once; aiohttp would otherwise read and discard the unread body for up to ten seconds.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from octoroute.config.schema import ServerConfig
from octoroute.errors import error_body
from octoroute.observability.logging import RateLimitedWarning, get_logger
from octoroute.wire.media import unsupported_encoding

SERVER_NAME: Final = "octoroute"
"""The ``Server`` header of every answer: no library names, no versions."""
WARNING_INTERVAL_SECONDS: Final = 10.0
"""At most one warning line per kind of client fault in this interval, per process."""

log = get_logger("octoroute.serving")

_RequestFactory = Callable[..., web.BaseRequest]

_UNDECODABLE_CODING: Final = re.compile(r"Can not decode content-encoding: \w+ \((\w+)\)")
"""aiohttp's parser error for a content coding it has no decoder for: ``brotli (br)``."""


class _Guards:
    """What every connection of one server shares: the deadline and the rate-limited warnings."""

    __slots__ = ("header_timeout", "malformed", "slow_heads")

    def __init__(self, header_timeout: float) -> None:
        self.header_timeout = header_timeout
        self.malformed = RateLimitedWarning(
            log, "malformed HTTP request answered 400", WARNING_INTERVAL_SECONDS
        )
        self.slow_heads = RateLimitedWarning(
            log,
            "closed a connection that sent no complete request head in time",
            WARNING_INTERVAL_SECONDS,
        )


class _GuardedHandler(RequestHandler):
    """aiohttp's connection protocol with a request-head deadline and JSON 400s (see module)."""

    __slots__ = ("_answered", "_clock", "_guards", "_head_timer", "_heads")

    def __init__(
        self,
        manager: web.Server,
        *,
        guards: _Guards,
        loop: asyncio.AbstractEventLoop,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._guards = guards
        self._clock = loop
        self._head_timer: asyncio.TimerHandle | None = None
        self._heads = 0
        """Request heads parsed on this connection (the server's request factory was called)."""
        self._answered = 0
        """Responses finished on this connection; equal to ``_heads`` while it is idle."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """aiohttp's drain, bounded by ``timeout`` in all. aiohttp waits up to ``timeout`` for
        the request under way, then "cancels" it by failing its body read, which a handler
        relaying a stream never does again, and waits up to ``timeout`` once more: a stream
        longer than the grace period kept the process up for twice it. Here the handler's
        task is cancelled when the grace period ends, which ends a stream as a client that
        left would (its upstream request closed, its slot freed)."""
        if timeout is None:
            await super().shutdown(timeout)
            return
        cut = self._clock.call_later(timeout, self._cut_handler)
        try:
            await super().shutdown(timeout)
        finally:
            cut.cancel()

    def _cut_handler(self) -> None:
        task = self._task_handler
        if task is not None and not task.done():
            task.cancel()

    def data_received(self, data: bytes) -> None:
        # The first byte after an answered request starts the next head's deadline; before it,
        # the connection is idle and aiohttp's keep-alive timeout applies.
        if self._head_timer is None and self._heads == self._answered and data:
            self._arm()
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def head_parsed(self) -> None:
        """Called by the server's request factory: a head is complete, its deadline is met."""
        self._heads += 1
        self._disarm()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        resp, reset = await super().finish_response(request, resp, start_time)
        self._answered += 1
        if not resp.keep_alive and not request.content.is_eof():
            # Unread body behind a closing answer (a 413 from Content-Length): do not drain it.
            self.force_close()
        return resp, reset

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        # Only the first line: the parser's message goes on to echo the client's bytes.
        detail = (message or getattr(exc, "message", None) or "malformed request").strip()
        detail = detail.partition("\n")[0].rstrip(":")[:200]
        self._guards.malformed.warn(status=status, detail=detail)
        # No request id was read (the head may not have parsed): every answer carries a new one.
        headers = {"Server": SERVER_NAME, "x-request-id": str(uuid.uuid4())}
        coding = _UNDECODABLE_CODING.match(detail)
        if coding is not None:
            # A well-formed request in a content coding the parser cannot decode (br, zstd):
            # the 415 any other unsupported coding gets, not "malformed".
            error = unsupported_encoding(coding.group(1))
            body = error.to_body()
            status = error.status
            headers.update(error.headers)
        else:
            body = error_body(
                f"The request could not be parsed as HTTP/1.1: {detail}",
                "invalid_request_error",
                None,
                "malformed_request",
            )
        response = web.Response(
            status=status, body=body, content_type="application/json", headers=headers
        )
        response.force_close()
        return response

    def _arm(self) -> None:
        self._head_timer = self._clock.call_later(self._guards.header_timeout, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        self._guards.slow_heads.warn(timeout_seconds=self._guards.header_timeout)
        self.force_close()


class _GuardedServer(web.Server):
    """A ``web.Server`` whose connections are ``_GuardedHandler``s."""

    def __init__(
        self,
        handler: Any,
        *,
        request_factory: _RequestFactory,
        handler_cancellation: bool,
        guards: _Guards,
        loop: asyncio.AbstractEventLoop,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            handler,
            request_factory=self._parsed(request_factory),
            handler_cancellation=handler_cancellation,
            loop=loop,
            **kwargs,
        )
        self._guards = guards
        self._handler_loop = loop
        self._handler_kwargs = kwargs

    @staticmethod
    def _parsed(factory: _RequestFactory) -> _RequestFactory:
        def make_request(
            message: Any, payload: Any, protocol: Any, writer: Any, task: Any
        ) -> web.BaseRequest:
            if isinstance(protocol, _GuardedHandler):
                protocol.head_parsed()
            return factory(message, payload, protocol, writer, task)

        return make_request

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(
            self, guards=self._guards, loop=self._handler_loop, **self._handler_kwargs
        )


class _Runner(web.AppRunner):
    """``AppRunner`` whose server is a ``_GuardedServer``; the app starts up exactly as usual."""

    def __init__(self, app: web.Application, guards: _Guards, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._guards = guards
        # What RequestHandler receives; AppRunner adds debug and access_log_class itself.
        self._protocol_kwargs = {
            key: value
            for key, value in kwargs.items()
            if key not in {"handler_cancellation", "shutdown_timeout"}
        }

    async def _make_server(self) -> web.Server:
        stock = await super()._make_server()  # runs the app's start-up and freezes it
        return _GuardedServer(
            stock.request_handler,
            request_factory=stock.request_factory,
            handler_cancellation=stock.handler_cancellation,
            guards=self._guards,
            loop=asyncio.get_running_loop(),
            debug=False,
            **self._protocol_kwargs,
        )


async def _name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


def make_runner(
    app: web.Application, server: ServerConfig, *, shutdown_timeout: float
) -> web.AppRunner:
    """The runner for ``app``: the production protocol set-up, also used by the tests.

    Call before ``runner.setup()``: it adds the ``Server`` header hook to ``app``.
    """
    app.on_response_prepare.append(_name_the_server)
    return _Runner(
        app,
        _Guards(server.client_header_timeout_seconds),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=server.keepalive_idle_seconds,
        lingering_time=10.0,
    )

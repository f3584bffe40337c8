"""The aiohttp application: routes, middleware, and the runtime's start-up and clean-up.

Middleware order matters: the request-context middleware runs outermost so that every response,
errors included, carries ``x-request-id`` and every log line of the request carries its id; the
CORS preflight answer (only with ``server.cors_origins``) comes next, so preflights are never
counted. ``dialect_errors`` then hands the ``/v1/messages`` routes to
``api.anthropic.anthropic_errors``, which rewrites every error answer (refusals and relayed
errors) into Anthropic's shape, and the ``/api/`` routes to ``api.ollama.ollama_errors`` for
Ollama's. Innermost, ``guard`` runs the checks in order: ``api.hosts`` (``server.allowed_hosts``),
so a request for a name the router does not answer to is refused in its dialect's shape before
it is counted; ``api.auth``, which checks the client key when ``[auth]`` is on, so a request
without a valid one never counts as in flight and its 401 takes its dialect's shape;
``api.limits``, which refuses work past ``server.max_in_flight`` before the handler runs; and
around the handler ``errors_as_envelopes``, which turns anything raised into the OpenAI error
envelope. Each of these was a middleware of its own; as layers they cost every request a
coroutine each (``docs/performance.md``, "The fast path after #15-#21").
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from octoroute.api import (
    admin,
    anthropic,
    cors,
    dashboard_events,
    dashboard_state,
    embeddings,
    legacy,
    ollama,
    openai,
    reload,
    responses,
    ui,
)
from octoroute.api.auth import KeyCheck
from octoroute.api.common import (
    REQUEST_ID,
    RUNTIME,
    error_response,
    openai_error_type,
    too_large,
)
from octoroute.api.hosts import HostCheck
from octoroute.api.limits import InFlightLimit
from octoroute.api.tracing import tracing_middleware
from octoroute.config.schema import Config
from octoroute.errors import (
    MethodNotAllowed,
    OctorouteError,
    RouteNotFound,
    error_body,
)
from octoroute.observability.logging import get_logger
from octoroute.observability.tracing import Tracing
from octoroute.reload import DEFAULT_OPTIONS, Reloader, ReloadOptions
from octoroute.runtime import Runtime

log = get_logger("octoroute.app")

REQUEST_ID_HEADER: Final = "x-request-id"
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
"""Accepted incoming ids: printable, header- and log-safe, at most 128 characters."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random (version 4) UUID as ``str(uuid.uuid4())`` writes it, from the same 16 bytes of
    ``os.urandom``, without building a ``uuid.UUID``: its checks and properties cost about as
    much as the rest of this middleware."""
    value = (int.from_bytes(os.urandom(16)) & _UUID4_CLEAR) | _UUID4_SET
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER)
    if incoming is not None and _WELL_FORMED_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id, in the log context and on the response."""
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    response = await handler(request)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


@web.middleware
async def dialect_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Anthropic's error shape on its paths and Ollama's on theirs
    (``api.anthropic.anthropic_errors``, ``api.ollama.ollama_errors``); every other path goes
    straight on. One layer for both dialects, chosen by path once, instead of two that each
    look at every answer."""
    path = request.path
    if path.startswith(anthropic.PATH_PREFIX):
        return await anthropic.anthropic_errors(request, handler)
    if path.startswith(ollama.PATH_PREFIX):
        return await ollama.ollama_errors(request, handler)
    return await handler(request)


def guard(runtime: Runtime) -> Middleware:
    """The checks every request passes before its handler, in one middleware (a layer each cost
    every request a coroutine): the ``Host`` (``api.hosts``), the client key with ``[auth]``
    (``api.auth``), then a place under ``server.max_in_flight`` (``api.limits``); each refusal
    is answered at once, in that order. Around the handler, every failure becomes the OpenAI
    error envelope (``errors_as_envelopes``), never a traceback or a bare 500. One per
    application, which owns the in-flight count and the checks' rate-limited warnings."""
    hosts = HostCheck()
    keys = KeyCheck(runtime)
    limit = InFlightLimit()

    @web.middleware
    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = hosts.refusal(request, runtime.config.server.allowed_hosts)
        if refusal is None:
            refusal = keys.refusal(request)
        if refusal is not None:
            return refusal
        counted = limit.enter(request, runtime)
        if isinstance(counted, web.Response):
            return counted
        try:
            return await handler(request)
        except Exception as error:
            return errors_as_envelopes(request, error)
        finally:
            if counted:
                limit.leave()

    return guarded


def errors_as_envelopes(request: web.Request, error: Exception) -> web.Response:
    """The answer for ``error``, raised while answering ``request``: the OpenAI envelope, never
    a traceback or a bare 500. Called inside the ``except`` block (an unexpected error is
    logged with its traceback); a cancellation is never caught, it propagates."""
    if isinstance(error, OctorouteError):
        return error_response(error)
    if isinstance(error, web.HTTPException):
        return error_response(_from_http_exception(request, error))
    log.exception("unhandled error while answering a request", path=request.path)
    return web.Response(
        status=500,
        body=error_body(
            "The router hit an internal error while answering this request. It has been "
            f"logged with request id {request.get(REQUEST_ID, '?')}; please report it.",
            "server_error",
            None,
            "internal_error",
        ),
        content_type="application/json",
    )


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> OctorouteError:
    if isinstance(exc, web.HTTPNotFound):
        return RouteNotFound(
            f"There is no {request.method} {request.path} on this router. It serves POST "
            "/v1/chat/completions, POST /v1/completions, POST /v1/responses, POST /v1/messages, "
            "POST /v1/messages/count_tokens, POST /v1/embeddings, "
            "GET /v1/models, "
            "GET /v1/models/{id}, POST /chat, POST /route, GET /health, "
            "GET /models, GET /metrics, POST /admin/reload, GET /admin/state, GET /admin/events, "
            "GET /ui/ (the dashboard) and Ollama's API (GET /api/tags, POST /api/chat, ...)."
        )
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = tuple(sorted(exc.allowed_methods))
        return MethodNotAllowed(
            f"{request.path} does not accept {request.method}; use {' or '.join(allowed)}.",
            allowed=allowed,
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return too_large(request.app[RUNTIME].config.server.max_request_bytes)
    error = OctorouteError(exc.reason or "HTTP error")
    error.status = exc.status
    error.error_type = openai_error_type(exc.status)
    error.code = None
    return error


def create_app(
    config: Config,
    *,
    multiprocess_dir: str | None = None,
    rng: random.Random | None = None,
    reload_options: ReloadOptions = DEFAULT_OPTIONS,
    tracing: Tracing | None = None,
) -> web.Application:
    """The router as an aiohttp application; the runtime is built when the app starts.

    ``rng`` seeds placement's weighted draws (a benchmark's reproducible runs); by default each
    router draws from a fresh ``random.Random()``. ``reload_options`` says how the process was
    started, for reloads of ``config.source`` (``octoroute.reload``). With ``tracing`` every
    request not excluded gets a span (``api.tracing``); without it no tracing code runs."""
    app = web.Application(client_max_size=config.server.max_request_bytes)
    runtime = Runtime(config, multiprocess_dir=multiprocess_dir, rng=rng, tracing=tracing)
    app[RUNTIME] = runtime
    preflight = cors.install(app, config.server.cors_origins)
    app.middlewares.extend(
        [
            request_context,
            *([] if tracing is None else [tracing_middleware(tracing)]),
            *([] if preflight is None else [preflight]),
            dialect_errors,
            guard(runtime),
        ]
    )
    reloader = Reloader(runtime, reload_options)
    app[reload.RELOADER] = reloader

    async def runtime_context(app: web.Application) -> AsyncIterator[None]:
        await runtime.start()
        reloader.start()
        log.info("router ready", source=config.source, **runtime.summary())
        yield
        await reloader.stop()
        await runtime.stop()

    app.cleanup_ctx.append(runtime_context)
    openai.add_routes(app)
    embeddings.add_routes(app)
    legacy.add_routes(app)
    admin.add_routes(app)
    dashboard_state.add_routes(app)
    dashboard_events.add_routes(app)
    reload.add_routes(app)
    responses.add_routes(app)
    anthropic.add_routes(app)
    ollama.add_routes(app)
    ui.add_routes(app)
    return app

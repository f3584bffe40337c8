"""Helpers every handler shares: the runtime key, bodies, error responses, decision headers."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from octoroute.catalog import ModelChoice
from octoroute.enums import DecisionSource, Importance, Pool, TaskType
from octoroute.errors import (
    InvalidRequest,
    MethodNotAllowed,
    OctorouteError,
    PayloadTooLarge,
    RequestTimeout,
    ServerOverloaded,
    UnreadableBody,
)
from octoroute.observability.decisions import Dashboard
from octoroute.observability.logging import get_logger
from octoroute.observability.tracing import RequestTrace
from octoroute.routing.metadata import infer_metadata
from octoroute.routing.strategy import Decision, Router, direct
from octoroute.runtime import Runtime
from octoroute.upstream.forward import Outcome
from octoroute.wire.media import check_content_encoding, check_json_content_type
from octoroute.wire.messages import Message

RUNTIME: Final = web.AppKey("octoroute_runtime", Runtime)
REQUEST_ID: Final = web.RequestKey("octoroute_request_id", str)
IMPORTANCE_HEADER: Final = "x-octoroute-importance"
PREVIEW_CHARS: Final = 120
"""How much of a prompt a debug log line may show; nothing is shown at info or above."""
_IMPORTANCE_VALUES: Final = {importance.value: importance for importance in Importance}

log = get_logger("octoroute.request")


def openai_error_type(status: int) -> str:
    """The OpenAI error ``type`` for an HTTP error status we answer or relay.

    ``invalid_request_error`` for any 4xx (what OpenAI itself answers client errors with, and
    what every ``RequestError`` carries), ``server_error`` for anything else.
    """
    return "invalid_request_error" if status < 500 else "server_error"


def error_response(error: OctorouteError) -> web.Response:
    """``error`` as the OpenAI envelope with its status."""
    response = web.Response(
        status=error.status, body=error.to_body(), content_type="application/json"
    )
    if isinstance(error, MethodNotAllowed) and error.allowed:
        response.headers["Allow"] = ", ".join(error.allowed)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    for name, value in error.headers:
        response.headers[name] = value
    if isinstance(error, PayloadTooLarge | RequestTimeout | UnreadableBody):
        # The rest of the body is not read: close rather than drain it (see serving.py).
        response.force_close()
    elif isinstance(error, ServerOverloaded):
        # A refused client must not keep a file descriptor for keepalive_idle_seconds: when the
        # router is full, descriptors are what it is short of.
        response.force_close()
    return response


async def read_json_body(request: web.Request, *, any_content_type: bool = False) -> bytes:
    """The raw body of a JSON request; 415 for another content type, 413 over the size limit,
    400 for a body aiohttp cannot decode (one whose ``Content-Encoding`` does not match it).

    With ``any_content_type`` the ``Content-Type`` is not read at all: Ollama's API reads every
    body as JSON, and its clients' canonical recipe, ``curl -d '{...}'``, declares a form.
    A ``Content-Length`` over the limit is refused before a byte of the body is read (the client
    may never send it, or send a gigabyte), and the 413 closes the connection.
    """
    if not any_content_type:
        check_json_content_type(request.headers.get("Content-Type"))
    check_content_encoding(request.headers.get("Content-Encoding"))
    limit = request.app[RUNTIME].config.server.max_request_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    try:
        return await _read_body(
            request, request.app[RUNTIME].config.server.client_header_timeout_seconds
        )
    except web.HTTPRequestEntityTooLarge:
        # aiohttp's own exception: raised as our error so the handler logs the 413 it answers.
        raise too_large(limit) from None
    except web.RequestPayloadError as error:
        # aiohttp raises this from read() with the parser's error as the cause; unhandled, it
        # would be a 500 with a logged traceback for what is the client's malformed body.
        detail = getattr(error.__cause__, "message", None) or "the body is malformed"
        raise UnreadableBody(
            f"The request body could not be read: {detail}. Send it uncompressed, or with a "
            "Content-Encoding (gzip, deflate) that matches its bytes."
        ) from None


async def _read_body(request: web.Request, idle: float) -> bytes:
    """``request.read()``, cut with a 408 when no byte of the body arrives for ``idle`` seconds
    (``client_header_timeout_seconds``): the head deadline's twin for the body.

    A body that has already arrived whole (nearly every request) is read at once; only a body
    still arriving gets a watchdog, which checks progress once per period instead of arming a
    timer per read.
    """
    content = request.content
    if content.is_eof():
        return await request.read()
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle | None = None
    try:
        async with asyncio.timeout(None) as deadline:
            seen = content.total_bytes

            def check() -> None:
                nonlocal seen, timer
                if content.total_bytes == seen:
                    deadline.reschedule(loop.time())
                    return
                seen = content.total_bytes
                timer = loop.call_later(idle, check)

            timer = loop.call_later(idle, check)
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(
            f"The request body stopped arriving: no byte for {idle:g} s "
            "(server.client_header_timeout_seconds)."
        ) from None
    finally:
        if timer is not None:
            timer.cancel()


def too_large(limit: int) -> PayloadTooLarge:
    """The 413 for a body over ``server.max_request_bytes`` (``limit``)."""
    return PayloadTooLarge(
        f"The request body is larger than this router's limit of {limit} bytes "
        "(server.max_request_bytes)."
    )


def importance_of(request: web.Request, default: Importance) -> Importance:
    """The ``x-octoroute-importance`` header's value, else the configured default."""
    raw = request.headers.get(IMPORTANCE_HEADER)
    if raw is None:
        return default
    importance = _IMPORTANCE_VALUES.get(raw.strip().lower())
    if importance is None:
        raise InvalidRequest(
            f"The {IMPORTANCE_HEADER} header must be low, normal or high, got {raw[:40]!r}.",
            param=IMPORTANCE_HEADER,
        )
    return importance


async def decide(
    runtime: Runtime,
    choice: ModelChoice,
    messages: list[Message],
    importance: Importance,
    *,
    explain: bool = False,
    stated_task: TaskType | None = None,
    trace: RequestTrace | None = None,
    router: Router | None = None,
) -> Decision:
    """Who serves the request: the router for ``auto``, else the tier or model it named.

    Explicit choices skip metadata inference on the hot path; ``explain`` (the ``/route`` dry
    run) computes it anyway so the answer shows what routing would have seen. ``stated_task``
    is legacy ``/chat``'s stated task type (``Router.route``). With ``trace`` the decision gets
    its own span under the request's. ``router`` replaces the runtime's (``/route``'s
    ``strategy`` parameter).
    """
    if trace is not None:
        return await _traced_decision(
            runtime, choice, messages, importance, explain, stated_task, trace, router
        )
    if (bound := log.bind()).is_enabled_for(logging.DEBUG):
        bound.debug("routing", preview=message_preview(messages), messages=len(messages))
    if choice.tier is None:
        chosen = runtime.router if router is None else router
        return await chosen.route(messages, importance, stated_task=stated_task)
    metadata = infer_metadata(messages, importance) if explain else None
    return direct(choice.tier, endpoint=choice.name is not None, metadata=metadata)


async def _traced_decision(
    runtime: Runtime,
    choice: ModelChoice,
    messages: list[Message],
    importance: Importance,
    explain: bool,
    stated_task: TaskType | None,
    trace: RequestTrace,
    router: Router | None,
) -> Decision:
    """``decide`` inside a routing span, which is open for as long as routing takes (the
    router model's call included) and records what was decided."""
    span = trace.routing()
    chosen = runtime.router if router is None else router
    try:
        decision = await decide(
            runtime,
            choice,
            messages,
            importance,
            explain=explain,
            stated_task=stated_task,
            router=chosen,
        )
        span.decided(decision, chosen.strategy)
    finally:
        span.end()
    return decision


def message_preview(messages: list[Message], limit: int = PREVIEW_CHARS) -> str:
    """The start of the latest message's text, for debug logs only (prompts are private)."""
    if not messages:
        return ""
    text = messages[-1].text()
    return text if len(text) <= limit else text[:limit] + "…"


def record_decision(runtime: Runtime, decision: Decision) -> None:
    """Count the request under its tier and decision source, and how long routing took."""
    runtime.metrics.tiers[decision.tier].count_request[decision.source](1)
    runtime.metrics.observe_routing[decision.source](decision.routing_ms)


CONFIDENCE_HEADER: Final = "x-octoroute-confidence"
"""The learned model's probability that the chosen tier is right (3 decimals), when it decided."""


def decision_headers(request: web.Request, decision: Decision) -> dict[str, str]:
    """Headers that tell the client how its request was routed."""
    headers = {
        "x-request-id": request[REQUEST_ID],
        "x-octoroute-tier": decision.tier.value,
        "x-octoroute-strategy": decision.source.value,
        "x-octoroute-reason": decision.reason,
    }
    if decision.confidence is not None:
        headers[CONFIDENCE_HEADER] = f"{decision.confidence:.3f}"
    return headers


def log_request(
    *,
    route: str,
    model: str,
    decision: Decision | None,
    outcome: Outcome,
    status: int,
    started: float,
    stream: bool,
    served_by: tuple[Pool, str] | None = None,
    key: str | None = None,
    trace: RequestTrace | None = None,
    dashboard: Dashboard | None = None,
    request_id: str = "",
    preview: str | None = None,
) -> None:
    """The one info line per request: what was asked, who decided, who served, how it went.

    ``served_by`` is the pool and reason of a request that is never routed (embeddings), logged
    as ``tier`` and ``reason`` with strategy ``direct``; ``key`` is the client key's name (with
    ``[auth]``). Never message content: prompts are private; never a key. With ``trace`` the
    request's span gets the same fields. With ``dashboard`` (``[ui] enabled``) the request is
    counted in its windows and kept among its decisions, under ``request_id``, with ``preview``
    (only ever set with ``[ui] show_prompts``).
    """
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    fields: dict[str, object] = {
        "route": route,
        "model": model[:100],
        "stream": stream,
        "status": status,
        "attempts": outcome.attempts,
        "duration_ms": duration_ms,
    }
    pool = UNROUTED
    strategy: str | None = None
    reason: str | None = None
    fallback = False
    if decision is not None:
        fields["strategy"] = strategy = decision.source.value
        fields["tier"] = pool = decision.tier.value
        fields["reason"] = reason = decision.reason
        fields["routing_ms"] = round(decision.routing_ms, 3)
        if decision.confidence is not None:
            fields["confidence"] = round(decision.confidence, 3)
        if decision.fallback is not None:
            fields["routing_fallback"] = decision.fallback
            fallback = True
    elif served_by is not None:
        fields["strategy"] = strategy = DecisionSource.DIRECT.value
        fields["tier"] = pool = served_by[0].value
        fields["reason"] = reason = served_by[1]
    if outcome.endpoint is not None:
        fields["endpoint"] = outcome.endpoint.name
        fields["instance"] = outcome.endpoint.id
    ttfb_ms = None
    if outcome.ttfb is not None:
        fields["ttfb_ms"] = ttfb_ms = round(outcome.ttfb * 1000, 2)
    if outcome.usage is not None:
        fields["prompt_tokens"], fields["completion_tokens"] = outcome.usage
    if outcome.error is not None:
        fields["error"] = outcome.error
    if key is not None:
        fields["key"] = key
    # ``log.info`` itself would cost as much again when the level drops the line: ``log`` is
    # structlog's lazy proxy, reached through a failed attribute lookup, and a dropped call
    # still gathers its keyword arguments (docs/performance.md, "The fast path, function by
    # function"). ``bind()`` is the logger the proxy would use, cached after the first call.
    if (bound := log.bind()).is_enabled_for(logging.INFO):
        bound.info("request", **fields)
    if trace is not None:
        trace.annotate(fields)
    if dashboard is not None:
        # The dashboard's recording, on every request's path (bench/dashboard.py): a count in
        # the current window bucket and the decision kept as its log fields.
        now = time.time()
        dashboard.traffic.record(
            now,
            (pool, strategy, reason),
            duration_ms,
            ttfb_ms,
            outcome.endpoint,
            outcome.usage,
            status >= 500,
            outcome.attempts,
            fallback,
        )
        item = (now, request_id, fields, preview)
        dashboard.decisions.append(item)
        if dashboard.listeners:
            dashboard.tell(item)


UNROUTED: Final = "unrouted"
"""The dashboard's pool for a request that ended before it had a tier (a bad body, an unknown
model)."""
CLIENT_CLOSED_REQUEST: Final = 499
"""Logged (never sent) when the client went away before its answer was complete."""


class RequestLog:
    """The one log line of a request, filled in as the handler goes and written on the way out.

    Used as ``with RequestLog(route) as entry:`` around a handler's body: whatever ends it (an
    answer, an ``OctorouteError``, the client going away) the line is written once, with the
    status the client got (499 when it left). A plain class, not a generator-based context
    manager, because it is on every request's path.
    """

    __slots__ = (
        "dashboard",
        "decision",
        "key",
        "model",
        "outcome",
        "preview",
        "previewing",
        "request_id",
        "route",
        "served_by",
        "started",
        "status",
        "stream",
        "trace",
    )

    def __init__(
        self,
        route: str,
        key: str | None = None,
        trace: RequestTrace | None = None,
        *,
        dashboard: Dashboard | None = None,
        request_id: str = "",
    ) -> None:
        self.route = route
        self.dashboard = dashboard
        """Where the request is recorded for the dashboard; ``None`` with ``[ui]`` off."""
        self.request_id = request_id
        self.previewing = dashboard is not None and dashboard.show_prompts
        """Whether the handler should keep a preview of the request (:meth:`keep_preview`):
        ``[ui] show_prompts`` is on."""
        self.preview: str | None = None
        """The latest user turn's preview (only with ``previewing``)."""
        self.key = key
        """The client key's name, with ``[auth]``."""
        self.trace = trace
        """The request's span, which gets the log line's fields too."""
        self.started = time.perf_counter()
        self.outcome = Outcome()
        self.decision: Decision | None = None
        self.served_by: tuple[Pool, str] | None = None
        self.model = ""
        self.stream = False
        self.status = 500
        """The status sent; set by the handler when it answers."""

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, OctorouteError):
            self.status = error.status
        elif isinstance(error, asyncio.CancelledError):
            self.status = CLIENT_CLOSED_REQUEST
            self.outcome.error = self.outcome.error or "client_disconnected"
        log_request(
            route=self.route,
            model=self.model,
            decision=self.decision,
            outcome=self.outcome,
            status=self.status,
            started=self.started,
            stream=self.stream,
            served_by=self.served_by,
            key=self.key,
            trace=self.trace,
            dashboard=self.dashboard,
            request_id=self.request_id,
            preview=self.preview,
        )

    def keep_preview(self, messages: list[Message]) -> None:
        """Keep a preview of the latest user turn of ``messages`` for the dashboard's decision;
        handlers call it only when :attr:`previewing`, so nothing is read otherwise."""
        dashboard = self.dashboard
        if dashboard is not None:
            self.preview = user_turn_preview(messages, dashboard.preview_chars)


def request_log(
    request: web.Request, route: str, key: str | None, trace: RequestTrace | None
) -> RequestLog:
    """The :class:`RequestLog` of ``request``: its id, and the dashboard when it records."""
    return RequestLog(
        route,
        key,
        trace,
        dashboard=request.app[RUNTIME].recorder,
        request_id=request[REQUEST_ID],
    )


def user_turn_preview(messages: list[Message], limit: int) -> str:
    """The start of the latest user message's text, an ellipsis added where it was cut; ``""``
    without a user message. Only the text of that one message is read, and only sliced: the
    whitespace is folded when the decision is shown (``api.dashboard_state.shown_preview``),
    so four times ``limit`` characters are kept, enough for runs of spaces and newlines to
    fold away without shortening the ``limit`` characters shown."""
    keep = limit * 4
    for message in reversed(messages):
        if message.role == "user":
            text = message.text()
            return text if len(text) <= keep else text[:keep] + "…"
    return ""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorShape = Callable[[web.Request, int, str, "str | None"], bytes]
"""A dialect's error body for a request, the status, the message and the router's error
``code`` (``None`` for an error relayed from an upstream)."""


def dialect_errors(prefix: str, shape: ErrorShape) -> Middleware:
    """A middleware that writes every error answer not yet sent on paths starting with
    ``prefix`` in a dialect's own shape, with the same status and headers; other paths are left
    alone. The message is the OpenAI envelope's, or a relayed body's ``error`` string, or the
    body's text."""

    @web.middleware
    async def rewrite(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if (
            response.status < 400
            or response.prepared
            or not request.path.startswith(prefix)
            or not isinstance(response, web.Response)
        ):
            return response
        body = response.body if isinstance(response.body, bytes) else b""
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            decoded = None
        error = decoded.get("error") if isinstance(decoded, dict) else None
        code = None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
            code = error.get("code") if isinstance(error.get("code"), str) else None
        elif isinstance(error, str):
            message = error
        else:
            message = body.decode("utf-8", "replace") or (response.reason or "error")
        response.body = shape(request, response.status, message, code)
        response.content_type = "application/json"
        return response

    return rewrite

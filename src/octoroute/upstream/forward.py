"""Forwarding: the attempt loop, buffered relay and token-by-token streaming relay.

Rules, each with a test:
- up to three attempts, each on an endpoint of the scope not tried yet (100 ms then 200 ms
  apart); what happens after a failed attempt is decided in one place, :meth:`Forwarder._settle`,
  for buffered and streaming requests alike:

  ========================================  ===========  =======================  ==============
  failure                                   next         held against the server  client sees
  ========================================  ===========  =======================  ==============
  other 4xx (the client's request)          relay it     no (proves it alive)     that answer
  429, or 503 with ``Retry-After``          next one     no: left alone a while   429/503 + RA
  every ``max_connections`` slot busy       next one     no                       503
  timeout, connect, 5xx, broken answer      next one     yes: health and          502/504
  (also one the dialect's translator                     ejection count
  cannot read), too large, 401/403
  router out of file descriptors            stop         no                       503 at once
  ========================================  ===========  =======================  ==============

- a stream may fail over only until its first byte has been written to the client; after that a
  failure ends the stream with an OpenAI-style error event and ``[DONE]``;
- a client that goes away cancels the upstream request at once (aiohttp cancels the handler;
  ``finally`` drops the upstream connection), freeing the GPU slot; so does a stream's client
  that stays connected but reads none of its answer for the tier's timeout (``ClientStalled``);
- every attempt holds a slot on its endpoint from start to end (``fleet.dispatch``: placement
  prefers the least loaded; at ``max_concurrent`` the next request waits), released on every
  way out (answer, error, failover, mid-stream failure, client gone), and a half-open
  endpoint's one trial attempt carries its verdict back;
- an answer from an instance the prober said was cold counts as a cold start, timed to its
  first byte, and the instance counts as warm from then on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol, TypeVar

from aiohttp import web

from octoroute.config.schema import DEFAULT_STREAM_KEEPALIVE_SECONDS, EndpointConfig
from octoroute.enums import Importance
from octoroute.errors import (
    BadUpstreamResponse,
    EventTooLarge,
    ServerOverloaded,
    StreamTooLong,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamThrottled,
    UpstreamTimeout,
)
from octoroute.fleet.dispatch import Dispatcher, Ticket
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.placement import NO_DEMAND
from octoroute.fleet.selector import Fleet
from octoroute.observability.logging import get_logger
from octoroute.observability.metrics import EndpointMetrics, Metrics
from octoroute.observability.tracing import AttemptTrace, RequestTrace
from octoroute.upstream.attempts import (
    MAX_ATTEMPTS,
    Scope,
    backoff_before,
    busy_seconds,
    exhausted,
)
from octoroute.upstream.backpressure import ClientStalled, ClientWriter
from octoroute.upstream.client import Target, UpstreamClient, UpstreamStream
from octoroute.wire import ndjson, sse

SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

UNREADABLE: Final = (TypeError, ValueError, AttributeError, KeyError, IndexError)
"""What a translator raises on an upstream event of an unexpected shape: caught where upstream
bytes enter it and turned into ``BadUpstreamResponse``."""

AUTH_LOG_INTERVAL_SECONDS: Final = 60.0
"""At most one log line a minute per endpoint whose upstream refuses the router's key."""

T = TypeVar("T")


def untranslatable(label: str, what: str, error: Exception) -> BadUpstreamResponse:
    """The upstream fault for an answer or event a translator could not read (``UNREADABLE``):
    failed over before the client got anything, the stream's error ending after."""
    return BadUpstreamResponse(
        f"{label}: sent a {what} that could not be translated ({type(error).__name__}: {error})",
        endpoint=label,
    )


class UpstreamRequest(Protocol):
    """A validated request of any dialect, as forwarding needs it: where it goes under an
    endpoint's ``base_url`` and the body that endpoint gets. Both are asked per attempt, so a
    dialect may speak natively to one endpoint and be translated for another."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """One of ``upstream.client.UPSTREAM_PATHS``: where ``endpoint`` gets this request."""
        ...

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The body to send ``endpoint`` (its ``name`` as ``model``)."""
        ...


log = get_logger("octoroute.upstream")


class StreamTranslator(Protocol):
    """Turns an upstream chat-completions stream into another dialect's events, per request.

    The relay keeps its rules (whole events only, failover before the first byte, keep-alives,
    limits); a translator only rewrites what is written. Stateful: one per request.
    """

    media_type: str
    """The answer's ``Content-Type`` (``text/event-stream`` for SSE dialects)."""

    def opening(self) -> bytes:
        """Events written before the first translated ones (e.g. ``response.created``)."""
        ...

    def keepalive(self) -> bytes:
        """What is written after a quiet keep-alive interval, so proxies keep the stream open:
        an SSE comment, the dialect's own ping event, or nothing (``b""``) for a format that has
        no harmless filler."""
        ...

    def translate(self, events: list[bytes]) -> bytes:
        """The client's bytes for these complete upstream events (``[DONE]`` included)."""
        ...

    def closing(self) -> bytes:
        """Events written after the upstream stream ended cleanly.

        Raises ``UpstreamError`` when the body ended cleanly but the answer did not (no
        ``finish_reason``, no ``[DONE]``): the relay then ends the stream as one that broke.
        """
        ...

    def failed(self, error: UpstreamError) -> bytes:
        """Events that end a stream broken after it started, in the dialect's own way."""
        ...

    def whole(self, answer: bytes) -> bytes:
        """The full event stream for an upstream that answered JSON although asked to stream;
        ``BadUpstreamResponse`` when the answer is not what the translator can read."""
        ...


Translators = Callable[[EndpointConfig], "StreamTranslator | None"]
"""The translator for an attempt on an endpoint (``None``: relay its events as they come)."""


class Outcome:
    """What happened to one request upstream: filled in by the forwarder, read by the log line."""

    __slots__ = ("attempts", "endpoint", "error", "status", "ttfb", "usage")

    def __init__(self) -> None:
        self.attempts = 0
        self.endpoint: Endpoint | None = None
        self.status: int | None = None
        self.ttfb: float | None = None
        self.usage: tuple[int, int] | None = None
        self.error: str | None = None


class Answer:
    """A buffered upstream answer to relay: a 2xx, or a 4xx that is the client's own error."""

    __slots__ = ("body", "content_type", "endpoint", "status")

    def __init__(self, status: int, content_type: str, body: bytes, endpoint: Endpoint) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self.endpoint = endpoint

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status < 300

    def to_response(self, headers: dict[str, str]) -> web.Response:
        """This answer as it came, plus our headers."""
        headers["x-octoroute-endpoint"] = self.endpoint.config.name
        headers["Content-Type"] = self.content_type or "application/json"
        return web.Response(status=self.status, body=self.body, headers=headers)


class Lane:
    """An endpoint together with what is prepared for it at start-up: its target and metrics."""

    __slots__ = ("_auth_logged_at", "_auth_suppressed", "endpoint", "metrics", "target")

    def __init__(self, endpoint: Endpoint, target: Target, metrics: EndpointMetrics) -> None:
        self.endpoint = endpoint
        self.target = target
        self.metrics = metrics
        self._auth_logged_at = -math.inf
        self._auth_suppressed = 0

    def log_auth_failure(self, error: UpstreamAuthFailed) -> None:
        """Log that the upstream refused our credentials: at error, since only the operator can
        fix it, but once a minute per endpoint, so a busy router does not flood its log."""
        now = time.monotonic()
        if now - self._auth_logged_at < AUTH_LOG_INTERVAL_SECONDS:
            self._auth_suppressed += 1
            return
        log.error(
            "upstream refused the router's credentials",
            endpoint=self.endpoint.name,
            instance=self.endpoint.id,
            detail=error.message,
            suppressed=self._auth_suppressed,
        )
        self._auth_logged_at = now
        self._auth_suppressed = 0


class _Attempt:
    """One attempt on one endpoint: its lane, rendered body, the header lines of this attempt
    alone, start time, trial flag, and whether the instance was known cold when it started."""

    __slots__ = ("body", "cold", "extra", "lane", "path", "started", "trial")

    def __init__(self, lane: Lane, body: bytes, path: str, trial: bool, extra: bytes) -> None:
        self.lane = lane
        self.body = body
        self.path = path
        self.trial = trial
        self.extra = extra
        self.cold = lane.endpoint.cold
        self.started = time.perf_counter()


class Forwarder:
    """Sends a routed request to an endpoint of its scope and relays the answer."""

    def __init__(
        self,
        fleet: Fleet,
        client: UpstreamClient,
        metrics: Metrics,
        lanes: dict[Endpoint, Lane],
        *,
        max_event_bytes: int = 4 * 1024 * 1024,
        stream_total_seconds: float | None = None,
        keepalive_seconds: float = DEFAULT_STREAM_KEEPALIVE_SECONDS,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._fleet = fleet
        self._dispatch = (
            Dispatcher(fleet, max_queue=0, queue_timeout=0.0) if dispatcher is None else dispatcher
        )
        self._client = client
        self._metrics = metrics
        self._lanes = lanes
        self._max_event_bytes = max_event_bytes
        self._stream_total = stream_total_seconds
        self._keepalive = keepalive_seconds
        """Quiet seconds before a stream gets a keep-alive (``server.stream_keepalive_seconds``)."""

    # --- the one attempt loop and the one place that judges a failure -------------------------

    async def _attempts(
        self,
        scope: Scope,
        candidates: Sequence[Endpoint],
        request: UpstreamRequest,
        outcome: Outcome,
        run: Callable[[_Attempt], Awaitable[T]],
        ticket: Ticket | None,
        extra: bytes,
        trace: RequestTrace | None,
    ) -> T | Answer:
        """Run ``run`` on endpoint after endpoint until one succeeds or the budget is spent.

        ``run`` performs one attempt and raises an ``UpstreamError`` when it fails before the
        client got anything; the attempt holds its slot until ``run`` returns. Each attempt
        takes its slot from the dispatcher (waiting in the queue when the scope is full); the
        first may use one the ticket reserved at admission. With ``trace`` each attempt has a
        span, open from its slot to its last byte, whose context it sends as ``traceparent``.
        """
        if ticket is None:
            ticket = self._dispatch.ticket(NO_DEMAND, Importance.NORMAL)
        tried: list[Endpoint] = []
        last_error: UpstreamError | None = None
        for number in range(1, MAX_ATTEMPTS + 1):
            taken = ticket.take_reserved()
            if taken is None:
                if number > 1:
                    await asyncio.sleep(backoff_before(number))
                taken = await self._dispatch.acquire(candidates, tried, ticket, scope.description)
            if taken is None:
                break
            endpoint, trial = taken
            lane = self._lanes[endpoint]
            lane.metrics.move_inflight(1)
            config = endpoint.config
            span: AttemptTrace | None = None
            try:
                tried.append(endpoint)
                outcome.attempts, outcome.endpoint = number, endpoint
                if trace is not None:
                    span = trace.attempt(config, endpoint.id, number)
                headers = extra if span is None else extra + span.header_lines()
                attempt = _Attempt(
                    lane, request.body_for(config), request.path_for(config), trial, headers
                )
                earlier = outcome.error
                result = await run(attempt)
                if span is not None:
                    # ``outcome.error`` still names an earlier attempt's failure unless this
                    # one set its own (a stream broken mid-way, a client gone or stalled).
                    late = outcome.error if outcome.error is not earlier else None
                    span.answered(outcome.status, late)
                return result
            except UpstreamError as error:
                relayed = self._settle(attempt, error, scope, outcome)
                if span is not None:
                    _failed(span, error, relayed is not None)
                if relayed is not None:
                    return relayed
                last_error = error
            except ServerOverloaded as error:
                self._metrics.overloads[error.reason].inc()
                outcome.error = "server_overloaded"
                if span is not None:
                    span.failed(outcome.error, None, False)
                raise
            finally:
                lane.metrics.move_inflight(-1)
                endpoint.end(trial)
                if span is not None:
                    span.end()
        raise exhausted(scope, len(tried), last_error, self._fleet.unavailability(candidates))

    def _settle(
        self, attempt: _Attempt, error: UpstreamError, scope: Scope, outcome: Outcome
    ) -> Answer | None:
        """Judge a failed attempt: the answer to relay, or ``None`` to try the next endpoint.

        The table in this module's docstring, written once for both kinds of request.
        """
        lane = attempt.lane
        endpoint = lane.endpoint
        if isinstance(error, UpstreamStatusError) and error.is_client_error:
            # The server judged the request on its merits: alive, and the client's to fix.
            endpoint.answered(attempt.trial)
            lane.metrics.response(error.upstream_status)
            outcome.status = error.upstream_status
            return Answer(error.upstream_status, error.content_type, error.body, endpoint)
        outcome.error = error.reason
        self._metrics.pools[scope.pool].retries[error.reason].inc()
        if isinstance(error, UpstreamThrottled):
            lane.metrics.throttled.inc()
            lane.metrics.response(error.upstream_status)
            endpoint.throttle(busy_seconds(error.retry_after), error.upstream_status)
            return None
        if not error.counts_against_health:
            return None
        if isinstance(error, UpstreamAuthFailed):
            lane.log_auth_failure(error)
        status = error.upstream_status if isinstance(error, UpstreamStatusError) else None
        lane.metrics.response(status)
        # The message, not the metric label: it is what ``GET /models`` shows as ``last_error``.
        endpoint.failed(error.reason, error.message, attempt.trial)
        return None

    @staticmethod
    def _first_byte(attempt: _Attempt, ttfb: float) -> None:
        """The answer's first byte arrived after ``ttfb`` seconds: a cold start when the
        instance was known cold and no other request has warmed it meanwhile (from now on it
        counts as warm)."""
        endpoint = attempt.lane.endpoint
        if attempt.cold and endpoint.cold:
            metrics = attempt.lane.metrics
            metrics.cold_starts.inc()
            metrics.cold_start_seconds.observe(ttfb)
            endpoint.loaded()

    def _succeeded(self, attempt: _Attempt, scope: Scope, outcome: Outcome, ttfb: float) -> None:
        lane = attempt.lane
        lane.endpoint.succeeded(attempt.trial)
        lane.metrics.response(200)
        lane.metrics.observe_ttfb(ttfb)
        lane.metrics.observe_duration(time.perf_counter() - attempt.started)
        tier_metrics = self._metrics.pools[scope.pool]
        tier_metrics.count_invocation(1)
        if outcome.attempts > 1:
            tier_metrics.failovers.inc()
        if outcome.usage is not None:
            tier_metrics.add_tokens["prompt"](outcome.usage[0])
            tier_metrics.add_tokens["completion"](outcome.usage[1])

    def _checked_usage(self, attempt: _Attempt, body: bytes) -> tuple[int, int] | None:
        """The answer's usage (``usage`` in chat's, Messages' or Responses' names, else Ollama's
        eval counts); ``BadUpstreamResponse`` when a 2xx body is not a JSON object."""
        try:
            usage = sse.answer_usage(body)
            return ndjson.usage_from_line(body) if usage is None else usage
        except ValueError:
            label = attempt.lane.target.label
            raise BadUpstreamResponse(
                f"{label}: answered 200 with a body that is not a JSON object "
                f"({sse.describe_body(body)})",
                endpoint=label,
            ) from None

    # --- buffered ---------------------------------------------------------------------------

    async def complete(
        self,
        scope: Scope,
        candidates: Sequence[Endpoint],
        request: UpstreamRequest,
        timeout: float,
        outcome: Outcome,
        *,
        extra: bytes = b"",
        rewrite: Callable[[Answer], Answer] | None = None,
        ticket: Ticket | None = None,
        trace: RequestTrace | None = None,
    ) -> Answer:
        """Forward a non-streaming request; the upstream's JSON body comes back as it was.

        ``extra`` is header lines sent upstream with this request alone (trace context).
        ``rewrite`` turns each attempt's 2xx answer into the client's dialect before the attempt
        counts as a success: an answer it cannot rewrite raises ``BadUpstreamResponse``, which
        fails over and is held against that endpoint like any broken answer. ``ticket`` carries
        the request's placement demand, urgency and queue deadline (default: none of them).
        ``trace``, the request's span, gets a child span per attempt.
        """

        async def run(attempt: _Attempt) -> Answer:
            answer = await self._client.send(
                attempt.lane.target,
                attempt.body,
                timeout=timeout,
                path=attempt.path,
                extra=attempt.extra,
            )
            usage = self._checked_usage(attempt, answer.body)
            result = Answer(answer.status, answer.content_type, answer.body, attempt.lane.endpoint)
            if rewrite is not None:
                try:
                    result = rewrite(result)
                except UNREADABLE as error:
                    raise untranslatable(attempt.lane.target.label, "answer", error) from None
            outcome.ttfb, outcome.status, outcome.usage = answer.ttfb, answer.status, usage
            self._first_byte(attempt, answer.ttfb)
            self._succeeded(attempt, scope, outcome, answer.ttfb)
            return result

        return await self._attempts(scope, candidates, request, outcome, run, ticket, extra, trace)

    # --- streaming --------------------------------------------------------------------------

    async def stream(
        self,
        scope: Scope,
        candidates: Sequence[Endpoint],
        request: UpstreamRequest,
        timeout: float,
        headers: dict[str, str],
        outcome: Outcome,
        http_request: web.Request,
        *,
        extra: bytes = b"",
        translators: Translators | None = None,
        ticket: Ticket | None = None,
        trace: RequestTrace | None = None,
    ) -> web.StreamResponse:
        """Forward a streaming request, relaying SSE events as they arrive.

        Until the first event reaches the client, failures fail over like buffered requests.
        With ``translators``, each attempt's events are rewritten on the way by the translator
        it gives for the attempt's endpoint (a fresh one per attempt).
        """

        async def run(attempt: _Attempt) -> web.StreamResponse:
            config = attempt.lane.endpoint.config
            # Before the stream opens: nothing between opening it and handing it to the relay
            # may raise, or its connection would never go back to the pool.
            translator = None if translators is None else translators(config)
            # stream_total_seconds counts from the start of the attempt: the wait for the
            # headers is part of it (a failover, not a failure, when it is what ran out)
            total = self._stream_total
            opening = timeout if total is None else min(timeout, total)
            try:
                upstream = await self._client.open_stream(
                    attempt.lane.target,
                    attempt.body,
                    timeout=opening,
                    read_timeout=timeout,
                    path=attempt.path,
                    extra=attempt.extra,
                )
            except UpstreamTimeout:
                if opening >= timeout:
                    raise
                label = attempt.lane.target.label
                raise StreamTooLong(
                    f"{label}: no answer before timeouts.stream_total_seconds ran out",
                    endpoint=label,
                ) from None
            headers["x-octoroute-endpoint"] = attempt.lane.endpoint.config.name
            # NDJSON (Ollama's own streams) only where a translator reads it; a chat request
            # answered so is relayed whole, as any other non-SSE answer.
            lines = translator is not None and upstream.content_type.startswith(ndjson.MEDIA_TYPE)
            if not lines and not upstream.content_type.startswith("text/event-stream"):
                return await self._json_instead(
                    attempt, upstream, scope, outcome, headers, translator
                )
            deadline = (
                None
                if total is None
                else time.monotonic() + total - (time.perf_counter() - attempt.started)
            )
            relay = _Relay(
                upstream,
                attempt.lane.target.label,
                self._max_event_bytes,
                deadline,
                self._keepalive,
                translator,
                lines=lines,
                client=ClientWriter(http_request.transport, timeout),
            )
            try:
                first = await relay.first_events()
            except BaseException:
                upstream.close()
                raise
            ttfb = time.perf_counter() - attempt.started
            self._first_byte(attempt, ttfb)
            outcome.ttfb, outcome.status = ttfb, 200
            stream_headers = {**headers, **SSE_HEADERS}
            if translator is not None:
                stream_headers["Content-Type"] = translator.media_type
            response = web.StreamResponse(status=200, headers=stream_headers)
            return await self._relay(relay, response, first, http_request, attempt, scope, outcome)

        result = await self._attempts(
            scope, candidates, request, outcome, run, ticket, extra, trace
        )
        return result.to_response(headers) if isinstance(result, Answer) else result

    async def _json_instead(
        self,
        attempt: _Attempt,
        upstream: UpstreamStream,
        scope: Scope,
        outcome: Outcome,
        headers: dict[str, str],
        translator: StreamTranslator | None,
    ) -> web.Response:
        """Some servers ignore ``"stream"``: relay their JSON answer as it came (translated into
        the whole event stream when a translator is at work)."""
        try:
            payload = await upstream.read_rest()
        except BaseException:
            upstream.close()
            raise
        upstream.release()
        usage = self._checked_usage(attempt, payload)
        # Translated before the attempt counts as a success: an answer the translator cannot
        # read raises BadUpstreamResponse, which fails over like any broken answer.
        events = None
        if translator is not None:
            label = attempt.lane.target.label
            try:
                events = translator.whole(payload)
            except BadUpstreamResponse as error:
                raise BadUpstreamResponse(f"{label}: {error.message}", endpoint=label) from None
            except UNREADABLE as error:
                raise untranslatable(label, "answer", error) from None
        ttfb = time.perf_counter() - attempt.started
        self._first_byte(attempt, ttfb)
        outcome.ttfb, outcome.status, outcome.usage = ttfb, upstream.status, usage
        self._succeeded(attempt, scope, outcome, ttfb)
        if events is not None and translator is not None:
            translated = {**headers, **SSE_HEADERS, "Content-Type": translator.media_type}
            return web.Response(status=upstream.status, body=events, headers=translated)
        headers["Content-Type"] = upstream.content_type or "application/json"
        return web.Response(status=upstream.status, body=payload, headers=headers)

    async def _relay(
        self,
        relay: _Relay,
        response: web.StreamResponse,
        first: bytes,
        http_request: web.Request,
        attempt: _Attempt,
        scope: Scope,
        outcome: Outcome,
    ) -> web.StreamResponse:
        ttfb = outcome.ttfb or 0.0
        clean = False
        translator = relay.translator
        try:
            await response.prepare(http_request)
            opening = b"" if translator is None else translator.opening()
            if first or opening:
                await relay.client.write(response, opening + first)
            try:
                await relay.pump(response)
                closing = relay.closing()
            except UpstreamError as error:
                await self._interrupted(response, attempt, error, outcome, relay)
                return response
            clean = True
            outcome.usage = relay.usage
            self._succeeded(attempt, scope, outcome, ttfb)
            if closing:
                await relay.client.write(response, closing)
            await relay.client.finish(response)
        except ClientStalled:
            outcome.error = "client_stalled"
            if http_request.transport is not None:
                # Closed, not left to aiohttp: its own end of the response would wait for
                # the client to read just as long.
                http_request.transport.abort()
        except ConnectionResetError:
            outcome.error = "client_disconnected"
        finally:
            # Back to the pool only when the body was read to its end: a stream stopped at
            # [DONE] before the upstream's terminator arrived would poison the connection.
            if clean and relay.upstream.at_eof():
                relay.upstream.release()
            else:
                relay.upstream.close()
        return response

    async def _interrupted(
        self,
        response: web.StreamResponse,
        attempt: _Attempt,
        error: UpstreamError,
        outcome: Outcome,
        relay: _Relay,
    ) -> None:
        """End a stream that failed after it started: an error event, ``[DONE]``, the end (or
        the translator's way of saying so)."""
        translator = relay.translator
        lane = attempt.lane
        outcome.error = f"mid_stream_{error.reason}"
        lane.metrics.mid_stream_failures.inc()
        if error.counts_against_health:
            lane.metrics.response(None)
            lane.endpoint.failed(error.reason, f"mid-stream: {error.message}", attempt.trial)
        else:
            lane.endpoint.answered(attempt.trial)
        if translator is not None:
            await relay.client.write(response, translator.failed(error))
            await relay.client.finish(response)
            return
        code = error.code if isinstance(error, StreamTooLong | EventTooLarge) else None
        await relay.client.write(
            response,
            sse.error_event(
                f"The upstream stream failed after it had started: {error.message}. "
                "The answer above is incomplete.",
                "api_error",
                code or "upstream_stream_interrupted",
            )
            + sse.DONE_EVENT,
        )
        await relay.client.finish(response)


def _failed(span: AttemptTrace, error: UpstreamError, relayed: bool) -> None:
    """Record a failed attempt on its span: its reason and the upstream's status, if any."""
    status = (
        error.upstream_status
        if isinstance(error, UpstreamStatusError | UpstreamThrottled)
        else None
    )
    span.failed(error.reason, status, relayed)


class _Relay:
    """Reads an upstream SSE body and hands over whole events only.

    Only complete events are written to the client, so an error event can always follow cleanly.
    ``[DONE]`` ends the answer: nothing after it is relayed or read, so an upstream that drops
    the connection (or never ends its body) after ``[DONE]`` cannot append an error to a
    complete answer. An event still incomplete past ``max_event_bytes`` is an upstream fault
    (the splitter would otherwise grow without bound); past ``deadline`` the stream is cut.

    With ``lines`` the body is NDJSON (Ollama's own streams): the same rules with a line for an
    event and the ``"done": true`` line for ``[DONE]``.

    Writing to the client is bounded too (``upstream.backpressure``): a client that takes
    nothing of its answer for the tier's timeout is ``ClientStalled``.
    """

    __slots__ = (
        "client",
        "deadline",
        "done",
        "keepalive_seconds",
        "label",
        "lines",
        "max_event_bytes",
        "splitter",
        "translator",
        "upstream",
        "usage",
    )

    def __init__(
        self,
        upstream: UpstreamStream,
        label: str,
        max_event_bytes: int,
        deadline: float | None,
        keepalive_seconds: float,
        translator: StreamTranslator | None = None,
        *,
        lines: bool = False,
        client: ClientWriter | None = None,
    ) -> None:
        self.upstream = upstream
        self.client = ClientWriter(None, math.inf) if client is None else client
        """Writes to the client, bounded by its progress."""
        self.keepalive_seconds = keepalive_seconds
        """Quiet seconds after which a keep-alive is written."""
        self.label = label
        self.translator = translator
        self.lines = lines
        self.splitter: sse.SSESplitter | ndjson.LineSplitter = (
            ndjson.LineSplitter() if lines else sse.SSESplitter()
        )
        self.max_event_bytes = max_event_bytes
        self.deadline = deadline
        """``time.monotonic()`` reading at which the stream is cut; ``None``: never."""
        self.usage: tuple[int, int] | None = None
        self.done = False
        """``[DONE]`` has been handed over."""

    def _take(self, chunk: bytes) -> bytes:
        events = self.splitter.feed(chunk)
        if self.splitter.pending_size > self.max_event_bytes:
            raise EventTooLarge(
                f"{self.label}: sent {'a line' if self.lines else 'an SSE event'} of more "
                f"than {self.max_event_bytes} "
                "bytes without ending it (limits.max_event_bytes)",
                endpoint=self.label,
            )
        if not events:
            return b""
        if self.lines:
            return self._take_lines(events)
        data = events[0] if len(events) == 1 else b"".join(events)
        if b"[DONE]" in data:
            for index, event in enumerate(events):
                if sse.is_done(event):
                    self.done = True
                    if index + 1 < len(events):
                        events = events[: index + 1]
                        data = b"".join(events)
                    break
        if b'"usage"' in data:
            for event in events:
                usage = sse.usage_from_event(event, self.usage)
                if usage is not None:
                    self.usage = usage
        if self.translator is not None:
            return self._translated(events)
        return data

    def _translated(self, events: list[bytes]) -> bytes:
        """The translator's bytes for ``events``; an event it cannot read (a field of the wrong
        type, say) is the upstream's broken answer, never a crash of the request."""
        assert self.translator is not None
        try:
            return self.translator.translate(events)
        except UNREADABLE as error:
            raise untranslatable(self.label, "stream event", error) from None

    def closing(self) -> bytes:
        """The translator's end of a stream whose body ended cleanly (nothing for a relayed
        one). A translator that finds the answer cut short raises ``UpstreamProtocolError``,
        given this endpoint's name here, as the client's own failures are."""
        if self.translator is None:
            return b""
        try:
            return self.translator.closing()
        except UpstreamProtocolError as error:
            raise UpstreamProtocolError(
                f"{self.label}: {error.message}", endpoint=self.label
            ) from None
        except UNREADABLE as error:
            raise untranslatable(self.label, "stream", error) from None

    def _take_lines(self, lines: list[bytes]) -> bytes:
        """``_take`` for NDJSON: the final line ends the answer and carries its usage."""
        for index, line in enumerate(lines):
            if ndjson.is_final(line):
                self.done = True
                self.usage = ndjson.usage_from_line(line) or self.usage
                del lines[index + 1 :]
                break
        if self.translator is None:  # not so: NDJSON is only relayed through a translator
            return b"".join(lines)
        return self._translated(lines)

    def _too_long(self) -> StreamTooLong:
        label = self.label
        return StreamTooLong(
            f"{label}: the stream ran past timeouts.stream_total_seconds and was cut",
            endpoint=label,
        )

    async def first_events(self) -> bytes:
        """The first complete event(s), or a keep-alive comment when none came within the
        keep-alive interval.

        Raises an ``UpstreamError`` when the upstream fails or ends before sending any event, or
        the stream's total time runs out first, which still allows failing over.
        """
        loop = asyncio.get_running_loop()
        until = loop.time() + self.keepalive_seconds
        cut = self.deadline is not None and self.deadline - time.monotonic() < (
            self.keepalive_seconds
        )
        if cut and self.deadline is not None:
            until = loop.time() + max(0.0, self.deadline - time.monotonic())
        try:
            async with asyncio.timeout_at(until):
                while True:
                    chunk = await self.upstream.next_chunk()
                    if not chunk:
                        raise UpstreamProtocolError(
                            "the upstream ended the stream before sending any event"
                        )
                    data = self._take(chunk)
                    if data or self.done:
                        return data
        except TimeoutError:
            if cut:
                # Our limit, not the server's fault: fail over, but hold nothing against it.
                raise StreamTooLong(
                    f"{self.label}: no event before timeouts.stream_total_seconds ran out",
                    endpoint=self.label,
                ) from None
            return self.keepalive()

    def keepalive(self) -> bytes:
        """The filler written after a quiet interval: the translator's (NDJSON streams always
        have one, whose filler is nothing), or an SSE comment."""
        return sse.KEEPALIVE_EVENT if self.translator is None else self.translator.keepalive()

    async def _flush(self, response: web.StreamResponse) -> None:
        """Terminate and relay a last event the upstream left without its blank line."""
        rest = self.splitter.pending
        if rest.strip():
            last = rest.rstrip(b"\r\n") + (b"\n" if self.lines else b"\n\n")
            if self.translator is not None:
                last = self._translated([last])
            await self.client.write(response, last)

    async def pump(self, response: web.StreamResponse) -> None:
        """Relay events until ``[DONE]`` or the end of the body; keep-alive comments while idle."""
        loop = asyncio.get_running_loop()
        client = self.client
        last_write = loop.time()
        # The stream's deadline on the loop's clock: both are monotonic, offsets are stable.
        cut_at = None if self.deadline is None else loop.time() + (self.deadline - time.monotonic())
        while not self.done:
            wake = last_write + self.keepalive_seconds
            if cut_at is not None and cut_at < wake:
                wake = cut_at
            try:
                async with asyncio.timeout_at(wake):
                    while not self.done:
                        chunk = await self.upstream.next_chunk()
                        if not chunk:
                            await self._flush(response)
                            return
                        data = self._take(chunk)
                        if not data:
                            continue
                        last_write = loop.time()
                        if client.keeping_up(len(data)):
                            await response.write(data)
                        else:
                            await client.write(response, data)
            except TimeoutError:
                now = loop.time()
                if cut_at is not None and now >= cut_at:
                    raise self._too_long() from None
                client.check()  # a quiet upstream is no reason to wait for a stalled client
                if now - last_write >= self.keepalive_seconds:
                    last_write = now
                    filler = self.keepalive()
                    if filler:
                        await client.write(response, filler)

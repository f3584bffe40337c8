"""Forwarding: the attempt loop, buffered relay and token-by-token streaming relay.

Rules, each with a test:
- an attempt failing on transport, timeout, 5xx or 429 is retried on another endpoint of the same
  scope (up to three attempts, 100 ms then 200 ms apart) and counts against that endpoint's health;
- any other upstream 4xx is the client's problem: relayed unchanged, not retried, not counted;
- a stream may fail over only until its first byte has been written to the client; after that a
  failure ends the stream with an OpenAI-style error event and ``[DONE]``;
- a client that goes away cancels the upstream request at once (aiohttp cancels the handler;
  ``finally`` drops the upstream connection), freeing the GPU slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Final

from aiohttp import web

from octoroute.errors import UpstreamError, UpstreamProtocolError, UpstreamStatusError
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.selector import Fleet
from octoroute.observability.metrics import EndpointMetrics, Metrics
from octoroute.upstream.attempts import MAX_ATTEMPTS, Scope, backoff_before, exhausted
from octoroute.upstream.client import Target, UpstreamClient, UpstreamStream
from octoroute.wire import sse
from octoroute.wire.requests import ChatRequest, render_upstream_body

KEEPALIVE_INTERVAL_SECONDS: Final = 15.0
"""An SSE comment is sent after this long without an event, so proxies keep the stream open."""

SSE_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


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

    __slots__ = ("endpoint", "metrics", "target")

    def __init__(self, endpoint: Endpoint, target: Target, metrics: EndpointMetrics) -> None:
        self.endpoint = endpoint
        self.target = target
        self.metrics = metrics


class Forwarder:
    """Sends a routed request to an endpoint of its scope and relays the answer."""

    def __init__(
        self,
        fleet: Fleet,
        client: UpstreamClient,
        metrics: Metrics,
        lanes: dict[str, Lane],
    ) -> None:
        self._fleet = fleet
        self._client = client
        self._metrics = metrics
        self._lanes = lanes

    def _pick(self, candidates: Sequence[Endpoint], tried: list[Endpoint]) -> Endpoint | None:
        return self._fleet.select(candidates, tried)

    def _failed(self, lane: Lane, error: UpstreamError, scope: Scope, outcome: Outcome) -> None:
        # The message, not the metric label: it is what ``GET /models`` shows as ``last_error``.
        self._fleet.mark_failure(lane.endpoint, error.message)
        status = error.upstream_status if isinstance(error, UpstreamStatusError) else None
        lane.metrics.response(status)
        outcome.error = error.reason
        self._metrics.tiers[scope.tier].retries[error.reason].inc()

    def _succeeded(
        self, lane: Lane, scope: Scope, outcome: Outcome, started: float, ttfb: float
    ) -> None:
        self._fleet.mark_success(lane.endpoint)
        lane.metrics.response(200)
        lane.metrics.ttfb.observe(ttfb)
        lane.metrics.duration.observe(time.perf_counter() - started)
        tier_metrics = self._metrics.tiers[scope.tier]
        tier_metrics.invocations.inc()
        if outcome.attempts > 1:
            tier_metrics.failovers.inc()
        if outcome.usage is not None:
            tier_metrics.tokens["prompt"].inc(outcome.usage[0])
            tier_metrics.tokens["completion"].inc(outcome.usage[1])

    async def _begin(
        self,
        attempt: int,
        candidates: Sequence[Endpoint],
        tried: list[Endpoint],
        request: ChatRequest,
        outcome: Outcome,
    ) -> tuple[Lane, bytes] | None:
        """Start attempt ``attempt``: pick an untried endpoint, back off, render its body.

        ``None`` when no eligible endpoint is left; both forwarding paths share this so their
        retry budget and bookkeeping cannot drift apart.
        """
        endpoint = self._pick(candidates, tried)
        if endpoint is None:
            return None
        if attempt > 1:
            await asyncio.sleep(backoff_before(attempt))
        tried.append(endpoint)
        outcome.attempts, outcome.endpoint = attempt, endpoint
        body = render_upstream_body(
            request,
            model=endpoint.config.name,
            default_max_tokens=endpoint.config.max_tokens,
            default_temperature=endpoint.config.temperature,
        )
        return self._lanes[endpoint.id], body

    async def complete(
        self,
        scope: Scope,
        candidates: Sequence[Endpoint],
        request: ChatRequest,
        timeout: float,
        outcome: Outcome,
    ) -> Answer:
        """Forward a non-streaming request; the upstream's JSON body comes back as it was."""
        tried: list[Endpoint] = []
        last_error: UpstreamError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            begun = await self._begin(attempt, candidates, tried, request, outcome)
            if begun is None:
                break
            lane, body = begun
            endpoint = lane.endpoint
            started = time.perf_counter()
            try:
                answer = await self._client.send(lane.target, body, timeout=timeout)
            except UpstreamStatusError as error:
                if error.is_client_error:
                    lane.metrics.response(error.upstream_status)
                    outcome.status = error.upstream_status
                    return Answer(error.upstream_status, error.content_type, error.body, endpoint)
                self._failed(lane, error, scope, outcome)
                last_error = error
                continue
            except UpstreamError as error:
                self._failed(lane, error, scope, outcome)
                last_error = error
                continue
            outcome.ttfb, outcome.status = answer.ttfb, answer.status
            outcome.usage = sse.usage_from_body(answer.body)
            self._succeeded(lane, scope, outcome, started, answer.ttfb)
            return Answer(answer.status, answer.content_type, answer.body, endpoint)
        raise exhausted(scope, len(tried), last_error)

    async def stream(
        self,
        scope: Scope,
        candidates: Sequence[Endpoint],
        request: ChatRequest,
        timeout: float,
        headers: dict[str, str],
        outcome: Outcome,
        http_request: web.Request,
    ) -> web.StreamResponse:
        """Forward a streaming request, relaying SSE events as they arrive.

        Until the first event reaches the client, failures fail over like buffered requests.
        """
        tried: list[Endpoint] = []
        last_error: UpstreamError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            begun = await self._begin(attempt, candidates, tried, request, outcome)
            if begun is None:
                break
            lane, body = begun
            endpoint = lane.endpoint
            started = time.perf_counter()
            try:
                upstream = await self._client.open_stream(
                    lane.target, body, timeout=timeout, read_timeout=timeout
                )
            except UpstreamStatusError as error:
                if error.is_client_error:
                    lane.metrics.response(error.upstream_status)
                    outcome.status = error.upstream_status
                    answer = Answer(error.upstream_status, error.content_type, error.body, endpoint)
                    return answer.to_response(headers)
                self._failed(lane, error, scope, outcome)
                last_error = error
                continue
            except UpstreamError as error:
                self._failed(lane, error, scope, outcome)
                last_error = error
                continue
            headers["x-octoroute-endpoint"] = endpoint.config.name
            if not upstream.content_type.startswith("text/event-stream"):
                # Some servers ignore "stream": relay their JSON answer as it came.
                try:
                    payload = await upstream.read_rest()
                except UpstreamError as error:
                    upstream.close()
                    self._failed(lane, error, scope, outcome)
                    last_error = error
                    continue
                ttfb = time.perf_counter() - started
                outcome.ttfb, outcome.status = ttfb, upstream.status
                outcome.usage = sse.usage_from_body(payload)
                self._succeeded(lane, scope, outcome, started, ttfb)
                headers["Content-Type"] = upstream.content_type or "application/json"
                return web.Response(status=upstream.status, body=payload, headers=headers)
            relay = _Relay(upstream)
            try:
                first = await relay.first_events()
            except UpstreamError as error:
                upstream.close()
                self._failed(lane, error, scope, outcome)
                last_error = error
                continue
            except BaseException:
                upstream.close()
                raise
            ttfb = time.perf_counter() - started
            outcome.ttfb, outcome.status = ttfb, 200
            response = web.StreamResponse(status=200, headers={**headers, **SSE_HEADERS})
            return await self._relay(
                relay, response, first, http_request, lane, scope, outcome, started, ttfb
            )
        raise exhausted(scope, len(tried), last_error)

    async def _relay(
        self,
        relay: _Relay,
        response: web.StreamResponse,
        first: bytes,
        http_request: web.Request,
        lane: Lane,
        scope: Scope,
        outcome: Outcome,
        started: float,
        ttfb: float,
    ) -> web.StreamResponse:
        clean = False
        try:
            await response.prepare(http_request)
            if first:
                await response.write(first)
            try:
                await relay.pump(response)
            except UpstreamError as error:
                outcome.error = f"mid_stream_{error.reason}"
                lane.metrics.mid_stream_failures.inc()
                self._fleet.mark_failure(lane.endpoint, f"mid-stream: {error.message}")
                lane.metrics.response(None)
                await response.write(
                    sse.error_event(
                        f"The upstream stream failed after it had started: {error.message}. "
                        "The answer above is incomplete.",
                        "api_error",
                        "upstream_stream_interrupted",
                    )
                    + sse.DONE_EVENT
                )
                await response.write_eof()
                return response
            clean = True
            outcome.usage = relay.usage
            self._succeeded(lane, scope, outcome, started, ttfb)
            await response.write_eof()
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


class _Relay:
    """Reads an upstream SSE body and hands over whole events only.

    Only complete events are written to the client, so an error event can always follow cleanly.
    ``[DONE]`` ends the answer: nothing after it is relayed or read, so an upstream that drops
    the connection (or never ends its body) after ``[DONE]`` cannot append an error to a
    complete answer.
    """

    __slots__ = ("done", "splitter", "upstream", "usage")

    def __init__(self, upstream: UpstreamStream) -> None:
        self.upstream = upstream
        self.splitter = sse.SSESplitter()
        self.usage: tuple[int, int] | None = None
        self.done = False
        """``[DONE]`` has been handed over."""

    def _take(self, chunk: bytes) -> bytes:
        events = self.splitter.feed(chunk)
        if not events:
            return b""
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
                usage = sse.usage_from_event(event)
                if usage is not None:
                    self.usage = usage
        return data

    async def first_events(self) -> bytes:
        """The first complete event(s), or ``b""`` when none came within the keep-alive interval.

        Raises an ``UpstreamError`` when the upstream fails or ends before sending any event,
        which still allows failing over to another endpoint.
        """
        try:
            async with asyncio.timeout(KEEPALIVE_INTERVAL_SECONDS):
                while True:
                    chunk = await self.upstream.next_chunk()
                    if not chunk:
                        raise UpstreamProtocolError(
                            "the upstream ended the stream before sending any event"
                        )
                    data = self._take(chunk)
                    if data:
                        return data
        except TimeoutError:
            return sse.KEEPALIVE_EVENT

    async def _flush(self, response: web.StreamResponse) -> None:
        """Terminate and relay a last event the upstream left without its blank line."""
        rest = self.splitter.pending
        if rest.strip():
            await response.write(rest.rstrip(b"\r\n") + b"\n\n")

    async def pump(self, response: web.StreamResponse) -> None:
        """Relay events until ``[DONE]`` or the end of the body; keep-alive comments while idle."""
        loop = asyncio.get_running_loop()
        last_write = loop.time()
        while not self.done:
            try:
                async with asyncio.timeout_at(last_write + KEEPALIVE_INTERVAL_SECONDS):
                    while not self.done:
                        chunk = await self.upstream.next_chunk()
                        if not chunk:
                            await self._flush(response)
                            return
                        data = self._take(chunk)
                        if data:
                            last_write = loop.time()
                            await response.write(data)
            except TimeoutError:
                if loop.time() - last_write >= KEEPALIVE_INTERVAL_SECONDS:
                    last_write = loop.time()
                    await response.write(sse.KEEPALIVE_EVENT)

"""The one pipeline every generating endpoint shares: resolve, route, select, forward, relay, log.

A dialect's handler only parses its body into a ``Routable`` (what routing reads, plus how the
body is rebuilt for an endpoint) and names itself for the log; retries, failover, streaming,
decision headers, metrics and the one log line per request are written here once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol, TypeVar

import orjson
from aiohttp import web

from octoroute.api.access import (
    add_limit_headers,
    capped,
    charge,
    charge_shared,
    check_model,
    generation_cost,
    give_back,
    needs_cost,
    tiers_for,
)
from octoroute.api.admission import admit, demand_of, hints_of, release
from octoroute.api.auth import client_key
from octoroute.api.common import (
    REQUEST_ID,
    RUNTIME,
    decide,
    decision_headers,
    importance_of,
    read_json_body,
    request_log,
)
from octoroute.api.tracing import request_trace
from octoroute.catalog import ModelChoice
from octoroute.config.schema import EndpointConfig
from octoroute.enums import Native
from octoroute.errors import BadUpstreamResponse
from octoroute.fleet.endpoint import Endpoint
from octoroute.runtime import Runtime
from octoroute.upstream.forward import Answer, StreamTranslator, UpstreamRequest
from octoroute.wire import sse
from octoroute.wire.messages import Message

TRACE_HEADERS: Final = ("traceparent", "tracestate")
"""W3C trace context, passed on to the model server so a trace spans the hop through us: as the
client sent it when tracing is off; when on, each attempt sends its own span's instead."""
_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,511}")
"""A header value we copy upstream: visible ASCII, no CR/LF, at most 512 characters."""


class Routable(UpstreamRequest, Protocol):
    """A parsed request of any text-generating dialect.

    Optional member, read with a default: ``hints`` (a ``wire.hints.RequestHints``): the
    client's own output limit, whether the router fills in the endpoint's ``max_tokens``, and
    the body's conversation key (``prompt_cache_key``, else ``user``). Without it placement
    still estimates the prompt from ``messages`` and hashes the conversation, but counts no
    output tokens and has no body key (see ``api.admission.hints_of``).
    """

    @property
    def model(self) -> str:
        """``model`` as the client sent it."""
        ...

    @property
    def stream(self) -> bool:
        """Whether the client asked for SSE."""
        ...

    @property
    def messages(self) -> list[Message]:
        """The conversation as routing reads it."""
        ...


R = TypeVar("R", bound=Routable)


class Translation(Protocol):
    """How a dialect that the router translates reads its answers, per request.

    Each method is asked about the endpoint that served the attempt, so one scope may mix
    endpoints that speak the dialect natively with endpoints it is translated for.
    """

    def check_scope(self, endpoints: Sequence[EndpointConfig]) -> None:
        """Raise the client's error, before anything is sent, when the request cannot go to
        some endpoint of its scope."""
        ...

    def translator_for(self, endpoint: EndpointConfig) -> StreamTranslator | None:
        """The translator of a stream from ``endpoint`` (a fresh one per attempt)."""
        ...

    def answer(self, answer: Answer) -> Answer:
        """The buffered answer the client gets for ``answer`` (an error relayed as it came)."""
        ...


Parser = Callable[[bytes, Runtime], R]


class Scoped(Protocol):
    """A parsed request that knows which endpoints it cannot be translated for."""

    def check_scope(self, endpoints: Sequence[EndpointConfig]) -> None:
        """Raise the client's error when some endpoint of the scope would need a translation
        the request cannot have."""
        ...


class PerEndpoint:
    """The ``Translation`` of a dialect that some endpoints speak natively (``native``): per
    attempt, a native endpoint's answer and stream pass through (``relay``), a chat endpoint's
    are translated (``translator`` for a stream, ``translate`` for a decoded answer)."""

    __slots__ = ("_native", "_relay", "_request", "_translate", "_translator")

    def __init__(
        self,
        request: Scoped,
        native: Native,
        relay: Callable[[], StreamTranslator],
        translator: Callable[[], StreamTranslator],
        translate: Callable[[Any], dict[str, Any]],
    ) -> None:
        self._request = request
        self._native = native
        self._relay = relay
        self._translator = translator
        self._translate = translate

    def check_scope(self, endpoints: Sequence[EndpointConfig]) -> None:
        """The request's own check."""
        self._request.check_scope(endpoints)

    def translator_for(self, endpoint: EndpointConfig) -> StreamTranslator:
        """The relay for a native endpoint, a fresh translator for any other."""
        return self._relay() if self._native in endpoint.native else self._translator()

    def answer(self, answer: Answer) -> Answer:
        """A chat endpoint's 2xx answer translated; any other as it came."""
        return translated(answer, self._native, self._translate)


def translated(
    answer: Answer, native: Native, translate: Callable[[Any], dict[str, Any]]
) -> Answer:
    """``answer`` as ``translate`` rewrites its decoded body, unless it is an error (relayed as
    it came) or comes from an endpoint that speaks the dialect (``native``); an answer that
    cannot be read is ``unreadable``."""
    if not answer.ok or native in answer.endpoint.config.native:
        return answer
    try:
        body = orjson.dumps(translate(orjson.loads(answer.body)))
    except (orjson.JSONDecodeError, ValueError):
        raise unreadable(answer) from None
    return Answer(answer.status, "application/json", body, answer.endpoint)


def unreadable(answer: Answer) -> BadUpstreamResponse:
    """The error for a 2xx answer the dialect's translation cannot read: an upstream fault,
    raised inside the attempt so that it fails over and counts against that endpoint."""
    label = answer.endpoint.config.name
    return BadUpstreamResponse(
        f"{label}: answered 200 with a body that is not the JSON expected "
        f"({sse.describe_body(answer.body)})",
        endpoint=label,
    )


def _catalog_choice(runtime: Runtime, model: str) -> ModelChoice:
    """The catalog's answer to ``model``: what ``generate`` resolves unless told otherwise."""
    return runtime.catalog.resolve(model)


def upstream_header_lines(
    request: web.Request, forwarded: tuple[str, ...] = (), *, traced: bool = False
) -> bytes:
    """The header lines sent upstream with this request alone: our request id, so the model
    server's logs can be joined with ours, and the client's trace context and ``forwarded``
    headers (a dialect's own, e.g. ``anthropic-version``) when well formed. A ``traced``
    request's trace context is the attempt's, added per attempt by the forwarder."""
    lines = [b"x-request-id: %s\r\n" % request[REQUEST_ID].encode("ascii")]
    headers = request.headers
    for name in forwarded if traced else TRACE_HEADERS + forwarded:
        value = headers.get(name)
        if value is not None and _HEADER_SAFE.fullmatch(value):
            lines.append(b"%s: %s\r\n" % (name.encode("ascii"), value.encode("ascii")))
    return b"".join(lines)


async def generate(
    request: web.Request,
    route: str,
    parse: Parser[R],
    translation: Callable[[R, Runtime], Translation] | None = None,
    shortcut: Callable[[R], web.Response | None] | None = None,
    resolve: Callable[[Runtime, str], ModelChoice] = _catalog_choice,
    *,
    forwarded: tuple[str, ...] = (),
    any_content_type: bool = False,
) -> web.StreamResponse:
    """Serve one generation request of the dialect that ``parse`` reads; with ``translation``,
    its answers are rewritten per attempt on the way back. ``shortcut`` may answer a request
    that asks nothing of a model (Ollama's load requests) once its model is known to exist;
    ``resolve`` replaces the catalog's lookup of ``model`` (to word its errors the dialect's
    way); ``forwarded`` names request headers passed on to the model server;
    ``any_content_type`` reads the body as JSON whatever its ``Content-Type`` (Ollama's way)."""
    runtime = request.app[RUNTIME]
    key = client_key(request)
    trace = request_trace(request, runtime)
    with request_log(request, route, None if key is None else key.name, trace) as entry:
        body = await read_json_body(request, any_content_type=any_content_type)
        parsed = parse(body, runtime)
        entry.model, entry.stream = parsed.model, parsed.stream
        if entry.previewing:
            entry.keep_preview(parsed.messages)
        choice = resolve(runtime, parsed.model)
        check_model(runtime, key, choice, parsed.model)
        if shortcut is not None and (local := shortcut(parsed)) is not None:
            entry.status = local.status
            return local
        importance = importance_of(request, runtime.config.routing.default_importance)
        decision = await decide(runtime, choice, parsed.messages, importance, trace=trace)
        decision = entry.decision = capped(key, choice, decision)
        translating = None if translation is None else translation(parsed, runtime)
        check = None
        if translating is not None:
            check = _configs_checked(translating)
        hints = hints_of(parsed)
        demand = demand_of(runtime, request.headers, parsed.messages, hints, decision)
        cost = 0
        if needs_cost(key):
            cost = generation_cost(runtime, choice, decision, parsed.messages, hints)
        charged = charge(runtime, key, cost) or await charge_shared(runtime, key, cost)
        placed = None
        try:
            placed = await admit(
                runtime, choice, decision, demand, importance, check, tiers_for(key)
            )
            decision = entry.decision = placed.decision
            headers = decision_headers(request, decision)
            add_limit_headers(headers, charged)
            timeout = runtime.config.timeout_for(decision.tier)
            extra = upstream_header_lines(request, forwarded, traced=trace is not None)
            move_in_flight = runtime.metrics.tiers[decision.tier].move_in_flight
            move_in_flight(1)
            try:
                if parsed.stream:
                    response = await runtime.forwarder.stream(
                        placed.scope,
                        placed.endpoints,
                        parsed,
                        timeout,
                        headers,
                        entry.outcome,
                        request,
                        extra=extra,
                        translators=None if translating is None else translating.translator_for,
                        ticket=placed.ticket,
                        trace=trace,
                    )
                else:
                    answer = await runtime.forwarder.complete(
                        placed.scope,
                        placed.endpoints,
                        parsed,
                        timeout,
                        entry.outcome,
                        extra=extra,
                        rewrite=None if translating is None else translating.answer,
                        ticket=placed.ticket,
                        trace=trace,
                    )
                    response = answer.to_response(headers)
            finally:
                move_in_flight(-1)
        finally:
            release(placed)
            give_back(runtime, charged)
        entry.status = response.status
        return response


def _configs_checked(translating: Translation) -> Callable[[Sequence[Endpoint]], None]:
    """The translation's scope check, over endpoint instances."""

    def check(endpoints: Sequence[Endpoint]) -> None:
        translating.check_scope([endpoint.config for endpoint in endpoints])

    return check

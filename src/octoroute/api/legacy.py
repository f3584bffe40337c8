"""v1's native API, kept for existing clients: ``POST /chat``, ``GET /health``, ``GET /models``.

``/chat`` takes one message (and optionally the caller's own task type and importance) and answers
``{"content", "model_tier", "model_name", "routing_strategy", "warnings"?}``. Its errors use the
same JSON envelope as the OpenAI routes (v1 answered validation errors with plain-text 422).
"""

from __future__ import annotations

import time

import msgspec
import orjson
from aiohttp import web

from octoroute import __version__
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
from octoroute.api.admission import admit, demand_of, release
from octoroute.api.auth import client_key
from octoroute.api.common import (
    RUNTIME,
    decide,
    decision_headers,
    importance_of,
    openai_error_type,
    read_json_body,
    request_log,
)
from octoroute.api.generation import upstream_header_lines
from octoroute.api.tracing import request_trace
from octoroute.config.redact import redact_url
from octoroute.enums import TIERS, DecisionSource
from octoroute.errors import UpstreamProtocolError, error_body
from octoroute.fleet.endpoint import Endpoint, Health
from octoroute.routing.strategy import Decision
from octoroute.runtime import Runtime
from octoroute.upstream.forward import Answer
from octoroute.wire.legacy import parse_legacy_chat
from octoroute.wire.messages import Message
from octoroute.wire.requests import parse_chat_request


class _Content(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Content


class _Completion(msgspec.Struct):
    choices: list[_Choice]


_decode_completion = msgspec.json.Decoder(_Completion).decode


def _answer_text(body: bytes, endpoint: str) -> str:
    try:
        choices = _decode_completion(body).choices
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise UpstreamProtocolError(
            f"{endpoint} answered with something that is not a chat completion ({error})"
        ) from error
    return (choices[0].message.content or "") if choices else ""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _refusal_body(answer: Answer) -> bytes:
    """An upstream 4xx (never 429: that one is retried) as our envelope, typed by its status.

    ``/v1/chat/completions`` relays such an answer as it came, so a client sees the upstream's
    message, ``param`` and ``code`` (``context_length_exceeded``, say); ``/chat`` keeps those
    from an OpenAI-style body (``{"error": {...}}``, ``{"error": "..."}`` or vLLM's top-level
    ``message``) and gives the ``type`` OpenAI uses for the status. Any other body is quoted.
    """
    try:
        parsed: object = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        parsed = None
    detail: dict[str, object] = {}
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            detail = inner
        elif isinstance(inner, str):
            detail = {"message": inner}
        elif "message" in parsed:
            detail = parsed
    message = _text(detail.get("message"))
    if message is None:
        quoted = answer.body[:500].decode(errors="replace").strip()
        message = f"{answer.endpoint.name} refused the request with HTTP {answer.status}"
        message += f": {quoted}" if quoted else " and an empty body."
    return error_body(
        message,
        openai_error_type(answer.status),
        _text(detail.get("param")),
        _text(detail.get("code")) or "upstream_status",
    )


def _warnings(decision: Decision) -> list[str]:
    if decision.fallback is None:
        return []
    used = "learned" if decision.source is DecisionSource.LEARNED else "rule"
    return [f"The LLM router could not decide ({decision.fallback}); the {used} decision was used."]


async def chat(request: web.Request) -> web.Response:
    """Route one message, ask the chosen tier, answer with v1's response shape."""
    runtime = request.app[RUNTIME]
    key = client_key(request)
    trace = request_trace(request, runtime)
    with request_log(request, "chat", None if key is None else key.name, trace) as entry:
        entry.model = "auto"
        legacy = parse_legacy_chat(await read_json_body(request))
        auto = runtime.catalog.auto
        check_model(runtime, key, auto, "auto")
        importance = legacy.importance or importance_of(
            request, runtime.config.routing.default_importance
        )
        messages = [Message(role="user", content=legacy.message)]
        if entry.previewing:
            entry.keep_preview(messages)
        decision = await decide(
            runtime,
            auto,
            messages,
            importance,
            stated_task=legacy.task_type,
            trace=trace,
        )
        decision = entry.decision = capped(key, auto, decision)
        upstream_request = parse_chat_request(
            orjson.dumps(
                {"model": "auto", "messages": [{"role": "user", "content": legacy.message}]}
            ),
            runtime.config.limits,
        )
        hints = upstream_request.hints
        demand = demand_of(runtime, request.headers, messages, hints, decision)
        cost = generation_cost(runtime, auto, decision, messages, hints) if needs_cost(key) else 0
        charged = charge(runtime, key, cost) or await charge_shared(runtime, key, cost)
        placed = None
        try:
            placed = await admit(runtime, auto, decision, demand, importance, tiers=tiers_for(key))
            decision = entry.decision = placed.decision
            answer = await runtime.forwarder.complete(
                placed.scope,
                placed.endpoints,
                upstream_request,
                runtime.config.timeout_for(decision.tier),
                entry.outcome,
                extra=upstream_header_lines(request, traced=trace is not None),
                ticket=placed.ticket,
                trace=trace,
            )
        finally:
            release(placed)
            give_back(runtime, charged)
        headers = decision_headers(request, decision)
        add_limit_headers(headers, charged)
        headers["x-octoroute-endpoint"] = answer.endpoint.name
        if not answer.ok:
            entry.status = answer.status
            return web.Response(
                status=answer.status,
                body=_refusal_body(answer),
                content_type="application/json",
                headers=headers,
            )
        body: dict[str, object] = {
            "content": _answer_text(answer.body, answer.endpoint.name),
            "model_tier": decision.tier.value,
            "model_name": answer.endpoint.name,
            "routing_strategy": decision.source.value,
        }
        warnings = _warnings(decision)
        if warnings:
            body["warnings"] = warnings
        entry.status = 200
        return web.Response(
            body=orjson.dumps(body), content_type="application/json", headers=headers
        )


def placement_state(endpoint: Endpoint, runtime: Runtime) -> dict[str, object]:
    """What placement sees of one instance: load, slots, its tier's queue, warmth, window and
    affinity share; shown by ``/models`` and, per tier, by ``/health``."""
    facts = endpoint.facts
    configured = endpoint.config.context_window
    window = endpoint.context_window
    placed = endpoint.placed
    return {
        "in_flight": endpoint.in_flight,
        "max_concurrent": endpoint.max_concurrent or None,
        "slots_total": facts.slots_total,
        "slots_idle": facts.slots_idle,
        "queue": runtime.dispatcher.depth(endpoint.pool),
        "warm": facts.loaded if not endpoint.cold else False,
        "loading": facts.loading,
        "context_window": window,
        "context_window_source": (
            None if window is None else "config" if configured is not None else "discovered"
        ),
        "placed": placed,
        "affinity_share": round(endpoint.affinity_placed / placed, 3) if placed else None,
    }


_KNOWN_HEALTH: dict[Health, bool | None] = {
    Health.HEALTHY: True,
    Health.UNHEALTHY: False,
    Health.UNKNOWN: None,
}
"""An instance's ``healthy`` in ``/health``: ``null`` until something has answered."""


def _pool_placement(endpoints: tuple[Endpoint, ...], runtime: Runtime) -> dict[str, object]:
    return {
        "queue": runtime.dispatcher.depth(endpoints[0].pool) if endpoints else 0,
        "instances": [
            {
                "id": endpoint.id,
                "name": endpoint.name,
                "health": endpoint.health.value,
                "healthy": _KNOWN_HEALTH[endpoint.health],
            }
            | placement_state(endpoint, runtime)
            for endpoint in endpoints
        ],
    }


def _pool_counts(endpoints: tuple[Endpoint, ...]) -> dict[str, int]:
    """How many instances are known healthy and how many are not known yet (not probed, or
    failing below the threshold without ever having answered), of how many."""
    states = [endpoint.health for endpoint in endpoints]
    return {
        "healthy": states.count(Health.HEALTHY),
        "unknown": states.count(Health.UNKNOWN),
        "total": len(states),
    }


async def health(request: web.Request) -> web.Response:
    """200 while the process serves, with v1's fields, each tier's known-healthy, unknown and
    configured endpoint counts and, per tier, its queue and what placement sees of each
    instance."""
    runtime = request.app[RUNTIME]
    prober = runtime.prober
    fleet = runtime.fleet
    tiers = {tier.value: _pool_counts(fleet.tiers[tier]) for tier in TIERS}
    placement = {tier.value: _pool_placement(fleet.tiers[tier], runtime) for tier in TIERS}
    if fleet.embeddings:
        tiers["embeddings"] = _pool_counts(fleet.embeddings)
        placement["embeddings"] = _pool_placement(fleet.embeddings, runtime)
    body = {
        "status": "OK",
        "health_tracking_status": "operational",
        "metrics_recording_status": "operational",
        "background_task_status": prober.status,
        "background_task_failures": prober.failures,
        "version": __version__,
        "uptime_seconds": round(runtime.uptime(), 3),
        "tiers": tiers,
        "placement": placement,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def models(request: web.Request) -> web.Response:
    """One entry per endpoint instance, with its health; credentials in a URL are masked."""
    runtime = request.app[RUNTIME]
    now = time.monotonic()
    entries = [
        {
            "id": endpoint.id,
            "name": endpoint.name,
            "tier": endpoint.pool.value,
            "endpoint": redact_url(endpoint.base_url),
            "healthy": endpoint.healthy,
            "health": endpoint.health.value,
            "last_check_seconds_ago": endpoint.seconds_since_check(),
            "consecutive_failures": endpoint.consecutive_failures,
            "last_error": endpoint.last_error,
            "priority": endpoint.priority,
            "weight": endpoint.weight,
            "state": endpoint.admission.value,
            "ejection_cause": endpoint.ejection_cause if endpoint.ejected else None,
            "ejected_for_seconds": (
                round(max(0.0, endpoint.ejected_until - now), 1) if endpoint.ejected else None
            ),
            "busy_for_seconds": (
                round(endpoint.busy_until - now, 1) if endpoint.busy_until > now else None
            ),
            "kind": endpoint.config.kind.value,
            **placement_state(endpoint, runtime),
            "running": endpoint.facts.running,
            "waiting": endpoint.facts.waiting,
            "kv_cache_usage": endpoint.facts.kv_cache_usage,
        }
        for endpoint in runtime.fleet.all()
    ]
    return web.Response(body=orjson.dumps({"models": entries}), content_type="application/json")


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_post("/chat", chat)
    app.router.add_get("/health", health)
    app.router.add_get("/models", models)

"""Operator endpoints: ``GET /metrics`` (Prometheus) and ``POST /route`` (routing dry run).

``/route`` answers the routing decision for a body without generating anything, so a user can see
why a prompt goes where it goes (including a context escalation: ``context_overflow``; a queue
overflow depends on the moment and shows only on real answers).
"""

from __future__ import annotations

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from octoroute.api.admission import demand_of, fit_context
from octoroute.api.common import RUNTIME, decide, importance_of, read_json_body
from octoroute.api.tracing import request_trace
from octoroute.routing.strategy import Decision
from octoroute.wire.hints import RequestHints
from octoroute.wire.legacy import parse_legacy_chat
from octoroute.wire.messages import Message
from octoroute.wire.requests import decode_json_object, parse_chat_request


async def metrics(request: web.Request) -> web.Response:
    """Every metric family in the Prometheus text format."""
    body = request.app[RUNTIME].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _explain(decision: Decision, alias: str | None) -> bytes:
    """The decision as JSON; ``alias`` is the ``[aliases]`` key ``model`` matched, or null."""
    meta = decision.metadata
    return orjson.dumps(
        {
            "tier": decision.tier.value,
            "strategy": decision.source.value,
            "task_type": meta.task_type.value,
            "importance": meta.importance.value,
            "token_estimate": meta.token_estimate,
            "reason": decision.reason,
            "signals": list(meta.signals),
            "fallback": decision.fallback,
            "confidence": None if decision.confidence is None else round(decision.confidence, 4),
            "routing_ms": round(decision.routing_ms, 4),
            "alias": alias,
        }
    )


async def route(request: web.Request) -> web.Response:
    """The decision ``/v1/chat/completions`` (``messages``) or ``/chat`` (``message``) would make."""
    runtime = request.app[RUNTIME]
    body = await read_json_body(request)
    alias: str | None = None
    if "messages" in decode_json_object(body):
        chat = parse_chat_request(body, runtime.config.limits)
        choice = runtime.catalog.resolve(chat.model)
        alias = choice.alias
        importance = importance_of(request, runtime.config.routing.default_importance)
        decision = await decide(
            runtime,
            choice,
            chat.messages,
            importance,
            explain=True,
            trace=request_trace(request, runtime),
        )
        demand = demand_of(runtime, request.headers, chat.messages, chat.hints, decision)
        decision = fit_context(runtime, choice, decision, demand, count=False)
    else:
        legacy = parse_legacy_chat(body)
        importance = legacy.importance or importance_of(
            request, runtime.config.routing.default_importance
        )
        messages = [Message(role="user", content=legacy.message)]
        decision = await runtime.router.route(messages, importance, stated_task=legacy.task_type)
        demand = demand_of(
            runtime, request.headers, messages, RequestHints(fills_default=True), decision
        )
        decision = fit_context(runtime, runtime.catalog.auto, decision, demand, count=False)
    return web.Response(body=_explain(decision, alias), content_type="application/json")


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/route", route)

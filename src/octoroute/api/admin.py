"""Operator endpoints: ``GET /metrics`` (Prometheus) and ``POST /route`` (routing dry run).

``/route`` answers the routing decision for a body without generating anything, so a user can see
why a prompt goes where it goes (including a context escalation: ``context_overflow``; a queue
overflow depends on the moment and shows only on real answers). ``?strategy=`` decides with
another strategy than the configured one (the dashboard's playground compares them), and the
answer's ``explanation`` says who decided and from what: the rule, or the learned model's
per-tier probabilities against the confidence threshold, or the router model, the signals.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from octoroute.api.admission import demand_of, fit_context
from octoroute.api.common import RUNTIME, decide, importance_of, read_json_body
from octoroute.api.tracing import request_trace
from octoroute.enums import TIERS, DecisionSource, Strategy
from octoroute.errors import InvalidRequest
from octoroute.routing.metadata import ACCEPTS_OFFER
from octoroute.routing.strategy import (
    CONTEXT_OVERFLOW,
    DEFAULT_REASON,
    LEARNED_HIGH,
    LEARNED_LOW,
    Decision,
    Router,
)
from octoroute.runtime import Runtime
from octoroute.wire.hints import RequestHints
from octoroute.wire.legacy import parse_legacy_chat
from octoroute.wire.messages import Message
from octoroute.wire.requests import decode_json_object, parse_chat_request


async def metrics(request: web.Request) -> web.Response:
    """Every metric family in the Prometheus text format."""
    body = request.app[RUNTIME].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


_STRATEGIES: Final = {strategy.value: strategy for strategy in Strategy}


def strategy_of(request: web.Request, runtime: Runtime) -> Router:
    """The router of ``?strategy=`` (``rule``, ``llm``, ``hybrid`` or ``learned``), else the
    configured one; a 400 naming the parameter for anything else."""
    raw = request.query.get("strategy")
    if raw is None:
        return runtime.router
    strategy = _STRATEGIES.get(raw.strip().lower())
    if strategy is None:
        raise InvalidRequest(
            f"strategy must be one of rule, llm, hybrid or learned, got {raw[:40]!r}; leave it "
            f"out to use the configured one ({runtime.config.routing.strategy.value}).",
            param="strategy",
        )
    return runtime.router_for(strategy)


def _summary(decision: Decision, routed: Decision, router: Router, sure: float | None) -> str:
    """Who decided, in one sentence a person reads in the playground."""
    tier = routed.tier.value
    reason = routed.reason
    source = routed.source
    if source is DecisionSource.DIRECT:
        said = f"The request named its model, so it goes to the {tier} tier without routing."
    elif source is DecisionSource.LLM:
        said = f"The router model chose {tier}"
        if router.strategy is Strategy.HYBRID:
            said += (
                ", because the learned model's confidence was below the threshold "
                "(confidence_threshold)"
            )
        said += "."
    elif source is DecisionSource.LEARNED:
        said = f"The learned model chose {tier}."
        if reason in (LEARNED_HIGH, LEARNED_LOW):
            way = "up" if reason == LEARNED_HIGH else "down"
            importance = "high" if reason == LEARNED_HIGH else "low"
            said = (
                f"The learned model's choice was moved {way} to {tier} by {importance} importance."
            )
        if ACCEPTS_OFFER in routed.metadata.signals:
            said += (
                " The turn says yes to the offer the assistant's answer ended with, so the model"
                " judged the offered work (accepts_offer)."
            )
        if router.strategy is Strategy.HYBRID and routed.fallback is None and sure is not None:
            said += " It was sure enough (confidence_threshold) not to ask the router model."
    elif reason == DEFAULT_REASON:
        said = f"No rule matched, so the default tier ({tier}) was used."
    else:
        said = f"The rule {reason} chose {tier}."
    if routed.fallback is not None:
        said = f"The router model could not decide ({routed.fallback}). " + said
    if decision.reason == CONTEXT_OVERFLOW and decision.tier is not routed.tier:
        said += (
            f" No {tier} instance can hold the conversation, so it goes up to "
            f"{decision.tier.value} (context_overflow)."
        )
    return said


def explanation(
    decision: Decision, routed: Decision, router: Router, messages: list[Message]
) -> dict[str, Any]:
    """Why ``decision`` (``routed`` before placement moved it): who decided, the rule or the
    learned model's probabilities and the threshold, the signals, a one-line summary."""
    meta = routed.metadata
    view = None
    if routed.source is not DecisionSource.DIRECT:
        view = router.learned_view(messages, meta)
    return {
        "strategy": router.strategy.value,
        "decided_by": routed.source.value,
        "rule": routed.reason if routed.source is DecisionSource.RULE else None,
        "routed_tier": routed.tier.value,
        "probabilities": None
        if view is None
        else {tier.value: round(p, 4) for tier, p in zip(TIERS, view.probabilities, strict=True)},
        "learned_tier": None if view is None else view.tier.value,
        "learned_confidence": None if view is None else round(view.confidence, 4),
        "confidence": None if routed.confidence is None else round(routed.confidence, 4),
        "confidence_threshold": router.confidence_threshold
        if router.strategy is Strategy.HYBRID
        else None,
        "asked_router_model": routed.source is DecisionSource.LLM or routed.fallback is not None,
        "signals": list(meta.signals),
        "summary": _summary(decision, routed, router, None if view is None else view.confidence),
    }


def _explain(
    decision: Decision,
    alias: str | None,
    routed: Decision,
    router: Router,
    messages: list[Message],
) -> bytes:
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
            "explanation": explanation(decision, routed, router, messages),
        }
    )


async def route(request: web.Request) -> web.Response:
    """The decision ``/v1/chat/completions`` (``messages``) or ``/chat`` (``message``) would make."""
    runtime = request.app[RUNTIME]
    router = strategy_of(request, runtime)
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
            router=router,
        )
        messages = chat.messages
        routed = decision
        demand = demand_of(runtime, request.headers, messages, chat.hints, decision)
        decision = fit_context(runtime, choice, decision, demand, count=False)
    else:
        legacy = parse_legacy_chat(body)
        importance = legacy.importance or importance_of(
            request, runtime.config.routing.default_importance
        )
        messages = [Message(role="user", content=legacy.message)]
        decision = await router.route(messages, importance, stated_task=legacy.task_type)
        routed = decision
        demand = demand_of(
            runtime, request.headers, messages, RequestHints(fills_default=True), decision
        )
        decision = fit_context(runtime, runtime.catalog.auto, decision, demand, count=False)
    return web.Response(
        body=_explain(decision, alias, routed, router, messages), content_type="application/json"
    )


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/route", route)

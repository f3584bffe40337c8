"""The OpenAI-compatible API: ``POST /v1/chat/completions``, ``GET /v1/models`` and
``GET /v1/models/{id}``.

Thin glue: peek and validate the body, resolve ``model``, route, forward. The client's body is
forwarded as it came, apart from ``model`` and absent defaults (see ``wire.requests``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from aiohttp import web

from octoroute.api.common import (
    RUNTIME,
    decide,
    decision_headers,
    importance_of,
    log_request,
    read_json_body,
    record_decision,
    scope_of,
)
from octoroute.errors import OctorouteError
from octoroute.routing.strategy import Decision
from octoroute.upstream.forward import Outcome
from octoroute.wire.requests import parse_chat_request

CLIENT_CLOSED_REQUEST: Final = 499
"""Logged (never sent) when the client went away before its answer was complete."""


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Route and forward one chat completion, buffered or streamed."""
    runtime = request.app[RUNTIME]
    started = time.perf_counter()
    outcome = Outcome()
    decision: Decision | None = None
    model = ""
    stream = False
    status = 500
    try:
        body = await read_json_body(request)
        chat = parse_chat_request(body, runtime.config.limits)
        model, stream = chat.model, chat.stream
        choice = runtime.catalog.resolve(chat.model)
        importance = importance_of(request, runtime.config.routing.default_importance)
        decision = await decide(runtime, choice, chat.messages, importance)
        record_decision(runtime, decision)
        scope, endpoints = scope_of(choice, decision, runtime)
        headers = decision_headers(request, decision)
        timeout = runtime.config.timeout_for(decision.tier)
        in_flight = runtime.metrics.tiers[decision.tier].in_flight
        in_flight.inc()
        try:
            if chat.stream:
                response = await runtime.forwarder.stream(
                    scope, endpoints, chat, timeout, headers, outcome, request
                )
            else:
                answer = await runtime.forwarder.complete(scope, endpoints, chat, timeout, outcome)
                response = answer.to_response(headers)
        finally:
            in_flight.dec()
        status = response.status
        return response
    except OctorouteError as error:
        status = error.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED_REQUEST
        outcome.error = outcome.error or "client_disconnected"
        raise
    finally:
        log_request(
            route="chat_completions",
            model=model,
            decision=decision,
            outcome=outcome,
            status=status,
            started=started,
            stream=stream,
        )


async def list_models(request: web.Request) -> web.Response:
    """``auto``, the tiers, then every distinct endpoint name, in config order."""
    return web.Response(
        body=request.app[RUNTIME].catalog.models_body, content_type="application/json"
    )


async def retrieve_model(request: web.Request) -> web.Response:
    """One model object for anything ``model`` may name (``auto``, a tier in any case, an
    endpoint name, an exact alias or a name matching an alias pattern), with the id as sent;
    404 ``model_not_found`` otherwise."""
    body = request.app[RUNTIME].catalog.model_object(request.match_info["id"])
    return web.Response(body=body, content_type="application/json")


def add_routes(app: web.Application) -> None:
    """Register this module's routes (``add_get`` answers ``HEAD`` too)."""
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    # ``.+``: model ids hold slashes (``org/model``) and colons (``qwen3:8b``).
    app.router.add_get("/v1/models/{id:.+}", retrieve_model)

"""The OpenAI-compatible API: ``POST /v1/chat/completions``, ``POST /v1/completions``,
``GET /v1/models`` and ``GET /v1/models/{id}``.

Thin glue: peek and validate the body, resolve ``model``, route, forward. The client's body is
forwarded as it came, apart from ``model`` and absent defaults (see ``wire.requests``).
"""

from __future__ import annotations

from aiohttp import web

from octoroute.api.access import check_model, listed_for
from octoroute.api.auth import client_key
from octoroute.api.common import RUNTIME
from octoroute.api.generation import generate
from octoroute.runtime import Runtime
from octoroute.wire.completions import CompletionRequest, parse_completion_request
from octoroute.wire.requests import ChatRequest, parse_chat_request


def _parse_chat(body: bytes, runtime: Runtime) -> ChatRequest:
    return parse_chat_request(body, runtime.config.limits)


def _parse_completion(body: bytes, runtime: Runtime) -> CompletionRequest:
    return parse_completion_request(body, runtime.config.limits)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Route and forward one chat completion, buffered or streamed."""
    return await generate(request, "chat_completions", _parse_chat)


async def completions(request: web.Request) -> web.StreamResponse:
    """Route and forward one legacy text completion (or fill-in-the-middle), buffered or
    streamed, to the endpoint's own ``/v1/completions``."""
    return await generate(request, "completions", _parse_completion)


async def list_models(request: web.Request) -> web.Response:
    """``auto``, the tiers, then every distinct endpoint name, in config order; with
    ``[auth]``, only those the request's key may use."""
    catalog = request.app[RUNTIME].catalog
    may_use = listed_for(client_key(request))
    body = catalog.models_body if may_use is None else catalog.models_body_of(may_use)
    return web.Response(body=body, content_type="application/json")


async def retrieve_model(request: web.Request) -> web.Response:
    """One model object for anything ``model`` may name (``auto``, a tier in any case, an
    endpoint name, an exact alias or a name matching an alias pattern), with the id as sent;
    404 ``model_not_found`` otherwise, 403 ``model_not_allowed`` when the key may not use it."""
    runtime = request.app[RUNTIME]
    model = request.match_info["id"]
    body = runtime.catalog.model_object(model)
    check_model(runtime, client_key(request), runtime.catalog.lookup(model), model)
    return web.Response(body=body, content_type="application/json")


def add_routes(app: web.Application) -> None:
    """Register this module's routes (``add_get`` answers ``HEAD`` too)."""
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", list_models)
    # ``.+``: model ids hold slashes (``org/model``) and colons (``qwen3:8b``).
    app.router.add_get("/v1/models/{id:.+}", retrieve_model)

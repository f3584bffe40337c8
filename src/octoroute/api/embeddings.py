"""``POST /v1/embeddings``: one embedding model's replicas, chosen by name, never routed; and
the pipeline Ollama's ``/api/embed`` and ``/api/embeddings`` share with it.

Not a generating endpoint, so it skips ``api.generation``'s routing step, but nothing else: the
same body reading, the same forwarder (selection, retries, failover, health, ejection, limits),
the same decision headers (tier ``embeddings``, strategy ``direct``) and one log line per
request with route ``embeddings``. Answers are never streamed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol, TypeVar

from aiohttp import web

from octoroute.api.access import (
    add_limit_headers,
    charge,
    charge_shared,
    check_model,
    give_back,
    needs_cost,
)
from octoroute.api.auth import client_key
from octoroute.api.common import REQUEST_ID, RUNTIME, read_json_body, request_log
from octoroute.api.generation import upstream_header_lines
from octoroute.api.tracing import request_trace
from octoroute.catalog import ModelChoice
from octoroute.enums import DecisionSource, Pool
from octoroute.runtime import Runtime
from octoroute.upstream.attempts import Scope
from octoroute.upstream.forward import Answer, UpstreamRequest
from octoroute.wire.embeddings import EmbeddingsRequest, parse_embeddings_request

ROUTE: Final = "embeddings"
REASON: Final = "embedding_model"
"""``x-octoroute-reason`` and the log's ``reason``: the client named an embedding model (or
``auto``, which means the first one)."""


class EmbeddingRequest(UpstreamRequest, Protocol):
    """A parsed embeddings request of any dialect."""

    @property
    def model(self) -> str:
        """``model`` as the client sent it."""
        ...


E = TypeVar("E", bound=EmbeddingRequest)


def _catalog_choice(runtime: Runtime, model: str) -> ModelChoice:
    """The catalog's embedding model for ``model``: what ``serve_embeddings`` resolves unless
    told otherwise."""
    return runtime.catalog.resolve_embedding(model)


def _parse(body: bytes, runtime: Runtime) -> EmbeddingsRequest:
    return parse_embeddings_request(body, runtime.config.limits)


async def embeddings(request: web.Request) -> web.StreamResponse:
    """Forward one embeddings request to a replica of the embedding model it names."""
    return await serve_embeddings(request, ROUTE, _parse)


async def serve_embeddings(
    request: web.Request,
    route: str,
    parse: Callable[[bytes, Runtime], E],
    rewrite: Callable[[E], Callable[[Answer], Answer]] | None = None,
    shortcut: Callable[[E], web.Response | None] | None = None,
    resolve: Callable[[Runtime, str], ModelChoice] = _catalog_choice,
    *,
    any_content_type: bool = False,
) -> web.StreamResponse:
    """The embeddings pipeline for the dialect ``parse`` reads: ``rewrite`` gives, per request,
    how each attempt's answer is rewritten into the dialect; ``shortcut`` may answer a request
    the router can answer itself, once its model is known to exist; ``resolve`` replaces the
    catalog's lookup of ``model`` (to word its errors the dialect's way);
    ``any_content_type`` reads the body as JSON whatever its ``Content-Type`` (Ollama's way)."""
    runtime = request.app[RUNTIME]
    key = client_key(request)
    trace = request_trace(request, runtime)
    with request_log(request, route, None if key is None else key.name, trace) as entry:
        body = await read_json_body(request, any_content_type=any_content_type)
        parsed = parse(body, runtime)
        entry.model = parsed.model
        choice = resolve(runtime, parsed.model)
        check_model(runtime, key, choice, parsed.model)
        if shortcut is not None and (local := shortcut(parsed)) is not None:
            entry.status = local.status
            return local
        cost = len(body) // 4 if needs_cost(key) else 0
        charged = charge(runtime, key, cost) or await charge_shared(runtime, key, cost)
        entry.served_by = (Pool.EMBEDDINGS, REASON)
        metrics = runtime.metrics.pools[Pool.EMBEDDINGS]
        metrics.requests[DecisionSource.DIRECT].inc()
        endpoints = choice.endpoints
        scope = Scope(Pool.EMBEDDINGS, f"embedding model '{choice.name}'", len(endpoints))
        headers = {
            "x-request-id": request[REQUEST_ID],
            "x-octoroute-tier": Pool.EMBEDDINGS.value,
            "x-octoroute-strategy": DecisionSource.DIRECT.value,
            "x-octoroute-reason": REASON,
        }
        add_limit_headers(headers, charged)
        metrics.in_flight.inc()
        try:
            answer = await runtime.forwarder.complete(
                scope,
                endpoints,
                parsed,
                runtime.config.timeout_for(Pool.EMBEDDINGS),
                entry.outcome,
                extra=upstream_header_lines(request, traced=trace is not None),
                rewrite=None if rewrite is None else rewrite(parsed),
                trace=trace,
            )
        finally:
            metrics.in_flight.dec()
            give_back(runtime, charged)
        response = answer.to_response(headers)
        entry.status = response.status
        return response


def add_routes(app: web.Application) -> None:
    """Register this module's route."""
    app.router.add_post("/v1/embeddings", embeddings)

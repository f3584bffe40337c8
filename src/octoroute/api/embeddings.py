"""``POST /v1/embeddings``: one embedding model's replicas, chosen by name, never routed.

Not a generating endpoint, so it skips ``api.generation``'s routing step, but nothing else: the
same body reading, the same forwarder (selection, retries, failover, health, ejection, limits),
the same decision headers (tier ``embeddings``, strategy ``direct``) and one log line per
request with route ``embeddings``. Answers are never streamed.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from octoroute.api.common import REQUEST_ID, RUNTIME, RequestLog, read_json_body
from octoroute.api.generation import upstream_header_lines
from octoroute.enums import DecisionSource, Pool
from octoroute.upstream.attempts import Scope
from octoroute.wire.embeddings import parse_embeddings_request

ROUTE: Final = "embeddings"
REASON: Final = "embedding_model"
"""``x-octoroute-reason`` and the log's ``reason``: the client named an embedding model (or
``auto``, which means the first one)."""


async def embeddings(request: web.Request) -> web.StreamResponse:
    """Forward one embeddings request to a replica of the embedding model it names."""
    runtime = request.app[RUNTIME]
    with RequestLog(ROUTE) as entry:
        body = await read_json_body(request)
        parsed = parse_embeddings_request(body, runtime.config.limits)
        entry.model = parsed.model
        choice = runtime.catalog.resolve_embedding(parsed.model)
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
        metrics.in_flight.inc()
        try:
            answer = await runtime.forwarder.complete(
                scope,
                endpoints,
                parsed,
                runtime.config.timeout_for(Pool.EMBEDDINGS),
                entry.outcome,
                extra=upstream_header_lines(request),
            )
        finally:
            metrics.in_flight.dec()
        response = answer.to_response(headers)
        entry.status = response.status
        return response


def add_routes(app: web.Application) -> None:
    """Register this module's route."""
    app.router.add_post("/v1/embeddings", embeddings)

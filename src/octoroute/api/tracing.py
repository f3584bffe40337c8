"""The request span: opened around every traced request, closed with the status the client got.

Installed only when tracing is on (``create_app`` with a ``Tracing``), right inside the
request-context middleware, so the span covers everything the router does for the request,
refusals included, and sees the request id and the fields bound to the request's log context.
A streamed answer is relayed inside the handler, so the span ends when the stream does.
Handlers reach the span through :func:`request_trace`: ``None`` whenever tracing is off or the
path is excluded, which is the only test the rest of the request pays.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from octoroute.api.common import Handler
from octoroute.observability.logging import request_fields
from octoroute.observability.tracing import RequestTrace, Tracing
from octoroute.runtime import Runtime

TRACE: Final = web.RequestKey("octoroute_trace", RequestTrace)
"""The request's span, set by the middleware for a traced request."""


def request_trace(request: web.Request, runtime: Runtime) -> RequestTrace | None:
    """The request's span; ``None`` when tracing is off (the one test the request pays, on the
    runtime the handler already holds) or the path is not traced."""
    return None if runtime.tracing is None else request.get(TRACE)


def _route(request: web.Request) -> str | None:
    """The matched route's template (``/v1/models/{id}``), never the path's own values."""
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


def tracing_middleware(tracing: Tracing) -> Middleware:
    """The middleware that gives each traced request its server span."""

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not tracing.traces(path):
            return await handler(request)
        trace = tracing.start_request(request.method, _route(request), path, request.headers)
        request[TRACE] = trace
        try:
            response = await handler(request)
        except Exception as error:  # errors_as_envelopes answers them all: a bug if seen here
            trace.finish(500, type(error).__name__, request_fields())
            raise
        except BaseException:  # cancelled: the client went away before its answer was done
            trace.finish(None, "client_disconnected", request_fields())
            raise
        trace.finish(response.status, None, request_fields())
        return response

    return traced

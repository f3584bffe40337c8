"""``server.max_in_flight``: refuse work at once when the router is full, never queue it.

A queue in front of a saturated router only adds latency and memory: the client waits, then
times out, then retries. Past the limit a request is answered 503 ``server_overloaded`` with
``Retry-After: 1`` before its body is read, counted in
``octoroute_overload_rejections_total{reason="max_in_flight"}``, and logged as one WARNING line
at most every ``WARNING_INTERVAL_SECONDS`` (with how many were refused since the last line),
not one line each: the log must not grow fastest exactly when the router is overloaded.

The operator's read-only views (``GET``/``HEAD`` on ``/health``, ``/metrics``, ``/models``,
``/v1/models``, ``/v1/models/{id}``, and the dashboard's ``/admin/state`` and
``/admin/events``) are neither counted nor refused, so an overloaded router
can still be seen; nor is ``POST /admin/reload``, so it can still be reconfigured (a higher
``max_in_flight``, another endpoint).

The count is a plain integer: every request runs on the one event loop, so no lock is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

from octoroute.api.common import error_response
from octoroute.errors import ServerOverloaded
from octoroute.observability.logging import RateLimitedWarning, get_logger

if TYPE_CHECKING:
    from octoroute.runtime import Runtime

WARNING_INTERVAL_SECONDS: Final = 10.0
"""At most one "overloaded" warning line per this many seconds, per process."""
EXEMPT_PATHS: Final = frozenset(
    {"/health", "/metrics", "/models", "/v1/models", "/admin/state", "/admin/events"}
)
"""Read by ``GET`` or ``HEAD``, these never count against the limit (an overloaded router is
when its operator needs the dashboard most, and an event stream would hold a place for hours)."""
MODEL_PREFIX: Final = "/v1/models/"
"""``GET /v1/models/{id}``: as read-only as ``/v1/models``, exempt too."""
_READS: Final = frozenset({"GET", "HEAD"})
OPERATOR_ACTIONS: Final = frozenset({"/admin/reload"})
"""Exempt for ``POST``."""

log = get_logger("octoroute.overload")


class InFlightLimit:
    """The count of requests being answered, for ``server.max_in_flight``; one per application,
    which owns its count. The limit is read per request from the runtime's configuration, so a
    reload changes it for the next request.

    Not a middleware of its own: ``app.py``'s one guard middleware calls :meth:`enter` before
    the handler and :meth:`leave` after it (a middleware layer per check cost every request a
    coroutine)."""

    __slots__ = ("_warning", "in_flight")

    def __init__(self) -> None:
        self._warning = RateLimitedWarning(
            log, "overloaded: refusing requests", WARNING_INTERVAL_SECONDS
        )
        self.in_flight = 0

    def enter(self, request: web.Request, runtime: Runtime) -> web.Response | bool:
        """Count ``request`` in: ``True`` when it now holds a place (call :meth:`leave` once it
        is answered), ``False`` when it is exempt and never counted, or the 503 refusing it."""
        path = request.path
        method = request.method
        if (method in _READS and (path in EXEMPT_PATHS or path.startswith(MODEL_PREFIX))) or (
            method == "POST" and path in OPERATOR_ACTIONS
        ):
            return False
        limit = runtime.config.server.max_in_flight
        in_flight = self.in_flight
        if in_flight >= limit:
            runtime.metrics.overloads["max_in_flight"].inc()
            self._warning.warn(in_flight=in_flight, max_in_flight=limit)
            return error_response(
                ServerOverloaded(
                    f"The router is answering {limit} requests already (server.max_in_flight); "
                    "retry shortly.",
                    reason="max_in_flight",
                )
            )
        self.in_flight = in_flight + 1
        return True

    def leave(self) -> None:
        """A request counted in by :meth:`enter` is answered."""
        self.in_flight -= 1

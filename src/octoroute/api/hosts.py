"""``server.allowed_hosts``: refuse a request whose ``Host`` the router does not answer to, with
421 ``host_not_allowed``, before anything else reads it (``config.hosts`` says why and how
entries match).

The list is read from the runtime's config on every request, so a reloaded config applies to
the next one; its parsed form is kept for as long as the config's tuple is the same object.
Refusals are logged as one warning line at most every ``WARNING_INTERVAL_SECONDS`` (a
rebinding page may send many), never one per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from octoroute.api.common import RUNTIME, error_response
from octoroute.config.hosts import HostAllowlist
from octoroute.errors import HostNotAllowed
from octoroute.observability.logging import RateLimitedWarning, get_logger

WARNING_INTERVAL_SECONDS: Final = 10.0
_SHOWN_CHARS: Final = 80
"""A refused ``Host`` is echoed in the answer and the log, cut to this length."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = get_logger("octoroute.hosts")


def refusal(host: str | None) -> HostNotAllowed:
    """The error for a request whose ``Host`` is ``host`` (``None``: no ``Host`` at all)."""
    if host is None:
        return HostNotAllowed(
            "The request has no Host header, and this router answers only the names in its "
            "[server] allowed_hosts. Send the Host your URL names."
        )
    shown = host if len(host) <= _SHOWN_CHARS else host[:_SHOWN_CHARS] + "..."
    return HostNotAllowed(
        f"This router does not answer to the host {shown!r} (the request's Host header): it is "
        "not in the router's [server] allowed_hosts, which guards against DNS rebinding. Use the "
        "name the router is published under, or ask its operator to add this one."
    )


def check_host() -> Middleware:
    """A middleware that refuses requests whose ``Host`` is not allowed; a no-op while
    ``server.allowed_hosts`` is empty. One per application, which owns its cache."""
    warning = RateLimitedWarning(
        log, "refused requests for a host not in allowed_hosts", WARNING_INTERVAL_SECONDS
    )
    cached: tuple[tuple[str, ...], HostAllowlist] | None = None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal cached
        entries = request.app[RUNTIME].config.server.allowed_hosts
        if not entries:
            return await handler(request)
        if cached is None or cached[0] is not entries:
            cached = (entries, HostAllowlist(entries))
        host = request.headers.get("Host")
        if cached[1].allows(host):
            return await handler(request)
        shown = None if host is None else host[:_SHOWN_CHARS]
        warning.warn(host=shown, path=request.path[:_SHOWN_CHARS])
        return error_response(refusal(host))

    return middleware

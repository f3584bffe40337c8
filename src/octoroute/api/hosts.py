"""``server.allowed_hosts``: refuse a request whose ``Host`` the router does not answer to, with
421 ``host_not_allowed``, before anything else reads it (``config.hosts`` says why and how
entries match).

The list is read from the runtime's config on every request, so a reloaded config applies to
the next one; its parsed form is kept for as long as the config's tuple is the same object.
Refusals are logged as one warning line at most every ``WARNING_INTERVAL_SECONDS`` (a
rebinding page may send many), never one per request.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from octoroute.api.common import error_response
from octoroute.config.hosts import HostAllowlist
from octoroute.errors import HostNotAllowed
from octoroute.observability.logging import RateLimitedWarning, get_logger

WARNING_INTERVAL_SECONDS: Final = 10.0
_SHOWN_CHARS: Final = 80
"""A refused ``Host`` is echoed in the answer and the log, cut to this length."""

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


class HostCheck:
    """Refuses requests whose ``Host`` is not allowed; a no-op while ``server.allowed_hosts``
    is empty. One per application, which owns its cache. ``app.py``'s guard middleware calls
    it first, before anything else reads the request."""

    __slots__ = ("_cached", "_warning")

    def __init__(self) -> None:
        self._warning = RateLimitedWarning(
            log, "refused requests for a host not in allowed_hosts", WARNING_INTERVAL_SECONDS
        )
        self._cached: tuple[tuple[str, ...], HostAllowlist] | None = None

    def refusal(self, request: web.Request, entries: tuple[str, ...]) -> web.Response | None:
        """The 421 for ``request`` when its ``Host`` is not among ``entries`` (the current
        ``server.allowed_hosts``), else ``None``."""
        if not entries:
            return None
        cached = self._cached
        if cached is None or cached[0] is not entries:
            cached = self._cached = (entries, HostAllowlist(entries))
        host = request.headers.get("Host")
        if cached[1].allows(host):
            return None
        shown = None if host is None else host[:_SHOWN_CHARS]
        self._warning.warn(host=shown, path=request.path[:_SHOWN_CHARS])
        return error_response(refusal(host))

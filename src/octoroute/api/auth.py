"""``[auth]``: every request needs a client key, except on ``public_paths``; the operator
surfaces need an admin key.

The check (``KeyCheck``, called by ``app.py``'s guard middleware) runs before the in-flight
limit (a request without a valid key never takes a place there) and inside the dialect error
middleware, so a 401 or 403 on ``/v1/messages`` is Anthropic's shape and on ``/api/`` Ollama's. It reads ``[auth]`` from the current configuration
on every request, so a reload that adds, removes or changes keys applies to the next request.
What a key may use and how much is checked later, once the request's model is known
(``api.access``); here it is only who the client is.

A refused request is counted (``octoroute_auth_failures_total``) and logged as one warning at
most every ``WARNING_INTERVAL_SECONDS``, never with what was sent. An accepted one's request line
carries the key's ``name`` (``key``), never the key.

The dashboard's page and static files (``access.keys.UI_SHELL_PATHS``) are served with or without
a key: they hold no data, and a browser opening the page cannot send one. The page then asks for
an admin key and sends it with each request for data. The check is made only once a request's key
was refused, so it costs an accepted request nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

from octoroute.access.keys import ADMIN, UI_SHELL, ClientKey
from octoroute.api.common import error_response
from octoroute.errors import AdminKeyRequired, InvalidApiKey
from octoroute.observability.logging import RateLimitedWarning, get_logger

CLIENT_KEY: Final = web.RequestKey[ClientKey | None]("octoroute_client_key")
"""The key that authenticated the request; ``None`` with auth off and on public paths (always
set, so reading it never takes the mapping's missing-key path)."""
WARNING_INTERVAL_SECONDS: Final = 60.0

if TYPE_CHECKING:
    from octoroute.runtime import Runtime

log = get_logger("octoroute.auth")

_MISSING: Final = (
    "This router needs an API key. Send it as 'Authorization: Bearer <key>' (OpenAI clients: "
    "api_key), 'x-api-key: <key>' (Anthropic clients) or 'api-key: <key>'; ask the router's "
    "operator for one."
)
_INVALID: Final = (
    "The API key sent is not one this router knows (it is not shown here). Check the key your "
    "client sends, or ask the router's operator for one."
)


def client_key(request: web.Request) -> ClientKey | None:
    """The request's client key; ``None`` when auth is off or the path is public. Set for
    every request a handler sees (the guard middleware checks them all), so read without ``get``'s
    second call."""
    return request[CLIENT_KEY]


class KeyCheck:
    """Finds the client key of each request of the application serving ``runtime`` (one per
    application, which owns its warning's rate limit), or refuses the request. It holds the
    runtime rather than reading it from the application on every request: the runtime lives
    as long as the application, and a reload swaps what is inside it. ``app.py``'s guard
    middleware calls it after the host check and before the in-flight limit."""

    __slots__ = ("_runtime", "_warning")

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._warning = RateLimitedWarning(
            log, "refused requests without a valid API key", WARNING_INTERVAL_SECONDS
        )

    def refusal(self, request: web.Request) -> web.Response | None:
        """The 401 or 403 for ``request``, else ``None`` with its key set (``client_key``)."""
        runtime = self._runtime
        table = runtime.key_table()
        if table is None:
            request[CLIENT_KEY] = None
            return None
        path = request.path
        public = table.public
        # `path in public`, inlined (as for ADMIN below): this runs on every request.
        if path in public.exact or (public.prefixes and path.startswith(public.prefixes)):
            request[CLIENT_KEY] = None
            return None
        key = table.identify(request.headers)
        if not isinstance(key, ClientKey) and path in UI_SHELL:
            request[CLIENT_KEY] = None
            return None
        if not isinstance(key, ClientKey):
            runtime.metrics.auth_failures[key].inc()
            self._warning.warn(reason=key, path=path[:100], peer=request.remote)
            return error_response(InvalidApiKey(_MISSING if key == "missing" else _INVALID))
        if (
            not key.admin
            and (path in ADMIN.exact or path.startswith(ADMIN.prefixes))
            and path not in UI_SHELL
        ):
            key.metrics.rejections["admin_key_required"].inc()
            return error_response(
                AdminKeyRequired(
                    f"{path[:100]} is an operator surface: it needs a key with admin = true "
                    f"(this one, {key.name!r}, is not)."
                )
            )
        request[CLIENT_KEY] = key
        return None

"""CORS for browser apps: ``[server] cors_origins``.

Without origins nothing here is installed (``install`` returns at once), so the responses are
exactly those of a router without CORS and no request pays for it. With origins:

* a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) on any path is
  answered here, before the in-flight limit, so preflights never count against
  ``server.max_in_flight``: 204 with the allowed methods, headers and ``Max-Age`` for an allowed
  origin; 403 ``origin_not_allowed`` in the error envelope, without CORS headers, for any other
  (the browser fails the call either way; a person reading the answer learns why);
* every other response to an allowed origin (streams and error envelopes included) gets
  ``Access-Control-Allow-Origin`` and ``Access-Control-Expose-Headers``, added by an
  ``on_response_prepare`` hook, the one place that sees a stream's head before it is sent.

``Vary: Origin`` is added whenever the answer depends on the origin (explicit origins, not
``"*"``), so a shared cache never hands one origin's answer to another.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from octoroute.api.common import error_response
from octoroute.errors import OriginNotAllowed

ANY_ORIGIN: Final = "*"
ALLOW_METHODS: Final = "GET, POST, OPTIONS"
MAX_AGE_SECONDS: Final = 600
"""How long a browser may reuse a preflight's answer."""
EXPOSED_HEADERS: Final = (
    "x-request-id",
    "x-octoroute-tier",
    "x-octoroute-endpoint",
    "x-octoroute-strategy",
    "x-octoroute-reason",
    "x-octoroute-confidence",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)
"""Response headers a page's script may read (the rest are hidden by the browser)."""
ALLOWED_HEADERS: Final = (
    "authorization",
    "content-type",
    "x-api-key",
    "api-key",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "openai-beta",
    "openai-organization",
    "openai-project",
    "x-octoroute-importance",
    "x-session-id",
    "x-request-id",
    "traceparent",
    "tracestate",
    # What the Stainless-generated SDKs (openai-node, anthropic-sdk-typescript) send from a
    # browser; requested ``x-stainless-*`` names not listed here are allowed too (see below).
    "x-stainless-arch",
    "x-stainless-custom-poll-interval",
    "x-stainless-helper-method",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-poll-helper",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
)
"""Request headers a page may send; a preflight asking for others is answered without them."""
_SDK_PREFIX: Final = "x-stainless-"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
"""An HTTP header name (RFC 9110 token), lower-cased."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Policy:
    """The allowed origins and the headers precomputed for them, built once."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.any = ANY_ORIGIN in origins
        self.origins = frozenset(origins)
        self.known_headers = frozenset(ALLOWED_HEADERS)
        self.preflight_headers = {
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        }
        self.expose = ", ".join(EXPOSED_HEADERS)

    def allow_origin(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, ``None`` if not allowed."""
        if origin is None:
            return None
        if self.any:
            return ANY_ORIGIN
        return origin if origin in self.origins else None

    def allow_headers(self, requested: str | None) -> str:
        """The fixed list, plus any ``x-stainless-*`` token the preflight asked for."""
        extra = []
        for name in (requested or "").split(","):
            name = name.strip().lower()
            if (
                name.startswith(_SDK_PREFIX)
                and name not in self.known_headers
                and _TOKEN.fullmatch(name)
            ):
                extra.append(name)
        return ", ".join((*ALLOWED_HEADERS, *extra))

    def vary(self, response: web.StreamResponse) -> None:
        """Say that the answer depends on ``Origin`` (only when it does)."""
        if not self.any:
            response.headers.add(hdrs.VARY, "Origin")


def install(app: web.Application, origins: tuple[str, ...]) -> Middleware | None:
    """Add the response hook to ``app`` and return the preflight middleware, which the caller
    places before the in-flight limit; nothing, and ``None``, when ``origins`` is empty."""
    if not origins:
        return None
    policy = _Policy(origins)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        if hdrs.ACCESS_CONTROL_ALLOW_ORIGIN in response.headers:
            return  # a preflight answered below
        allowed = policy.allow_origin(request.headers.get(hdrs.ORIGIN))
        if allowed is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = policy.expose
        policy.vary(response)

    app.on_response_prepare.append(add_headers)

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method != hdrs.METH_OPTIONS
            or hdrs.ORIGIN not in request.headers
            or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers
        ):
            return await handler(request)
        origin = request.headers[hdrs.ORIGIN]
        allowed = policy.allow_origin(origin)
        if allowed is None:
            return error_response(
                OriginNotAllowed(
                    f"The origin {origin[:100]!r} may not call this router from a browser; "
                    "add it to server.cors_origins."
                )
            )
        response = web.Response(status=204, headers=policy.preflight_headers)
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = policy.allow_headers(
            request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        )
        policy.vary(response)
        return response

    return preflight

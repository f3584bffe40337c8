"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's Messages API,
through the shared generation pipeline.

Thin glue: ``wire.anthropic`` parses and translates the request, ``wire.anthropic_answer`` the
answers; this module only picks, per attempt, between passing a native endpoint's answer through
and translating a chat endpoint's. Errors on these paths take Anthropic's shape
(``anthropic_errors``, installed by ``app.py``). ``anthropic-version`` and ``anthropic-beta`` are
not read, only passed on to the model server; ``x-api-key``, like ``Authorization``, is never
forwarded, and read only as the client key when ``[auth]`` is on (``api.auth``).
"""

from __future__ import annotations

import time
from typing import Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from octoroute.access.limits import anthropic_rate_headers
from octoroute.api.access import check_model
from octoroute.api.auth import client_key
from octoroute.api.common import RUNTIME, Handler, dialect_errors, read_json_body
from octoroute.api.generation import PerEndpoint, generate
from octoroute.enums import Native
from octoroute.routing.metadata import estimate_tokens
from octoroute.runtime import Runtime
from octoroute.wire.anthropic import (
    MessagesRequest,
    error_type_for,
    parse_count_request,
    parse_messages_request,
)
from octoroute.wire.anthropic_answer import (
    MessagesStream,
    NativeMessagesStream,
    error_body,
    message_from_chat,
)

TOO_MANY_REQUESTS: Final = 429
PATH_PREFIX = "/v1/messages"
"""Every route of this dialect starts so: its errors are written in Anthropic's shape."""


def _parse(body: bytes, runtime: Runtime) -> MessagesRequest:
    return parse_messages_request(body, runtime.config.limits)


def _exchange(request: MessagesRequest, runtime: Runtime) -> PerEndpoint:
    """Per attempt: a native endpoint's answer as it came, a chat endpoint's translated."""
    return PerEndpoint(
        request,
        Native.MESSAGES,
        NativeMessagesStream,
        lambda: MessagesStream(request),
        lambda answer: message_from_chat(answer, request),
    )


FORWARDED_HEADERS: Final = ("anthropic-version", "anthropic-beta")
"""Sent on to the model server (when well formed), so one that speaks Messages natively sees the
API version and beta features the client asked for; chat servers ignore them."""


async def create_message(request: web.Request) -> web.StreamResponse:
    """Route and answer one Messages request, buffered or streamed."""
    return await generate(request, "messages", _parse, _exchange, forwarded=FORWARDED_HEADERS)


async def count_tokens(request: web.Request) -> web.Response:
    """``{"input_tokens": N}``: the router's own estimate (characters // 4, as routing counts:
    the system prompt and the messages' text, plus the ``tools`` as sent, which a model's
    template renders into the prompt too), not the model's tokenizer; nothing is sent
    upstream.

    ``model`` is resolved and checked against the client key as ``/v1/messages`` does it, with
    the same 404 and 403: a count for a model the router does not serve, or the key may not
    use, would promise a request that is then refused."""
    runtime = request.app[RUNTIME]
    body = await read_json_body(request)
    parsed = parse_count_request(body, runtime.config.limits)
    check_model(runtime, client_key(request), runtime.catalog.resolve(parsed.model), parsed.model)
    tools = parsed.fields.get("tools")
    count = estimate_tokens(parsed.messages) + (0 if tools is None else len(tools) // 4)
    return web.Response(body=orjson.dumps({"input_tokens": count}), content_type="application/json")


def _error_body(request: web.Request, status: int, message: str, code: str | None) -> bytes:
    return error_body(error_type_for(status), message)


def _anthropic_errors() -> Middleware:
    rewrite = dialect_errors(PATH_PREFIX, _error_body)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await rewrite(request, handler)
        if (
            response.status == TOO_MANY_REQUESTS
            and not response.prepared
            and request.path.startswith(PATH_PREFIX)
        ):
            response.headers.update(anthropic_rate_headers(response.headers, time.time()))
        return response

    return middleware


anthropic_errors: Final = _anthropic_errors()
"""On ``/v1/messages*``, every error answer not yet sent in Anthropic's envelope with the same
status and headers; a 429 of a client key's limits also carries the
``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` headers Anthropic sends, beside
``retry-after`` (and the ``x-ratelimit-*`` ones). Every other path is left alone (``app.py``
installs it)."""


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_post("/v1/messages", create_message)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)

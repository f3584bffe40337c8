"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's Messages API,
through the shared generation pipeline.

Thin glue: ``wire.anthropic`` parses and translates the request, ``wire.anthropic_answer`` the
answers; this module only picks, per attempt, between passing a native endpoint's answer through
and translating a chat endpoint's. Errors on these paths take Anthropic's shape in ``app.py``
(``anthropic_errors``, installed by ``app.py``). ``anthropic-version`` and ``anthropic-beta`` are
not read, only passed on to the model server; ``x-api-key``, like ``Authorization``, is accepted
and not read (the router has no client keys yet).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import orjson
from aiohttp import web

from octoroute.api.common import RUNTIME, read_json_body
from octoroute.api.generation import generate
from octoroute.config.schema import EndpointConfig
from octoroute.enums import Native
from octoroute.errors import BadUpstreamResponse
from octoroute.routing.metadata import estimate_tokens
from octoroute.runtime import Runtime
from octoroute.upstream.forward import Answer, StreamTranslator
from octoroute.wire import sse
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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PATH_PREFIX = "/v1/messages"
"""Every route of this dialect starts so: its errors are written in Anthropic's shape."""


def _parse(body: bytes, runtime: Runtime) -> MessagesRequest:
    return parse_messages_request(body, runtime.config.limits)


class _Exchange:
    """One request's ``Translation``: native or translated per attempt."""

    __slots__ = ("_request",)

    def __init__(self, request: MessagesRequest) -> None:
        self._request = request

    def check_scope(self, endpoints: Sequence[EndpointConfig]) -> None:
        self._request.check_scope(endpoints)

    def translator_for(self, endpoint: EndpointConfig) -> StreamTranslator:
        if Native.MESSAGES in endpoint.native:
            return NativeMessagesStream()
        return MessagesStream(self._request)

    def answer(self, answer: Answer) -> Answer:
        if not answer.ok or Native.MESSAGES in answer.endpoint.config.native:
            return answer
        try:
            message = message_from_chat(orjson.loads(answer.body), self._request)
        except (orjson.JSONDecodeError, ValueError):
            label = answer.endpoint.config.name
            raise BadUpstreamResponse(
                f"{label}: answered 200 with a body that is not the JSON expected "
                f"({sse.describe_body(answer.body)})",
                endpoint=label,
            ) from None
        return Answer(answer.status, "application/json", orjson.dumps(message), answer.endpoint)


def _exchange(request: MessagesRequest, runtime: Runtime) -> _Exchange:
    return _Exchange(request)


FORWARDED_HEADERS: Final = ("anthropic-version", "anthropic-beta")
"""Sent on to the model server (when well formed), so one that speaks Messages natively sees the
API version and beta features the client asked for; chat servers ignore them."""


async def create_message(request: web.Request) -> web.StreamResponse:
    """Route and answer one Messages request, buffered or streamed."""
    return await generate(request, "messages", _parse, _exchange, forwarded=FORWARDED_HEADERS)


async def count_tokens(request: web.Request) -> web.Response:
    """``{"input_tokens": N}``: the router's own estimate (characters // 4, as routing counts),
    not the model's tokenizer; nothing is sent upstream."""
    body = await read_json_body(request)
    parsed = parse_count_request(body, request.app[RUNTIME].config.limits)
    count = estimate_tokens(parsed.messages)
    return web.Response(body=orjson.dumps({"input_tokens": count}), content_type="application/json")


@web.middleware
async def anthropic_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On ``/v1/messages*``, an error answer not yet sent, in Anthropic's envelope with the same
    status and headers; every other path is left alone."""
    response = await handler(request)
    if (
        response.status < 400
        or response.prepared
        or not request.path.startswith(PATH_PREFIX)
        or not isinstance(response, web.Response)
    ):
        return response
    body = response.body if isinstance(response.body, bytes) else b""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message = error["message"]
    elif isinstance(error, str):
        message = error
    else:
        message = body.decode("utf-8", "replace") or (response.reason or "error")
    response.body = error_body(error_type_for(response.status), message)
    response.content_type = "application/json"
    return response


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_post("/v1/messages", create_message)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)

"""``POST /v1/responses``: the OpenAI Responses API, through the shared generation pipeline.

Thin glue: ``wire.responses`` parses and translates the request, ``wire.responses_answer`` the
answers; this module only picks, per attempt, between passing a native endpoint's answer through
and translating a chat endpoint's, and keeps finished responses for ``previous_response_id``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from octoroute.api.auth import client_key
from octoroute.api.generation import generate, unreadable
from octoroute.config.schema import EndpointConfig
from octoroute.enums import Native
from octoroute.runtime import Runtime
from octoroute.upstream.forward import Answer, StreamTranslator
from octoroute.wire.responses import ResponsesRequest, parse_responses_request
from octoroute.wire.responses_answer import NativeStream, ResponsesStream, response_from_chat
from octoroute.wire.responses_store import Item, ResponseStore


class _Owned:
    """The parser and the exchange of one request, for its client key (``owner``: its name,
    ``None`` without one): a key continues only the responses it stored itself."""

    __slots__ = ("_owner",)

    def __init__(self, owner: str | None) -> None:
        self._owner = owner

    def _history(self, runtime: Runtime) -> Callable[[str], list[Item] | None]:
        owner, store = self._owner, runtime.responses
        return lambda response_id: store.get(response_id, owner)

    def parse(self, body: bytes, runtime: Runtime) -> ResponsesRequest:
        return parse_responses_request(
            body, runtime.config.limits, self._history(runtime), int(time.time())
        )

    def exchange(self, request: ResponsesRequest, runtime: Runtime) -> _Exchange:
        return _Exchange(request, runtime.responses, self._owner)


class _Exchange:
    """One request's ``Translation``: native or translated per attempt, stored when done."""

    __slots__ = ("_owner", "_request", "_store")

    def __init__(self, request: ResponsesRequest, store: ResponseStore, owner: str | None) -> None:
        self._request = request
        self._store = store
        self._owner = owner

    def _keep(self, response: dict[str, Any]) -> None:
        response_id = response.get("id")
        if self._request.store and isinstance(response_id, str):
            self._store.put(response_id, self._request.input_items, response, self._owner)

    def check_scope(self, endpoints: Sequence[EndpointConfig]) -> None:
        self._request.check_scope(endpoints)

    def translator_for(self, endpoint: EndpointConfig) -> StreamTranslator:
        if Native.RESPONSES in endpoint.native:
            return NativeStream(self._keep)
        return ResponsesStream(self._request, self._keep)

    def answer(self, answer: Answer) -> Answer:
        if not answer.ok:
            return answer
        try:
            decoded = orjson.loads(answer.body)
            if Native.RESPONSES in answer.endpoint.config.native:
                if isinstance(decoded, dict):
                    self._keep(decoded)
                return answer
            response = response_from_chat(decoded, self._request)
        except (orjson.JSONDecodeError, ValueError):
            raise unreadable(answer) from None
        self._keep(response)
        body = orjson.dumps(response)
        return Answer(answer.status, "application/json", body, answer.endpoint)


async def create_response(request: web.Request) -> web.StreamResponse:
    """Route and answer one Responses request, buffered or streamed; ``previous_response_id``
    resolves only among the responses stored by the request's own key."""
    key = client_key(request)
    owned = _Owned(None if key is None else key.name)
    return await generate(request, "responses", owned.parse, owned.exchange)


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_post("/v1/responses", create_response)

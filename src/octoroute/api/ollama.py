"""Ollama's API (``/api/...``): chat, generate and embeddings through the shared pipelines, and
the model endpoints clients configured for Ollama ask first.

Thin glue: ``wire.ollama`` and ``wire.ollama_embed`` parse and translate requests,
``wire.ollama_answer`` the answers, ``wire.ollama_models`` the model listings; this module picks,
per attempt, between passing a native endpoint's answer through and translating a chat
endpoint's, answers load requests itself, and words "not found" as Ollama does. Errors on
``/api/`` paths take Ollama's shape, ``{"error": "..."}`` (``ollama_errors``, installed by
``app.py``). ``GET /`` answers ``Ollama is running``, the probe the ``ollama`` CLI and
several clients send first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson
from aiohttp import web

from octoroute.api.access import check_model, listed_for
from octoroute.api.auth import client_key
from octoroute.api.common import RUNTIME, Handler, dialect_errors, read_json_body
from octoroute.api.embeddings import serve_embeddings
from octoroute.api.generation import Parser, PerEndpoint, generate, translated
from octoroute.catalog import ModelChoice
from octoroute.enums import Native, Pool
from octoroute.errors import InvalidRequest, ModelNotFound
from octoroute.fleet.endpoint import Endpoint
from octoroute.runtime import Runtime
from octoroute.upstream.forward import Answer
from octoroute.wire.ollama import OllamaRequest, parse_chat_request, parse_generate_request
from octoroute.wire.ollama_answer import (
    NativeStream,
    OllamaStream,
    Timing,
    answer_from_chat,
    embed_answer,
    embedding_answer,
    load_answer,
)
from octoroute.wire.ollama_embed import (
    OllamaEmbedRequest,
    parse_embed_request,
    parse_embeddings_request,
)
from octoroute.wire.ollama_models import (
    LATEST,
    ModelInfo,
    ps_body,
    show_body,
    tagged,
    tags_body,
    version_body,
)
from octoroute.wire.requests import decode_json_object, decode_json_values

PATH_PREFIX: Final = "/api/"
"""Every route of this dialect starts so: its errors are written in Ollama's shape."""
RUNNING: Final = "Ollama is running"
ROUTES: Final = (
    "GET /api/version, GET /api/tags, POST /api/show, GET /api/ps, POST /api/chat, "
    "POST /api/generate, POST /api/embed and POST /api/embeddings"
)
"""What this router serves of Ollama's API, for the 404 of any other ``/api/`` path."""
MAX_SHOWN_MODEL_CHARS: Final = 100
JSON: Final = "application/json"


class Listing:
    """The model endpoints' knowledge, built at start-up and again after a reload that swapped
    the catalog: every name a client may send, what it names, and the ``/api/tags`` body.
    Context windows and loaded models are read from the endpoints' facts (kept current by the
    prober) when asked."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        moment = Timing(0, time.monotonic_ns, time.time)
        self.modified_at: Final = moment.created_at()
        """When this router started: the ``modified_at`` of every model it lists."""
        self.version: Final = version_body()
        self._catalog = runtime.catalog
        self._listed = self._list()
        self._tags = tags_body([info for _, info in self._listed], self.modified_at)

    def _list(self) -> list[tuple[ModelChoice, ModelInfo]]:
        catalog = self._catalog
        return [
            (catalog.lookup(name), ModelInfo(tagged(name), catalog.lookup(name).embedding))
            for name in catalog.model_ids
        ]

    def _follow_reloads(self) -> None:
        if self._runtime.catalog is not self._catalog:
            self._catalog = self._runtime.catalog
            self._listed = self._list()
            self._tags = tags_body([info for _, info in self._listed], self.modified_at)

    @property
    def tags(self) -> bytes:
        """The ``/api/tags`` body listing every model."""
        self._follow_reloads()
        return self._tags

    def tags_of(self, may_use: Callable[[ModelChoice], bool]) -> bytes:
        """The ``/api/tags`` body listing only what ``may_use`` allows (a client key's)."""
        self._follow_reloads()
        shown = [info for choice, info in self._listed if may_use(choice)]
        return tags_body(shown, self.modified_at)

    def choice(self, name: str) -> ModelChoice:
        """What ``name`` names (``name:latest`` too); ``ModelNotFound`` if unknown."""
        return _named(self._runtime.catalog.lookup, name)

    def info(self, name: str, choice: ModelChoice) -> ModelInfo:
        """``name``, which resolved to ``choice``, described with what the fleet knows now."""
        endpoints = choice.endpoints
        if choice.is_auto:
            endpoints = tuple(e for tier in self._runtime.fleet.tiers.values() for e in tier)
        return ModelInfo(name, choice.embedding, _smallest_window(endpoints))

    def loaded(self, may_use: Callable[[ModelChoice], bool] | None = None) -> list[ModelInfo]:
        """The endpoint names some instance of which its server reports loaded; only those
        ``may_use`` allows (a client key's), when given."""
        by_name: dict[str, list[Endpoint]] = {}
        for endpoint in self._runtime.fleet.all():
            if endpoint.facts.loaded is True:
                by_name.setdefault(endpoint.name, []).append(endpoint)
        if may_use is not None:
            lookup = self._runtime.catalog.lookup
            by_name = {name: found for name, found in by_name.items() if may_use(lookup(name))}
        return [
            ModelInfo(
                tagged(name),
                endpoints[0].pool is Pool.EMBEDDINGS,
                min(
                    (e.context_window for e in endpoints if e.context_window),
                    default=None,
                ),
            )
            for name, endpoints in by_name.items()
        ]


def _smallest_window(endpoints: Sequence[Endpoint]) -> int | None:
    """The context window a request may count on whichever endpoint serves it: the smallest,
    when every endpoint has one. Placement's window (the configured ``context_window``, else
    the discovered one): a client told a larger one would send what placement refuses."""
    windows = [endpoint.context_window for endpoint in endpoints]
    if not windows or any(window is None for window in windows):
        return None
    return min(window for window in windows if window is not None)


LISTING: Final = web.AppKey("octoroute_ollama_listing", Listing)


def _shown(model: str) -> str:
    return model if len(model) <= MAX_SHOWN_MODEL_CHARS else model[:MAX_SHOWN_MODEL_CHARS] + "..."


def _named(lookup: Callable[[str], ModelChoice], model: str) -> ModelChoice:
    """``lookup(model)``; for an unknown ``name:latest``, ``lookup(name)``: to Ollama a name
    without a tag means ``:latest``, so its clients send ``auto:latest`` for ``auto`` (Open WebUI
    always does) and ``/api/tags`` lists it so."""
    try:
        return lookup(model)
    except ModelNotFound:
        if not model.endswith(LATEST):
            raise
    return lookup(model.removesuffix(LATEST))


def _not_found(runtime: Runtime, model: str) -> ModelNotFound:
    """``model 'x' not found`` (404), Ollama's words, for a name the router does not know."""
    return ModelNotFound(
        f"model '{_shown(model)}' not found; this router serves {runtime.catalog.available} "
        "(GET /api/tags lists them)",
        param="model",
    )


def _resolve_chat(runtime: Runtime, model: str) -> ModelChoice:
    """The catalog's chat choice, its errors in Ollama's words."""
    try:
        return _named(runtime.catalog.resolve, model)
    except ModelNotFound:
        raise _not_found(runtime, model) from None
    except InvalidRequest:
        raise InvalidRequest(
            f"model '{_shown(model)}' is an embedding model: send it to POST /api/embed, or name "
            "a chat model here",
            param="model",
        ) from None


def _resolve_embedding(runtime: Runtime, model: str) -> ModelChoice:
    """The catalog's embedding model, its errors in Ollama's words."""
    catalog = runtime.catalog
    try:
        return _named(catalog.resolve_embedding, model)
    except ModelNotFound:
        known = catalog.embedding_models
        raise ModelNotFound(
            f"model '{_shown(model)}' not found; "
            + (
                f"this router's embedding models are {known} (or 'auto')"
                if known
                else "this router has no embedding models ([[embeddings]] in its config)"
            ),
            param="model",
        ) from None
    except InvalidRequest:
        raise InvalidRequest(
            f"model '{_shown(model)}' is not an embedding model; embeddings need one of "
            f"{catalog.embedding_models} (or 'auto')",
            param="model",
        ) from None


# --- chat and generate ----------------------------------------------------------------------


def _parse_chat(body: bytes, runtime: Runtime) -> OllamaRequest:
    return parse_chat_request(body, runtime.config.limits, started_ns=time.perf_counter_ns())


def _parse_generate(body: bytes, runtime: Runtime) -> OllamaRequest:
    return parse_generate_request(body, runtime.config.limits, started_ns=time.perf_counter_ns())


def _timing(request: OllamaRequest) -> Timing:
    return Timing(request.started_ns, time.perf_counter_ns, time.time)


def _exchange(request: OllamaRequest, runtime: Runtime) -> PerEndpoint:
    """Per attempt: a native endpoint's answer as it came, a chat endpoint's translated."""
    timing = _timing(request)
    return PerEndpoint(
        request,
        Native.OLLAMA,
        NativeStream,
        lambda: OllamaStream(request, timing),
        lambda answer: answer_from_chat(answer, request, timing),
    )


def _load(request: OllamaRequest) -> web.Response | None:
    """Ollama's answer to a request that only loads (or unloads) the model: the router has
    nothing to load, so it says done at once, as Ollama does for a model already loaded."""
    if request.load is None:
        return None
    return web.Response(body=load_answer(request, _timing(request)), content_type=JSON)


def _generation(route: str, parse: Parser[OllamaRequest]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await generate(
            request, route, parse, _exchange, _load, _resolve_chat, any_content_type=True
        )

    return handle


chat: Final = _generation("ollama_chat", _parse_chat)
"""``POST /api/chat``: route and answer one chat, NDJSON lines unless ``stream: false``."""
generate_text: Final = _generation("ollama_generate", _parse_generate)
"""``POST /api/generate``: route and answer one prompt, as ``/api/chat`` does."""


# --- embeddings -------------------------------------------------------------------------------


def _parse_embed(body: bytes, runtime: Runtime) -> OllamaEmbedRequest:
    return parse_embed_request(body, runtime.config.limits)


def _parse_embeddings(body: bytes, runtime: Runtime) -> OllamaEmbedRequest:
    return parse_embeddings_request(body, runtime.config.limits)


def _embed_rewrite(request: OllamaEmbedRequest) -> Callable[[Answer], Answer]:
    started = time.perf_counter_ns()

    def translate(answer: Any) -> dict[str, Any]:
        if request.legacy:
            return embedding_answer(answer)
        elapsed = max(1, time.perf_counter_ns() - started)
        return embed_answer(answer, request.model, elapsed, request.dimensions)

    return lambda answer: translated(answer, Native.OLLAMA, translate)


def _nothing_to_embed(request: OllamaEmbedRequest) -> web.Response | None:
    if not request.empty:
        return None
    body = {"embedding": []} if request.legacy else {"model": request.model, "embeddings": []}
    return web.Response(body=orjson.dumps(body), content_type=JSON)


def _embedding(route: str, parse: Callable[[bytes, Runtime], OllamaEmbedRequest]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve_embeddings(
            request,
            route,
            parse,
            _embed_rewrite,
            _nothing_to_embed,
            _resolve_embedding,
            any_content_type=True,
        )

    return handle


embed: Final = _embedding("ollama_embed", _parse_embed)
"""``POST /api/embed``: vectors for ``input`` from an embedding model."""
embeddings: Final = _embedding("ollama_embeddings", _parse_embeddings)
"""``POST /api/embeddings`` (Ollama's older endpoint): one vector for ``prompt``."""


# --- the model endpoints ------------------------------------------------------------------------


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=JSON)


async def running(request: web.Request) -> web.Response:
    """``GET /`` (and ``HEAD``): the probe of the ``ollama`` CLI and Ollama clients."""
    return web.Response(text=RUNNING)


async def version(request: web.Request) -> web.Response:
    """``GET /api/version``: the Ollama API level spoken (``wire.ollama_models``)."""
    return _json(request.app[LISTING].version)


async def tags(request: web.Request) -> web.Response:
    """``GET /api/tags``: every model a client may name, built at start-up; with ``[auth]``,
    only those the request's key may use."""
    listing = request.app[LISTING]
    may_use = listed_for(client_key(request))
    return _json(listing.tags if may_use is None else listing.tags_of(may_use))


async def show(request: web.Request) -> web.Response:
    """``POST /api/show``: one model's details (``model``, or the older ``name``); with
    ``[auth]``, 403 ``model_not_allowed`` for a model the request's key may not use, as
    ``GET /v1/models/{id}`` answers."""
    runtime = request.app[RUNTIME]
    body = await read_json_body(request, any_content_type=True)
    decode_json_object(body)  # a 400 that says what is wrong with a body that is not an object
    values = decode_json_values(body)
    model = values.get("model") or values.get("name")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model is required: a model name string", param="model")
    listing = request.app[LISTING]
    try:
        choice = listing.choice(model)
    except ModelNotFound:
        raise _not_found(runtime, model) from None
    check_model(runtime, client_key(request), choice, model)
    return _json(show_body(listing.info(model, choice), listing.modified_at))


async def ps(request: web.Request) -> web.Response:
    """``GET /api/ps``: the models some server reports loaded (empty when none says); with
    ``[auth]``, only those the request's key may use."""
    listing = request.app[LISTING]
    return _json(ps_body(listing.loaded(listed_for(client_key(request)))))


def _error_body(request: web.Request, status: int, message: str, code: str | None) -> bytes:
    """Ollama's ``{"error": "..."}``; an unknown ``/api/`` path says what is served."""
    if code == "not_found":
        message = (
            f"{request.method} {request.path} is not served here: this router serves {ROUTES} "
            "(models are managed on the model servers)"
        )
    return orjson.dumps({"error": message})


ollama_errors: Final = dialect_errors(PATH_PREFIX, _error_body)
"""On ``/api/`` paths, every error answer not yet sent as Ollama's ``{"error": "..."}`` with
the same status and headers (``app.py`` installs it)."""


def add_routes(app: web.Application) -> None:
    """Register this module's routes, and build the model listing once."""
    app[LISTING] = Listing(app[RUNTIME])
    app.router.add_get("/", running)
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/tags", tags)
    app.router.add_post("/api/show", show)
    app.router.add_get("/api/ps", ps)
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/generate", generate_text)
    app.router.add_post("/api/embed", embed)
    app.router.add_post("/api/embeddings", embeddings)

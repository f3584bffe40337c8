"""Several simulated models behind one address, as one Ollama, LM Studio or vLLM serves several.

``octoroute simulate`` runs one per address a config names: a template whose three tiers point
at ``127.0.0.1:11434`` gets one server there answering for all three names. A request goes to
the model its JSON body's ``model`` names (exactly, or as Ollama compares names for an Ollama
server); a server with one model answers any name, as llama-server does; otherwise an unknown
name is a 404 ``model_not_found`` listing the names served. The lists every kind keeps of its
models (``/v1/models``, Ollama's ``/api/tags`` and ``/api/ps``, vLLM's ``/metrics``) hold all of
them; llama-server's per-model paths take ``?model=``; anything else is answered by the first
model. Each model keeps its own behaviour, engine (slots, load state) and recorded requests.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import orjson
from aiohttp import web

from octoroute.enums import Kind
from octoroute.simulator.behaviour import error_body
from octoroute.simulator.server import MODELS_PATH, SimulatedModel, listen
from octoroute.simulator.status import (
    model_entry,
    ollama_name,
    ollama_ps_entries,
    ollama_tag,
    vllm_metrics,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

_JSON: Final = "application/json"
_GENERATION_PATHS: Final = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"}
)


class MultiModelServer:
    """One simulated server on ``host:port`` answering for each of ``models`` (at least one),
    all playing ``kind``'s server."""

    def __init__(self, models: Sequence[SimulatedModel], *, kind: Kind = Kind.OPENAI) -> None:
        if not models:
            raise ValueError("a server needs at least one model")
        self.models: tuple[SimulatedModel, ...] = tuple(models)
        self.kind = kind
        for model in self.models:
            model.behaviour.kind = kind
        self._runner: web.AppRunner | None = None
        self._address: tuple[str, int] | None = None
        self._created = int(time.time())

    def __repr__(self) -> str:
        names = ", ".join(model.name for model in self.models)
        return f"MultiModelServer({names}; {self.url if self._address else 'stopped'})"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0: a free one). ``OSError`` when the address is taken."""
        if self._runner is not None:
            raise RuntimeError(f"{self!r} is already running")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = await listen(app, host, port)
        self._runner = runner
        self._address = (host, int(runner.addresses[0][1]))

    async def stop(self) -> None:
        """Stop listening and end every request under way; a no-op when stopped."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for model in self.models:
            model.abort_in_flight()
        await runner.cleanup()

    @property
    def url(self) -> str:
        """``http://host:port``, the server's root."""
        if self._address is None:
            raise RuntimeError(f"{self!r} was never started")
        host, port = self._address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def model_for(self, name: object) -> SimulatedModel | None:
        """The model a request naming ``name`` goes to; ``None`` when none answers to it."""
        if isinstance(name, str):
            for model in self.models:
                if model.name == name:
                    return model
            if self.kind is Kind.OLLAMA:
                wanted = ollama_name(name)
                for model in self.models:
                    if ollama_name(model.name) == wanted:
                        return model
        return self.models[0] if len(self.models) == 1 else None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.method == "POST" and path in _GENERATION_PATHS:
            return await self._generation(request)
        if request.method != "GET":
            return await self._by_name(request, self._named_in_body(await request.read()))
        if path == MODELS_PATH:
            entries = [model_entry(m.name, self._created, m.behaviour) for m in self.models]
            return _json({"object": "list", "data": entries})
        if self.kind is Kind.OLLAMA and path == "/api/tags":
            return _json({"models": [ollama_tag(model.name) for model in self.models]})
        if self.kind is Kind.OLLAMA and path == "/api/ps":
            return _json({"models": [e for m in self.models for e in _ps(m)]})
        if self.kind is Kind.VLLM and path == "/metrics":
            return _metrics(self.models)
        return await self._by_name(request, request.query.get("model"))

    async def _generation(self, request: web.Request) -> web.StreamResponse:
        named = self._named_in_body(await request.read())
        model = self.model_for(named)
        if model is not None:
            return await model.handle(request)
        served = ", ".join(repr(m.name) for m in self.models)
        message = f"The model {named!r} does not exist on this server; it serves {served}."
        body = error_body(
            message, type_="invalid_request_error", param="model", code="model_not_found"
        )
        return _json(body, status=404)

    async def _by_name(self, request: web.Request, name: object) -> web.StreamResponse:
        model = self.model_for(name) if name is not None else None
        return await (model or self.models[0]).handle(request)

    @staticmethod
    def _named_in_body(body: bytes) -> object:
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return None
        return parsed.get("model") if isinstance(parsed, dict) else None


def _json(value: object, *, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), content_type=_JSON)


def _ps(model: SimulatedModel) -> list[dict[str, object]]:
    return ollama_ps_entries(model.name, model.behaviour, model.engine.snapshot(model.behaviour))


def _metrics(models: tuple[SimulatedModel, ...]) -> web.Response:
    """vLLM's exposition for every model, each family's lines together (as the text format
    requires) and the lines models share (``# HELP``, ``# TYPE``, the process's own series)
    once."""
    families: dict[str, dict[str, None]] = {}
    for model in models:
        _, body, _ = vllm_metrics(model.name, model.engine.snapshot(model.behaviour))
        for line in body.decode().splitlines():
            words = line.split()
            family = words[2] if line.startswith("#") else words[0].partition("{")[0]
            families.setdefault(family, {})[line] = None
    lines = [line for family in families.values() for line in family]
    response = web.Response(body=("\n".join(lines) + "\n").encode())
    response.content_type = "text/plain"
    response.charset = "utf-8"
    return response

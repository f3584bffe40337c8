"""A small fake Ollama server on 127.0.0.1 for the ``native = ["ollama"]`` tests.

It speaks Ollama's own API as Ollama does (``/api/chat`` and ``/api/generate`` stream NDJSON
unless ``"stream": false``, ``/api/embed``, ``/api/embeddings``) plus the ``GET /v1/models`` the
router's health probe asks, and records every request. ``fail_status`` answers the next
requests with an Ollama error; ``drop_after`` cuts a stream after that many lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

WORDS = ("Hello", " from", " a", " native", " Ollama", ".")
"""What every chat or generate answer says, one line per word when streamed."""


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    json: Any


@dataclass
class FakeOllama:
    """The running fake: its base URL (with ``/v1``, as configured) and what it saw."""

    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    fail_status: int | None = None
    """Answer every generation request with this status and an Ollama error body."""
    drop_after: int | None = None
    """Cut a stream after this many lines (the connection is aborted)."""
    pause_after: int | None = None
    """Stay silent after this many lines of a stream until ``resume`` is set."""
    resume: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        """What an endpoint's ``base_url`` points at: the server's OpenAI root."""
        return f"http://127.0.0.1:{self.port}/v1"

    def generation(self, path: str) -> list[Any]:
        """The bodies received on ``path``, in order."""
        return [request.json for request in self.requests if request.path == path]


def _line(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body) + b"\n"


def _piece(body: dict[str, Any], text: str, done: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"model": body["model"], "created_at": "2026-12-01T00:00:00Z"}
    if "messages" in body:
        line["message"] = {"role": "assistant", "content": text}
    else:
        line["response"] = text
    line["done"] = done
    if done:
        line.update(done_reason="stop", total_duration=10, prompt_eval_count=7, eval_count=6)
    return line


async def _generation(fake: FakeOllama, request: web.Request) -> web.StreamResponse:
    body = await request.json()
    fake.requests.append(Recorded(request.path, body))
    if fake.fail_status is not None:
        return web.json_response({"error": "the fake failed"}, status=fake.fail_status)
    if body.get("stream") is False:
        return web.json_response(_piece(body, "".join(WORDS), True))
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    lines = [_line(_piece(body, word, False)) for word in WORDS]
    lines.append(_line(_piece(body, "", True)))
    for index, line in enumerate(lines):
        if fake.drop_after is not None and index == fake.drop_after:
            assert request.transport is not None
            request.transport.abort()
            return response
        if fake.pause_after is not None and index == fake.pause_after:
            await fake.resume.wait()
        await response.write(line)
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def _embed(fake: FakeOllama, request: web.Request) -> web.Response:
    body = await request.json()
    fake.requests.append(Recorded(request.path, body))
    if request.path == "/api/embeddings":
        return web.json_response({"embedding": [0.5, 0.25]})
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    vectors = [[float(len(text)), 1.0] for text in texts]
    return web.json_response({"model": body["model"], "embeddings": vectors})


@asynccontextmanager
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    """Run a fake Ollama server on a free loopback port for the block."""
    fake = FakeOllama()
    app = web.Application()

    async def generation(request: web.Request) -> web.StreamResponse:
        return await _generation(fake, request)

    async def embedding(request: web.Request) -> web.Response:
        return await _embed(fake, request)

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "native-llama"}]})

    app.router.add_post("/api/chat", generation)
    app.router.add_post("/api/generate", generation)
    app.router.add_post("/api/embed", embedding)
    app.router.add_post("/api/embeddings", embedding)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    try:
        yield fake
    finally:
        await runner.cleanup()

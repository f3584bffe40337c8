"""A fake OpenAI-compatible model server whose answers a test releases one by one.

Placement tests need requests that hold a slot for exactly as long as the test says: each chat
request to a :class:`GatedModel` with ``hold`` set waits until :meth:`GatedModel.release` lets it
through, so "every slot is taken" is a state the test creates, not a timing it hopes for. It
speaks real HTTP on 127.0.0.1 (aiohttp), buffered and SSE, answers the router's health probes,
records what it received, and can fail before its first byte or in the middle of a stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.harness import wait_until


@dataclass
class Seen:
    """One request as the fake received it."""

    path: str
    body: Any
    headers: dict[str, str]

    @property
    def text(self) -> str:
        """The last message's content (chat), or ``""``."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return str(messages[-1].get("content", "")) if messages else ""


@dataclass(eq=False)
class GatedModel:
    """One fake server. Set ``hold`` and its chat answers wait for :meth:`release`."""

    name: str
    hold: bool = False
    fail_before_first_byte: int = 0
    """So many chat requests are answered 500 at once (then the count runs down)."""
    fail_mid_stream: int = 0
    """So many streams are cut after their first content event."""
    throttle: int = 0
    """So many chat requests are answered 429 with ``Retry-After: throttle_seconds`` (after
    being held, when ``hold`` is set)."""
    throttle_seconds: int = 1
    stream_padding: int = 0
    """Bytes of extra content events a stream sends before it ends (a long answer)."""
    answer_body: bytes | None = None
    """When set, a buffered chat answer is exactly these bytes (status 200, JSON)."""
    stream_script: list[bytes | None] | None = None
    """When set, a stream writes exactly these bytes, one write each, and ends; ``None`` in it
    waits for :meth:`release` (the writes before it have reached the router by then)."""
    seen: list[Seen] = field(default_factory=list)
    probe_gate: asyncio.Event | None = None
    """When set, ``GET /v1/models`` (the router's health probe) answers only once the event is
    set: "not probed yet" is a state the test holds, not a race it hopes to win."""
    probes: int = 0
    """``GET /v1/models`` requests received (answered or held)."""
    active: int = 0
    peak: int = 0
    embedding_active: int = 0
    peak_embeddings: int = 0
    cancelled: int = 0
    """Chat requests whose client (the router) went away while they were held."""
    _waiting: list[asyncio.Future[None]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chats(self) -> list[Seen]:
        """The chat requests received, in arrival order."""
        return [s for s in self.seen if s.path.endswith("/chat/completions")]

    @property
    def held(self) -> int:
        """Chat requests waiting for :meth:`release` now."""
        return sum(not f.done() for f in self._waiting)

    def release(self, count: int = 1) -> None:
        """Let the ``count`` oldest held requests answer."""
        for future in [f for f in self._waiting if not f.done()][:count]:
            future.set_result(None)

    def open(self) -> None:
        """Stop holding, and release every held request."""
        self.hold = False
        self.release(len(self._waiting))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/api/generate", self._generate)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.open()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        self.probes += 1
        if self.probe_gate is not None:
            await self.probe_gate.wait()
        return web.json_response({"object": "list", "data": [{"id": self.name}]})

    async def _generate(self, request: web.Request) -> web.Response:
        """Ollama's load request: held like a chat answer (a load takes its time)."""
        body = orjson.loads(await request.read())
        self.seen.append(Seen(request.path, body, dict(request.headers)))
        if self.hold:
            future = asyncio.get_running_loop().create_future()
            self._waiting.append(future)
            await future
        return web.json_response({"model": self.name, "response": "", "done": True})

    async def _hold(self) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await future
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def _embeddings(self, request: web.Request) -> web.Response:
        """An embeddings answer, held like a chat answer."""
        body = orjson.loads(await request.read())
        self.seen.append(Seen(request.path, body, dict(request.headers)))
        self.embedding_active += 1
        self.peak_embeddings = max(self.peak_embeddings, self.embedding_active)
        try:
            if self.hold:
                await self._hold()
        finally:
            self.embedding_active -= 1
        vector = {"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}
        return web.json_response({"object": "list", "model": self.name, "data": [vector]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.seen.append(Seen(request.path, body, dict(request.headers)))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.hold:
                await self._hold()
            if self.fail_before_first_byte:
                self.fail_before_first_byte -= 1
                return web.json_response({"error": {"message": "boom"}}, status=500)
            if self.throttle:
                self.throttle -= 1
                return web.json_response(
                    {"error": {"message": "busy"}},
                    status=429,
                    headers={"Retry-After": str(self.throttle_seconds)},
                )
            text = f"{self.name} answers"
            if body.get("stream"):
                return await self._stream(request, text)
            if self.answer_body is not None:
                return web.Response(body=self.answer_body, content_type="application/json")
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": self.name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                }
            )
        finally:
            self.active -= 1

    async def _stream(self, request: web.Request, text: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if self.stream_script is not None:
            for step in self.stream_script:
                if step is None:
                    await self._hold()
                else:
                    await response.write(step)
            await response.write_eof()
            return response

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": self.name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        await response.write(event({"role": "assistant", "content": ""}))
        await response.write(event({"content": text}))
        padding = event({"content": "x" * 4000})
        for _ in range(self.stream_padding // len(padding)):
            await response.write(padding)
        if self.fail_mid_stream:
            self.fail_mid_stream -= 1
            assert request.transport is not None
            request.transport.abort()
            return response
        await response.write(event({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


@asynccontextmanager
async def gated(*names: str) -> AsyncIterator[list[GatedModel]]:
    """Start one :class:`GatedModel` per name for the block."""
    async with AsyncExitStack() as stack:
        models = []
        for name in names:
            model = GatedModel(name)
            await model.start()
            stack.push_async_callback(model.stop)
            models.append(model)
        yield models


async def wait_held(model: GatedModel, count: int, *, timeout: float = 5.0) -> None:
    """Until ``model`` holds ``count`` requests."""
    await wait_until(lambda: model.held == count, timeout=timeout, what=f"{count} held")

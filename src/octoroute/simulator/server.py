"""One simulated OpenAI-compatible model server on a real loopback socket.

The server runs with ``handler_cancellation=True`` so that a client going away cancels the
handler at whatever it is awaiting: that is how a disconnect is observed even while the
handler sleeps before its first byte, and it is the same mode the router runs in.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, Self

import orjson
from aiohttp import web

from octoroute.simulator.behaviour import (
    Behaviour,
    Drop,
    Hang,
    HttpError,
    RecordedRequest,
    error_body,
)
from octoroute.simulator.completion import (
    chat_view_of_completion,
    complete,
    json_body,
    sse_events,
    text_json_body,
    text_sse_events,
)
from octoroute.simulator.embeddings import embeddings_answer
from octoroute.simulator.engine import Engine, ServerFull
from octoroute.simulator.replies import prompt_tokens
from octoroute.simulator.responses import (
    chat_view_of_responses,
    response_events,
    response_json,
)
from octoroute.simulator.status import (
    STATUS_PATHS,
    context_overflow,
    model_entry,
    status_answer,
)

if TYPE_CHECKING:
    from types import TracebackType


CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
RESPONSES_PATH = "/v1/responses"
EMBEDDINGS_PATH = "/v1/embeddings"
MODELS_PATH = "/v1/models"
_JSON = "application/json"
_SHUTDOWN_TIMEOUT = 1.0
"""Handlers are cancelled before clean-up, so this only bounds a misbehaving one."""

_Answer = Callable[[web.Request, RecordedRequest], Awaitable[web.StreamResponse]]


async def _pause(seconds: float) -> None:
    # Zero delays must not even yield, so default-configured tests run at full speed.
    if seconds > 0:
        await asyncio.sleep(seconds)


async def _forever() -> NoReturn:
    await asyncio.Event().wait()
    raise AssertionError("unreachable: an unset Event never completes")


def _error_response(fault: HttpError) -> web.Response:
    if isinstance(fault.body, bytes | str):
        return web.Response(
            status=fault.status, body=fault.body, content_type="text/plain", headers=fault.headers
        )
    body = fault.body
    if body is None:
        reason = web.Response(status=fault.status).reason
        kind = "invalid_request_error" if fault.status < 500 else "server_error"
        body = error_body(f"Simulated error: {fault.status} {reason}", type_=kind)
    return web.Response(
        status=fault.status, body=orjson.dumps(body), content_type=_JSON, headers=fault.headers
    )


def _invalid(
    message: str, *, param: str | None, status: int = 400, code: str | None = None
) -> HttpError:
    body = error_body(message, type_="invalid_request_error", code=code, param=param)
    return HttpError(status, body)


async def listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` as every simulated server runs (handler cancellation, no
    access log, a short shutdown); nothing is left running when the address is taken."""
    runner = web.AppRunner(
        app, handler_cancellation=True, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


class SimulatedModel:
    """A scriptable OpenAI-compatible server for one model: the fake upstream of the tests.

    ``behaviour`` may be edited at any time and applies from the next request. Every request is
    appended to ``requests`` (health probes and unknown paths included) before it is answered.
    The ``wait_for_*`` helpers let a test wait on a condition with a deadline instead of sleeping.
    A stopped server can be started again, on the same port to simulate a restart.
    """

    def __init__(
        self,
        name: str,
        *,
        label: str = "",
        behaviour: Behaviour | None = None,
        config_keys: dict[str, object] | None = None,
    ) -> None:
        self.name = name
        self.label = label
        """The tier text shown in demo replies, e.g. ``fast`` in ``[fast · sim-llama-8b]``."""
        self.behaviour = behaviour if behaviour is not None else Behaviour()
        self.config_keys: dict[str, object] = dict(config_keys or {})
        """Extra endpoint keys (``priority``, ``weight``...) for ``fleet_config_toml``."""
        self.engine = Engine(loaded=not self.behaviour.start_cold)
        """Slots, residency and prefix cache (all off unless ``behaviour`` asks for them)."""
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.client_disconnected = asyncio.Event()
        """Set when a client closed its connection before its response was complete."""
        self._in_flight: Counter[str] = Counter()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._stopping = False
        self._created = int(time.time())

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "stopped"
        return f"SimulatedModel({self.name!r}, label={self.label!r}, {where})"

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port``; port 0 picks a free one, read it back from ``port``."""
        if self._runner is not None:
            raise RuntimeError(f"{self!r} is already running")
        app = web.Application()
        for (method, path), handler in self.routes().items():
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        runner = await listen(app, host, port)
        self._runner = runner
        self._stopping = False
        self._host = host
        self._port = int(runner.addresses[0][1])

    def routes(
        self,
    ) -> dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        """Each ``(method, path)`` this model's server answers, and its handler (any other path
        is answered 404 by :meth:`handle`)."""
        table: dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            ("POST", CHAT_PATH): self._chat,
            ("POST", COMPLETIONS_PATH): self._completions,
            ("POST", RESPONSES_PATH): self._responses,
            ("POST", EMBEDDINGS_PATH): self._embeddings,
            ("GET", MODELS_PATH): self._models,
        }
        for route in sorted(set().union(*STATUS_PATHS.values())):
            table[route] = self._status
        return table

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer ``request`` as this model's own server would, recorded like any request: how a
        server hosting several models (``simulator.multimodel``) hands one to its model."""
        handler = self.routes().get((request.method, request.path), self._unknown)
        return await handler(request)

    async def stop(self) -> None:
        """Stop listening and end every in-flight response at once; a no-op when stopped.

        In-flight handlers are cancelled first (clients see the connection close), so a hung
        request never holds up a test's teardown. Those cancellations are not counted as client
        disconnects.
        """
        runner = self._runner
        if runner is None:
            return
        self._runner = None
        self.abort_in_flight()
        await runner.cleanup()

    def abort_in_flight(self) -> None:
        """Cancel every request being answered (not counted as client disconnects): the first
        step of stopping whichever server hosts this model."""
        self._stopping = True
        for task in list(self._handlers):
            task.cancel()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (kept after ``stop`` so a restart can reuse it)."""
        if self._port is None:
            raise RuntimeError(f"{self!r} was never started")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI base URL clients and router configs use, ``http://host:port/v1``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    # -- observation --------------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/chat/completions`` requests, in arrival order."""
        return [r for r in self.requests if r.path == CHAT_PATH]

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/completions`` requests, in arrival order."""
        return [r for r in self.requests if r.path == COMPLETIONS_PATH]

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/responses`` requests, in arrival order."""
        return [r for r in self.requests if r.path == RESPONSES_PATH]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/embeddings`` requests, in arrival order."""
        return [r for r in self.requests if r.path == EMBEDDINGS_PATH]

    @property
    def health_checks(self) -> int:
        """How many ``GET /v1/models`` requests arrived."""
        return sum(1 for r in self.requests if r.path == MODELS_PATH)

    @property
    def in_flight(self) -> int:
        """Chat requests whose handler has started and whose response is not finished."""
        return self._in_flight[CHAT_PATH]

    def reset(self) -> None:
        """Forget recorded requests and disconnects; ``behaviour`` is kept."""
        self.requests.clear()
        self.disconnects = 0
        self.client_disconnected.clear()

    async def wait_for_requests(
        self,
        n: int,
        timeout: float = 5.0,
        *,
        path: str | None = CHAT_PATH,
    ) -> None:
        """Return once ``n`` requests to ``path`` (any path when ``None``) were recorded."""

        def arrived() -> int:
            return sum(1 for r in self.requests if path is None or r.path == path)

        await self._wait_until(lambda: arrived() >= n, timeout, lambda: f"{arrived()}/{n} {path}")

    async def wait_for_in_flight(self, n: int = 1, timeout: float = 5.0) -> None:
        """Return once ``n`` chat requests are being served at the same time."""
        await self._wait_until(
            lambda: self.in_flight >= n, timeout, lambda: f"{self.in_flight}/{n} in flight"
        )

    async def wait_for_idle(self, timeout: float = 5.0) -> None:
        """Return once no chat request is being served."""
        await self._wait_until(
            lambda: self.in_flight == 0, timeout, lambda: f"{self.in_flight} still in flight"
        )

    async def wait_for_disconnects(self, n: int = 1, timeout: float = 5.0) -> None:
        """Return once ``n`` clients went away before their response was complete."""
        await self._wait_until(
            lambda: self.disconnects >= n, timeout, lambda: f"{self.disconnects}/{n} disconnects"
        )

    async def _wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float,
        state: Callable[[], str],
    ) -> None:
        if predicate():
            return
        waiter: tuple[Callable[[], bool], asyncio.Future[None]]
        waiter = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter[1], timeout)
        except TimeoutError:
            raise TimeoutError(f"{self!r}: after {timeout} s only {state()}") from None
        finally:
            self._waiters.remove(waiter)

    def _changed(self) -> None:
        # Synchronous so it can run in a cancelled handler's ``finally`` without awaiting.
        for predicate, future in self._waiters:
            if not future.done() and predicate():
                future.set_result(None)

    def _note_disconnect(self, record: RecordedRequest | None) -> None:
        if record is not None:
            record.client_disconnected = True
        self.disconnects += 1
        self.client_disconnected.set()
        self._changed()

    # -- request handling ---------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._answer_chat)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._answer_completion)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        if not self.behaviour.native_responses:
            return await self._serve(request, self._answer_unknown)
        return await self._serve(request, self._answer_responses)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._answer_embeddings)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._answer_models)

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._answer_unknown)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self._answer_status)

    async def _serve(self, request: web.Request, answer: _Answer) -> web.StreamResponse:
        """Record the request, track it as in flight, and tell a disconnect from our own drops."""
        arrived = time.monotonic()
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._in_flight[request.path] += 1
        self._changed()
        record: RecordedRequest | None = None
        try:
            body = await request.read()
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                headers=request.headers,
                body=body,
                json=_parse(body),
                received_at=arrived,
            )
            self.requests.append(record)
            self._changed()
            return await answer(request, record)
        except asyncio.CancelledError:
            if not self._stopping and not (record is not None and record.dropped):
                self._note_disconnect(record)
            raise
        finally:
            if task is not None:
                self._handlers.discard(task)
            self._in_flight[request.path] -= 1
            if record is not None:
                record.finished_at = time.monotonic()
            self._changed()

    async def _send(
        self, request: web.Request, record: RecordedRequest, response: web.Response
    ) -> web.Response:
        # Written here rather than by aiohttp after return, so "in flight" ends when the last
        # byte is out and a failed write is seen as a disconnect.
        record.status = response.status
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionResetError:
            self._note_disconnect(record)
            return response
        record.completed = True
        return response

    async def _drop(self, request: web.Request, record: RecordedRequest) -> NoReturn:
        """Abort the connection and wait for aiohttp to cancel this handler."""
        record.dropped = True
        transport = request.transport
        if transport is not None:
            # abort() discards unsent bytes; let already-written chunks reach the socket first.
            for _ in range(100):
                if transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0)
            transport.abort()
        await _forever()

    async def _answer_models(self, request: web.Request, record: RecordedRequest) -> web.Response:
        behaviour = self.behaviour
        if behaviour.health_hang:
            await _forever()
        await _pause(behaviour.health_latency)
        if behaviour.health_status != 200:
            return await self._send(
                request, record, _error_response(HttpError(behaviour.health_status))
            )
        model = model_entry(self.name, self._created, behaviour)
        listing = orjson.dumps({"object": "list", "data": [model]})
        return await self._send(request, record, web.Response(body=listing, content_type=_JSON))

    async def _answer_status(self, request: web.Request, record: RecordedRequest) -> web.Response:
        """A status path of this model's kind (``simulator.status``); 404 for other kinds."""
        behaviour = self.behaviour
        if behaviour.health_hang or behaviour.status_hang:
            await _forever()
        await _pause(behaviour.health_latency)
        answer = status_answer(
            request.method,
            request.path,
            record.body,
            self.name,
            behaviour,
            self.engine.snapshot(behaviour),
        )
        if answer is None:
            return await self._answer_unknown(request, record)
        status, body, content_type = answer
        response = web.Response(status=status, body=body)
        response.content_type, _, charset = content_type.partition("; charset=")
        if charset:
            response.charset = charset
        return await self._send(request, record, response)

    async def _answer_unknown(self, request: web.Request, record: RecordedRequest) -> web.Response:
        message = f"Unknown request URL: {request.method} {request.path}"
        fault = _invalid(message, param=None, status=404, code="unknown_url")
        return await self._send(request, record, _error_response(fault))

    async def _answer_chat(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        return await self._answer(request, record, text=False)

    async def _answer_completion(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        return await self._answer(request, record, text=True)

    async def _answer_embeddings(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        """Deterministic vectors (``simulator.embeddings``), after the same faults, latency and
        ``strict_model`` check as a chat answer; never streamed."""
        behaviour = self.behaviour
        body = record.json
        if not isinstance(body, dict):
            problem = _invalid("We could not parse the JSON body of your request.", param=None)
            return await self._send(request, record, _error_response(problem))
        fault = behaviour.take_fault()
        if isinstance(fault, Hang):
            await _forever()
        await _pause(behaviour.latency)
        if behaviour.strict_model and body.get("model") != self.name:
            message = f"The model `{body.get('model')}` does not exist."
            fault = _invalid(message, param="model", status=404, code="model_not_found")
        if isinstance(fault, HttpError):
            return await self._send(request, record, _error_response(fault))
        if isinstance(fault, Drop):
            await self._drop(request, record)
        answer = embeddings_answer(body, name=self.name, dimensions=behaviour.embedding_dimensions)
        if isinstance(answer, str):
            return await self._send(
                request, record, _error_response(_invalid(answer, param="input"))
            )
        return await self._send(
            request, record, web.Response(body=orjson.dumps(answer), content_type=_JSON)
        )

    async def _answer_responses(
        self, request: web.Request, record: RecordedRequest
    ) -> web.StreamResponse:
        return await self._answer(request, record, text=False, responses=True)

    async def _answer(
        self,
        request: web.Request,
        record: RecordedRequest,
        *,
        text: bool,
        responses: bool = False,
    ) -> web.StreamResponse:
        """A chat or (``text``) a text completion or (``responses``) a native Responses answer:
        the same faults, delays and generator, framed as each API frames it."""
        behaviour = self.behaviour
        body = record.json
        if not isinstance(body, dict):
            problem = _invalid("We could not parse the JSON body of your request.", param=None)
            return await self._send(request, record, _error_response(problem))
        record.stream = body.get("stream") is True
        # Consumed on arrival, so "fail the next N" counts requests in the order they came in.
        fault = behaviour.take_fault()
        if isinstance(fault, Hang):
            await _forever()
        await _pause(behaviour.latency)
        if behaviour.strict_model and body.get("model") != self.name:
            message = f"The model `{body.get('model')}` does not exist."
            fault = _invalid(message, param="model", status=404, code="model_not_found")
        if isinstance(fault, HttpError):
            return await self._send(request, record, _error_response(fault))
        if isinstance(fault, Drop) and fault.after_chunks is None:
            await self._drop(request, record)
        drop = fault if isinstance(fault, Drop) else None
        seen = chat_view_of_responses(body) if responses else body
        if text:
            seen = chat_view_of_completion(body)
        overflow = self._overflow(seen, record)
        if overflow is not None:
            return await self._send(request, record, _error_response(overflow))
        try:
            async with self.engine.slot(behaviour):
                await self._warm_up(seen, record)
                return await self._generate(request, record, body, seen, drop, text, responses)
        except ServerFull:
            return await self._send(request, record, _error_response(HttpError.rate_limited()))

    def _overflow(self, seen: dict[str, Any], record: RecordedRequest) -> HttpError | None:
        """The kind's own refusal of a prompt over ``context_window``; Ollama cuts it instead."""
        behaviour = self.behaviour
        if behaviour.context_window is None:
            return None
        record.prompt_tokens = prompt_tokens(seen)
        limit = seen.get("max_tokens", seen.get("max_completion_tokens"))
        asked = limit if isinstance(limit, int) and not isinstance(limit, bool) else 0
        refusal = context_overflow(behaviour, record.prompt_tokens, asked)
        if refusal is not None:
            return HttpError(*refusal)
        record.truncated = record.prompt_tokens > behaviour.context_window
        return None

    async def _warm_up(self, seen: dict[str, Any], record: RecordedRequest) -> None:
        """What happens before the first token once a slot is held: a cold load, then the
        prefill of whatever part of the prompt the prefix cache does not hold."""
        behaviour = self.behaviour
        record.cold_load = await self.engine.ensure_loaded(behaviour)
        record.waited = time.monotonic() - record.received_at
        if behaviour.prefill_seconds_per_1k_tokens > 0:
            messages = seen.get("messages")
            prefill = self.engine.prefill(messages if isinstance(messages, list) else [], behaviour)
            record.prompt_tokens = prefill.prompt_tokens
            record.cached_tokens = prefill.cached_tokens
            uncached = prefill.prompt_tokens - prefill.cached_tokens
            await _pause(behaviour.prefill_seconds_per_1k_tokens * uncached / 1000)

    async def _generate(
        self,
        request: web.Request,
        record: RecordedRequest,
        body: dict[str, Any],
        seen: dict[str, Any],
        drop: Drop | None,
        text: bool,
        responses: bool,
    ) -> web.StreamResponse:
        """The answer itself, framed as the API asked for it."""
        behaviour = self.behaviour
        completion = complete(seen, behaviour, name=self.name, label=self.label)
        if responses:
            if record.stream:
                return await self._stream(
                    request, record, response_events(completion, behaviour), drop
                )
            payload = response_json(completion)
            tokens = completion.usage["completion_tokens"]
            return await self._json(request, record, payload, tokens, drop)
        if record.stream:
            events = (text_sse_events if text else sse_events)(body, completion, behaviour)
            return await self._stream(request, record, events, drop)
        payload = (text_json_body if text else json_body)(completion)
        tokens = completion.usage["completion_tokens"]
        return await self._json(request, record, payload, tokens, drop)

    async def _json(
        self,
        request: web.Request,
        record: RecordedRequest,
        payload: bytes,
        tokens: int,
        drop: Drop | None,
    ) -> web.StreamResponse:
        behaviour = self.behaviour
        await _pause(behaviour.first_token_delay + behaviour.token_gap * max(0, tokens - 1))
        if drop is not None:
            partial = web.StreamResponse(status=200)
            partial.content_type = _JSON
            partial.content_length = len(payload)
            await partial.prepare(request)
            record.status = 200
            await partial.write(payload[: len(payload) // 2])
            await self._drop(request, record)
        return await self._send(request, record, web.Response(body=payload, content_type=_JSON))

    async def _stream(
        self,
        request: web.Request,
        record: RecordedRequest,
        events: list[tuple[float, bytes]],
        drop: Drop | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        try:
            await response.prepare(request)
            record.status = 200
            for index, (delay, event) in enumerate(events):
                if (
                    drop is not None
                    and drop.after_chunks is not None
                    and index >= drop.after_chunks
                ):
                    await self._drop(request, record)
                await _pause(delay)
                await response.write(event)
                record.chunks_sent += 1
                record.chunk_times.append(time.monotonic())
            if drop is not None:
                await self._drop(request, record)
            await response.write_eof()
        except ConnectionResetError:
            self._note_disconnect(record)
            return response
        record.completed = True
        return response

"""``GET /admin/events``: the dashboard's live feed, as server-sent events.

* ``event: decision`` after each request ends (the decision object of ``GET /admin/state``);
* ``event: fleet`` (the ``fleet`` object) when an instance's health, ejection, load or status
  changed, checked every :data:`TICK_SECONDS` so changes are coalesced to at most four events a
  second, and at least every :data:`FLEET_EVERY_SECONDS` anyway;
* ``event: lagged`` (``{"dropped": n}``) when this stream lost decisions because its reader
  fell behind: re-read ``GET /admin/state`` to catch up;
* ``: keepalive`` comments after :data:`KEEPALIVE_SECONDS` without anything else.

A request never waits for a stream: recording a decision appends it to each open stream's
bounded backlog (:data:`BACKLOG`, the oldest kept, later ones dropped and counted) and sets a
flag; the stream's own task formats and writes. A reader that takes no bytes for
:data:`WRITE_TIMEOUT_SECONDS` is dropped. A stream ends when its client goes away (noticed
within a tick), when ``[ui]`` is switched off by a reload, and when the server shuts down (the
application's shutdown closes every stream first, so none holds up the drain).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

import orjson
from aiohttp import web

from octoroute.api.common import RUNTIME
from octoroute.api.dashboard_state import (
    decision_state,
    ensure_enabled,
    fleet_fingerprint,
    fleet_state,
)
from octoroute.errors import ServerOverloaded
from octoroute.observability.decisions import Decided
from octoroute.runtime import Runtime

TICK_SECONDS: Final = 0.25
FLEET_EVERY_SECONDS: Final = 5.0
KEEPALIVE_SECONDS: Final = 2.0
BACKLOG: Final = 256
"""Decisions a stream may have waiting to be written; more are dropped (``lagged``)."""
WRITE_TIMEOUT_SECONDS: Final = 30.0
MAX_STREAMS: Final = 64
"""Event streams open at once per process; more are refused 503 (each is a task and a
connection; a dashboard needs one per open page)."""
FLEET_STATS_WINDOW: Final = 300
"""The window of the per-instance numbers in ``fleet`` events."""


class _Stream:
    """One open event stream: its backlog of decisions and the flag that wakes its task."""

    __slots__ = ("backlog", "closed", "dropped", "wake")

    def __init__(self) -> None:
        self.backlog: deque[Decided] = deque()
        self.dropped = 0
        self.closed = False
        self.wake = asyncio.Event()

    def push(self, item: Decided) -> None:
        """The dashboard's listener: on the request path, so an append and a flag."""
        if len(self.backlog) >= BACKLOG:
            self.dropped += 1
        else:
            self.backlog.append(item)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class Streams:
    """The open event streams of one application, closed together at shutdown."""

    def __init__(self) -> None:
        self.open: set[_Stream] = set()

    async def close_all(self, app: web.Application) -> None:
        """``on_shutdown``: end every stream, so the graceful drain does not wait for them."""
        for stream in self.open:
            stream.close()


STREAMS: Final = web.AppKey("octoroute_event_streams", Streams)


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _fleet_event(runtime: Runtime) -> bytes:
    stats = runtime.dashboard.traffic.instance_stats(FLEET_STATS_WINDOW, time.time())
    return _event("fleet", fleet_state(runtime, stats))


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /admin/events``: the live feed until the client leaves or the server stops."""
    runtime = request.app[RUNTIME]
    ensure_enabled(runtime, request)
    streams = request.app[STREAMS]
    if len(streams.open) >= MAX_STREAMS:
        raise ServerOverloaded(
            f"This router already serves {MAX_STREAMS} dashboard event streams; close another "
            "dashboard page, or poll GET /admin/state instead.",
            reason="event_streams",
            retry_after=5.0,
        )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    stream = _Stream()
    dashboard = runtime.dashboard
    dashboard.listeners.append(stream.push)
    streams.open.add(stream)
    try:
        await _pump(request, response, runtime, stream)
    except (ConnectionError, TimeoutError):
        pass  # the client went away, or stopped reading: its stream ends here
    finally:
        streams.open.discard(stream)
        dashboard.listeners.remove(stream.push)
    return response


async def _pump(
    request: web.Request, response: web.StreamResponse, runtime: Runtime, stream: _Stream
) -> None:
    """Write the stream's events until it is closed or its client is gone."""
    loop = asyncio.get_running_loop()
    await _write(response, b"retry: 2000\n\n" + _fleet_event(runtime))
    last_fleet = last_write = last_check = loop.time()
    fingerprint = fleet_fingerprint(runtime)
    while True:
        if not stream.backlog and not stream.dropped:
            try:
                async with asyncio.timeout(TICK_SECONDS):
                    await stream.wake.wait()
            except TimeoutError:
                pass
        stream.wake.clear()
        transport = request.transport
        if stream.closed or transport is None or transport.is_closing():
            return
        if not runtime.config.ui.enabled:
            return
        chunks: list[bytes] = []
        if stream.dropped:
            chunks.append(_event("lagged", {"dropped": stream.dropped}))
            stream.dropped = 0
        dashboard = runtime.dashboard
        show, limit = dashboard.show_prompts, dashboard.preview_chars
        while stream.backlog:
            item = stream.backlog.popleft()
            chunks.append(_event("decision", decision_state(item, show, limit)))
        now = loop.time()
        if now - last_check >= TICK_SECONDS:
            last_check = now
            current = fleet_fingerprint(runtime)
            if current != fingerprint or now - last_fleet >= FLEET_EVERY_SECONDS:
                fingerprint = current
                last_fleet = now
                chunks.append(_fleet_event(runtime))
        if not chunks and now - last_write >= KEEPALIVE_SECONDS:
            chunks.append(b": keepalive\n\n")
        if chunks:
            await _write(response, b"".join(chunks))
            last_write = now


async def _write(response: web.StreamResponse, data: bytes) -> None:
    """Write ``data``; a reader that takes none of it for the timeout ends its stream."""
    async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
        await response.write(data)


def add_routes(app: web.Application) -> None:
    """Register this module's route and the application's set of open streams."""
    streams = Streams()
    app[STREAMS] = streams
    app.on_shutdown.append(streams.close_all)
    app.router.add_get("/admin/events", events)

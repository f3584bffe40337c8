"""Shared test helpers: a simulated fleet and the router in front of it, over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from octoroute.api.common import RUNTIME
from octoroute.api.reload import RELOADER
from octoroute.app import create_app
from octoroute.config import Config, parse_config
from octoroute.fleet.endpoint import Endpoint
from octoroute.reload import Reloader
from octoroute.runtime import Runtime
from octoroute.serving import make_runner
from octoroute.simulator import SimulatedFleet, SimulatedModel, fleet_config_toml


def standard_fleet() -> SimulatedFleet:
    """Two fast replicas with distinct names, one balanced, one deep; no delays."""
    return SimulatedFleet(
        fast=[SimulatedModel("sim-fast-a"), SimulatedModel("sim-fast-b")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )


@dataclass
class RouterHandle:
    """A running router: its URL and its runtime (fleet, metrics) for white-box assertions."""

    url: str
    runtime: Runtime
    config: Config
    reloader: Reloader | None = None
    """``POST /admin/reload``'s reloader (``running_router`` sets it)."""

    @property
    def v1(self) -> str:
        """The base URL OpenAI clients use."""
        return self.url + "/v1"


@asynccontextmanager
async def running_router(config: Config) -> AsyncIterator[RouterHandle]:
    """Serve ``config`` on an ephemeral loopback port for the duration of the block."""
    app = create_app(config)
    runner = make_runner(app, config.server, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield RouterHandle(f"http://{host}:{port}", app[RUNTIME], config, app[RELOADER])
    finally:
        await runner.cleanup()


def config_for(fleet: SimulatedFleet, **options: object) -> Config:
    """A validated config pointing at ``fleet`` (options as for ``fleet_config_toml``)."""
    text = fleet_config_toml(fleet, **options)  # type: ignore[arg-type]
    return parse_config(text)


def with_server(config: Config, **server: object) -> Config:
    """``config`` with these ``[server]`` keys changed (e.g. ``stream_keepalive_seconds=0.05``)."""
    return msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, **server))


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition"
) -> None:
    """Poll ``condition`` on the event loop until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


async def within(awaitable: Awaitable[object], seconds: float = 5.0) -> object:
    """Await with a deadline so a hung test fails with a clear error instead of a timeout."""
    return await asyncio.wait_for(awaitable, seconds)


async def first_probe_round(router: RouterHandle) -> None:
    """Wait for the start-up probes, so a late probe success cannot reset a failure count."""
    await asyncio.wait_for(router.runtime.prober.wait_rounds(1), 5)


def endpoint(router: RouterHandle, name: str) -> Endpoint:
    """The one endpoint instance called ``name`` (tests use names unique in their fleet)."""
    (only,) = router.runtime.fleet.by_name(name)
    return only


async def raw_exchange(
    url: str, method: str, path: str, *, head: str = "", body: bytes = b""
) -> tuple[str, dict[str, str], bytes]:
    """One request on its own connection, read to EOF: ``(status line, headers, body)``.

    Raw bytes both ways, so a test sends exactly the head lines it means (``head``, each ending
    in CRLF; no ``Content-Type`` unless given, as ``curl`` sends none without ``-d``) and sees
    exactly what is on the wire (after the head of a HEAD response, say). A ``body`` gets its
    ``Content-Length``.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
            f"{head}{length}\r\n".encode()
            + body
        )
        await writer.drain()
        data = await within(reader.read())
    finally:
        writer.close()
        await writer.wait_closed()
    assert isinstance(data, bytes)
    answer_head, _, answer_body = data.partition(b"\r\n\r\n")
    status_line, *lines = answer_head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, answer_body

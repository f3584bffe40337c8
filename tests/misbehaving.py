"""Test helpers for upstreams that misbehave, and for the router run as a real process.

The simulator (``octoroute.simulator``) speaks well-formed HTTP through aiohttp. The faults a
router must survive are below that level: endless bodies, keep-alive connections closed at the
moment they are reused, servers that stall, compress although asked not to, or refuse our key.
``raw_server`` runs a scripted coroutine per TCP connection on 127.0.0.1 so a test can write
exactly the bytes it means. ``router_process`` runs ``python -m octoroute serve`` as a child
process, for what only a process shows: its peak memory (``peak_rss_bytes``) and its behaviour
under a lowered file-descriptor limit.

Everything here is bounded in time (deadlines, never sleep-and-hope) and binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import resource
import signal
import ssl
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import aiohttp

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]
"""What a raw server does with one accepted connection: read, write, hang or close at will."""

OK_BODY = b'{"id":"x","object":"chat.completion","choices":[]}'
MODELS_BODY = b'{"object":"list","data":[{"id":"raw-model","object":"model"}]}'


class Request(NamedTuple):
    """One request as a raw server read it."""

    head: bytes
    """The request line and headers, up to and including the blank line."""
    body: bytes

    @property
    def method(self) -> str:
        """``GET``, ``POST``, ..."""
        return self.head.split(b" ", 1)[0].decode("latin-1")

    @property
    def path(self) -> str:
        """The request target, e.g. ``/v1/chat/completions``."""
        return self.head.split(b" ", 2)[1].decode("latin-1")

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower().encode("latin-1") + b":"
        for line in self.head.split(b"\r\n")[1:]:
            if line.lower().startswith(wanted):
                return line.split(b":", 1)[1].strip().decode("latin-1")
        return None


@dataclass
class RawServer:
    """A running raw server: its address and what it has seen so far."""

    port: int = 0
    tls: bool = False
    connections: int = 0
    """Connections accepted so far."""
    active: int = 0
    """Connections whose script is still running."""
    peak_active: int = 0
    """The most connections whose scripts ran at the same time."""
    requests: list[Request] = field(default_factory=list)
    """Every request read through ``read_request(reader, server)``, in order."""
    closed_by_peer: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when ``read_request`` found a connection closed by the client."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """A gate scripts may wait on; the test sets it."""

    @property
    def base_url(self) -> str:
        """The ``base_url`` an endpoint pointing here is configured with."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/v1"


@asynccontextmanager
async def raw_server(
    script: Script, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[RawServer]:
    """Serve ``script`` once per accepted connection on a free 127.0.0.1 port for the block.

    The writer is closed when the script returns; ``ConnectionError`` from the script (the client
    went away) ends it quietly. With ``ssl_context`` the server speaks TLS.
    """
    state = RawServer(tls=ssl_context is not None)
    writers: set[asyncio.StreamWriter] = set()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.add(writer)
        state.connections += 1
        state.active += 1
        state.peak_active = max(state.peak_active, state.active)
        try:
            await script(reader, writer, state)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Cancelled by our own teardown; ending quietly spares asyncio's stream callback
            # (Python 3.11) from logging the cancelled task as an error.
            pass
        finally:
            state.active -= 1
            writers.discard(writer)
            tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        # Scripts that hang (by design) must not keep the test waiting for them.
        for writer in writers:
            writer.transport.abort()
        for task in tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        await asyncio.wait_for(server.wait_closed(), 5)


async def read_request(
    reader: asyncio.StreamReader, server: RawServer | None = None
) -> Request | None:
    """One ``Content-Length`` framed request, or ``None`` once the client closed the connection.

    With ``server``, the request is recorded in ``server.requests`` (and a close in
    ``server.closed_by_peer``).
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
        if server is not None:
            server.closed_by_peer.set()
        return None
    request = Request(head, body)
    if server is not None:
        server.requests.append(request)
    return request


def response(
    body: bytes,
    *,
    status: str = "200 OK",
    content_type: str = "application/json",
    headers: tuple[str, ...] = (),
) -> bytes:
    """A complete ``Content-Length`` framed response; ``headers`` are extra ``Name: value`` lines."""
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a ``Transfer-Encoding: chunked`` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


async def answer_models_or(
    request: Request, writer: asyncio.StreamWriter, otherwise: Callable[[], Awaitable[None]]
) -> None:
    """Answer a health probe (``GET .../models``) well; run ``otherwise`` for anything else.

    The router probes every endpoint at start-up: a fake upstream that fails its probes is
    marked unhealthy before the test's request arrives.
    """
    if request.method == "GET" and request.path.endswith("/models"):
        writer.write(response(MODELS_BODY))
        await writer.drain()
    else:
        await otherwise()


async def flood(
    writer: asyncio.StreamWriter, head: bytes, filler: bytes, sent: list[int], limit: int
) -> None:
    """Write ``head``, then ``filler`` as 256 KiB chunks of a chunked body until ``limit`` bytes
    went out (``sent[0]`` counts them), as fast as the reader takes them: an endless answer."""
    writer.write(head)
    piece = chunk(filler * (262144 // len(filler)))
    while sent[0] < limit:
        writer.write(piece)
        sent[0] += len(piece)
        await writer.drain()


Answer = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]
"""Writes the answer to one chat (non-probe) request."""


def chat_script(answer: Answer) -> Script:
    """A keep-alive upstream: health probes answered well, every other request by ``answer``."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while (request := await read_request(reader, server)) is not None:
            await answer_models_or(request, writer, functools.partial(answer, request, writer))

    return script


def config_toml(
    fast: list[str],
    balanced: list[str] | None = None,
    deep: list[str] | None = None,
    *,
    endpoint_keys: str = "",
    extra: str = "",
) -> str:
    """A router config (TOML) with these base URLs per tier (``balanced`` and ``deep`` default
    to ``fast``'s), strategy ``rule``.

    Endpoints are named ``<tier>-<n>`` and, within a tier, the first has the highest priority so
    a test knows which one is tried first. ``endpoint_keys`` is added to every endpoint table,
    ``extra`` appended as further sections.
    """
    lines = ["[server]", 'host = "127.0.0.1"', "port = 0"]
    for tier, urls in (("fast", fast), ("balanced", balanced or fast), ("deep", deep or fast)):
        for number, url in enumerate(urls):
            lines += [
                f"[[models.{tier}]]",
                f'name = "{tier}-{number}"',
                f'base_url = "{url}"',
                "max_tokens = 64",
                f"priority = {len(urls) - number}",
                endpoint_keys,
            ]
    lines += ["[routing]", 'strategy = "rule"', extra]
    return "\n".join(lines) + "\n"


# --- the router as a process ---------------------------------------------------------------------


@dataclass
class RouterProcess:
    """A router started by ``router_process``: where it listens and what it logged."""

    url: str
    """``http://127.0.0.1:PORT``, without ``/v1``."""
    pid: int
    log: deque[str]
    """The last lines the router wrote to stderr (its log), for failure messages."""

    @property
    def v1(self) -> str:
        """The base URL OpenAI clients use."""
        return self.url + "/v1"


_LISTENING = re.compile(r"listening.*?(http://127\.0\.0\.1:\d+)")


@asynccontextmanager
async def router_process(
    config_text: str,
    *,
    nofile: int | None = None,
    nofile_hard: int | None = None,
    env: dict[str, str] | None = None,
    start_timeout: float = 20.0,
) -> AsyncIterator[RouterProcess]:
    """Run ``python -m octoroute serve`` on ``config_text`` (TOML) on a free 127.0.0.1 port.

    Yields once ``GET /health`` answers; afterwards sends SIGTERM, and SIGKILL if the router has
    not exited within 10 s. ``nofile`` lowers the child's ``RLIMIT_NOFILE`` (soft, and hard
    unless ``nofile_hard`` gives that), so a test can run it out of file descriptors. ``env`` adds
    environment variables.
    """
    with tempfile.TemporaryDirectory(prefix="octoroute-test-") as directory:
        path = os.path.join(directory, "config.toml")
        _write(path, config_text)

        def lower_limits() -> None:  # runs in the child between fork and exec
            if nofile is not None:
                hard = nofile if nofile_hard is None else nofile_hard
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        child_env = {**os.environ, **(env or {})}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "octoroute",
            "serve",
            "--config",
            path,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=child_env,
            preexec_fn=lower_limits if nofile is not None else None,
        )
        log: deque[str] = deque(maxlen=200)
        found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def drain() -> None:
            # Read the log to its end: a child blocked on a full stderr pipe would stall.
            assert process.stderr is not None
            async for raw in process.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                log.append(line)
                match = _LISTENING.search(line)
                if match and not found.done():
                    found.set_result(match.group(1))
            if not found.done():
                found.set_exception(RuntimeError("the router exited before listening"))

        drainer = asyncio.ensure_future(drain())
        try:
            try:
                url = await asyncio.wait_for(asyncio.shield(found), start_timeout)
                await _wait_healthy(url, time.monotonic() + start_timeout)
            except (TimeoutError, RuntimeError) as error:
                lines = "\n".join(log)
                raise AssertionError(
                    f"router did not start ({error!r}); its log:\n{lines}"
                ) from None
            yield RouterProcess(url, process.pid, log)
        finally:
            await _stop(process)
            await asyncio.wait_for(drainer, 5)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


async def _wait_healthy(url: str, deadline: float) -> None:
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/health") as answer:
                    await answer.read()
                    return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise TimeoutError("GET /health never answered") from None
                await asyncio.sleep(0.02)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.wait_for(process.wait(), 5)


def _status_kib(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(f"{field_name} not in /proc/{pid}/status")


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory so far (``VmHWM`` in ``/proc/PID/status``), in bytes."""
    return _status_kib(pid, "VmHWM")


def rss_bytes(pid: int) -> int:
    """The process's resident memory now (``VmRSS``), in bytes."""
    return _status_kib(pid, "VmRSS")

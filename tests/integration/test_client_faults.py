"""Misbehaving clients on 127.0.0.1: none of them may exhaust the router or flood its log.

Each test bounds its wait with a deadline. Timeouts are configured small (0.5 s) so the suite
stays fast; what is asserted is that the router acts by the deadline, not the exact instant.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import resource
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from octoroute.config import Config
from octoroute.simulator import SimulatedFleet, SimulatedModel, fleet_config_toml
from tests.harness import RouterHandle, config_for, running_router

CHAT = "/v1/chat/completions"
HELLO = {"model": "fast", "messages": [{"role": "user", "content": "hello"}]}


def _with_server(config: Config, **server: object) -> Config:
    return msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, **server))


def _port(router: RouterHandle) -> int:
    return int(router.url.rsplit(":", 1)[1])


async def _read_response(
    reader: asyncio.StreamReader, seconds: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: status, headers (lower-case), body;
    fails unless it is complete within ``seconds``."""
    async with asyncio.timeout(seconds):
        return await _response(reader)


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _closed_by_server(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closes the connection; fails if it has not within ``seconds``."""
    started = time.monotonic()
    try:
        rest = await asyncio.wait_for(reader.read(), seconds)
    except ConnectionResetError:
        rest = b""
    assert rest == b"", rest
    return time.monotonic() - started


@asynccontextmanager
async def _raw(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


@pytest.fixture
async def quick_router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    """A router that gives a client 0.5 s to send its request head; bodies up to 64 KiB."""
    config = _with_server(
        config_for(fleet, strategy="rule"),
        client_header_timeout_seconds=0.5,
        keepalive_idle_seconds=5.0,
        max_request_bytes=65536,
    )
    async with running_router(config) as handle:
        yield handle


# -- request-head deadline and keep-alive idleness ---------------------------------------------


async def test_a_client_that_sends_nothing_is_closed_after_the_header_timeout(
    quick_router: RouterHandle,
) -> None:
    async with _raw(_port(quick_router)) as (reader, _):
        waited = await _closed_by_server(reader, 3.0)
    assert waited >= 0.3


async def test_a_slowloris_client_is_closed_by_the_header_deadline(
    quick_router: RouterHandle,
) -> None:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
    async with _raw(_port(quick_router)) as (reader, writer):

        async def drip() -> None:
            for byte in head:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.1)  # the misbehaviour under test: one byte per 100 ms

        dripping = asyncio.ensure_future(drip())
        try:
            waited = await _closed_by_server(reader, 3.0)
        finally:
            dripping.cancel()
    assert waited >= 0.3


async def test_a_kept_alive_connection_idle_past_keepalive_idle_seconds_is_closed(
    fleet: SimulatedFleet,
) -> None:
    config = _with_server(
        config_for(fleet, strategy="rule"),
        client_header_timeout_seconds=5.0,
        keepalive_idle_seconds=0.5,
    )
    async with running_router(config) as router, _raw(_port(router)) as (reader, writer):
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await _read_response(reader)
        assert status == 200
        assert headers.get("connection") != "close"
        waited = await _closed_by_server(reader, 3.0)
    assert waited >= 0.3


async def test_the_header_deadline_does_not_cut_a_kept_alive_connection_between_requests(
    quick_router: RouterHandle,
) -> None:
    async with _raw(_port(quick_router)) as (reader, writer):
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = await _read_response(reader)
        assert status == 200
        # Idle for twice the header timeout, well inside keepalive_idle_seconds: still open.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 1.0)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = await _read_response(reader)
        assert status == 200


# -- oversized requests -------------------------------------------------------------------------


async def test_a_content_length_over_the_limit_is_refused_at_once_and_the_connection_closed(
    quick_router: RouterHandle,
) -> None:
    async with _raw(_port(quick_router)) as (reader, writer):
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
        )
        started = time.monotonic()
        status, headers, body = await _read_response(reader, 2.0)
        assert time.monotonic() - started < 1.0
        assert status == 413
        assert headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "request_too_large"
        await _closed_by_server(reader, 2.0)


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_closed(
    quick_router: RouterHandle,
) -> None:
    async with _raw(_port(quick_router)) as (reader, writer):
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            b'{"model": "fast", "messages": ['
        )
        started = time.monotonic()
        status, headers, body = await _read_response(reader, 3.0)
        waited = time.monotonic() - started
        assert status == 408
        assert headers["connection"] == "close"
        error = json.loads(body)["error"]
        assert error["code"] == "request_timeout"
        assert "client_header_timeout_seconds" in error["message"]
        assert 0.4 < waited < 2.0  # one idle period (0.5 s), checked at most once more
        await _closed_by_server(reader, 2.0)


async def test_a_slow_but_steady_body_is_not_cut(quick_router: RouterHandle) -> None:
    body = json.dumps({"model": "fast", "messages": [{"role": "user", "content": "x" * 60}]})
    raw = body.encode()
    async with _raw(_port(quick_router)) as (reader, writer):
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(raw)
        )
        # 1.2 s in all, longer than the 0.5 s period, but a byte every 0.2 s.
        for start in range(0, len(raw), len(raw) // 6 + 1):
            writer.write(raw[start : start + len(raw) // 6 + 1])
            await writer.drain()
            await asyncio.sleep(0.2)
        status, _, answer = await _read_response(reader, 3.0)
    assert status == 200, answer


# -- the Server header --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/health", None, 200),
        ("GET", "/v1/models", None, 200),
        ("GET", "/metrics", None, 200),
        ("POST", CHAT, HELLO, 200),
        ("POST", CHAT, {**HELLO, "stream": True}, 200),
        ("POST", CHAT, {"model": "fast"}, 400),
        ("GET", "/nowhere", None, 404),
        ("GET", CHAT, None, 405),
        ("POST", CHAT, {**HELLO, "padding": "x" * 100_000}, 413),
    ],
)
async def test_every_answer_names_the_server_as_octoroute_without_a_version(
    quick_router: RouterHandle,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: object,
    status: int,
) -> None:
    async with session.request(method, quick_router.url + path, json=body) as response:
        await response.read()
        assert response.status == status
        assert response.headers["Server"] == "octoroute"


async def test_the_400_for_unparseable_http_names_the_server_too(
    quick_router: RouterHandle,
) -> None:
    async with _raw(_port(quick_router)) as (reader, writer):
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = await _read_response(reader)
    assert status == 400
    assert headers["server"] == "octoroute"
    assert json.loads(body)["error"]["code"] == "malformed_request"


# -- max_in_flight ------------------------------------------------------------------------------


async def test_past_max_in_flight_a_request_gets_503_at_once_and_health_still_answers() -> None:
    slow = SimulatedModel("sim-slow")
    fleet = SimulatedFleet(
        fast=[slow], balanced=[SimulatedModel("sim-b")], deep=[SimulatedModel("sim-d")]
    )
    async with fleet:
        config = _with_server(config_for(fleet, strategy="rule"), max_in_flight=3)
        async with running_router(config) as router, aiohttp.ClientSession() as session:
            slow.behaviour.latency = 1.0
            held = [
                asyncio.ensure_future(session.post(router.url + CHAT, json=HELLO)) for _ in range(3)
            ]
            await slow.wait_for_in_flight(3)

            started = time.monotonic()
            async with session.post(router.url + CHAT, json=HELLO) as refused:
                body = await refused.json()
                assert refused.status == 503
                assert refused.headers["Retry-After"] == "1"
                assert refused.headers["x-request-id"]
            assert time.monotonic() - started < 0.5
            assert body["error"]["code"] == "server_overloaded"
            assert _overloads(router) == 1

            for path in ("/health", "/metrics", "/models", "/v1/models"):
                async with session.get(router.url + path) as operator_view:
                    assert operator_view.status == 200, path

            for request in held:
                async with await asyncio.wait_for(request, 5) as finished:
                    assert finished.status == 200
            slow.behaviour.latency = 0.0
            for _ in range(4):
                async with session.post(router.url + CHAT, json=HELLO) as answered:
                    assert answered.status == 200
            assert _overloads(router) == 1


def _overloads(router: RouterHandle) -> float:
    value = router.runtime.metrics.overload_rejections.labels("max_in_flight")._value.get()
    return float(value)


# -- the router as its own process: file-descriptor exhaustion, what reaches the log -----------


class _RouterProcess:
    """``python -m octoroute serve`` in a child process, its JSON log lines collected."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, object]] = []
        self.raw: list[bytes] = []
        self.url = ""
        self.port = 0

    async def collect(self) -> None:
        assert self.process.stderr is not None
        while raw := await self.process.stderr.readline():
            self.raw.append(raw)
            try:
                self.lines.append(json.loads(raw))
            except json.JSONDecodeError:
                self.lines.append({"event": "<not JSON>", "raw": raw.decode(errors="replace")})

    def events(self, event: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("event") == event]

    async def wait_for(self, event: str, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events(event)) < count:
            if self.process.returncode is not None:
                raise AssertionError(f"router exited before logging {event!r}: {self.lines}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count}x {event!r} within {timeout} s: {self.lines}")
            await asyncio.sleep(0.01)


@asynccontextmanager
async def _router_process(
    fleet: SimulatedFleet, tmp_path: Path, *, server: str = "", nofile: int | None = None
) -> AsyncIterator[_RouterProcess]:
    """The router serving ``fleet`` in a child process, JSON logs, ``[server]`` keys added."""
    text = fleet_config_toml(fleet, strategy="rule", extra='[observability]\nlog_format = "json"\n')
    text = text.replace("[server]\n", f"[server]\n{server}\n", 1)
    path = tmp_path / "router.toml"
    path.write_text(text)

    def limit_descriptors() -> None:  # runs in the child, before exec
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "octoroute",
        "serve",
        "--config",
        str(path),
        "--port",
        "0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=limit_descriptors,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    router = _RouterProcess(process)
    collecting = asyncio.ensure_future(router.collect())
    try:
        await router.wait_for("listening")
        (listening,) = router.events("listening")
        router.url = str(listening["url"])
        router.port = int(str(listening["port"]))
        yield router
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 15)
        await asyncio.wait_for(collecting, 5)


async def test_idle_sockets_past_the_descriptor_limit_do_not_lock_out_a_normal_client(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    # Out of descriptors, libuv (uvloop) accepts and at once closes what waits in the backlog, so
    # a client arriving then sees a reset and retries, as HTTP clients do. Before the head
    # deadline the idle sockets held every descriptor for good and every retry failed.
    async with _router_process(
        fleet, tmp_path, server="client_header_timeout_seconds = 0.5", nofile=128
    ) as router:
        idle = [await asyncio.open_connection("127.0.0.1", router.port) for _ in range(200)]
        try:
            started = time.monotonic()
            status = await _served_with_retries(router.url, deadline=started + 3.0)
            assert status == 200
        finally:
            for _, writer in idle:
                writer.close()
        assert not [raw for raw in router.raw if b"Traceback" in raw]


async def _served_with_retries(url: str, *, deadline: float) -> int:
    """The status of one chat request, retried on connection errors until ``deadline``."""
    while True:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(url + CHAT, json=HELLO) as response,
            ):
                return response.status
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)  # a client's retry back-off, not synchronisation


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nabc",
    b"GET / HTTP/9.9\r\n\r\n",
]


async def test_malformed_requests_get_a_json_400_and_only_a_few_warning_lines(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    async with _router_process(fleet, tmp_path) as router:

        async def one(data: bytes) -> None:
            async with _raw(router.port) as (reader, writer):
                writer.write(data)
                status, headers, body = await _read_response(reader)
                assert status == 400, body
                assert headers["server"] == "octoroute"
                assert json.loads(body)["error"]["type"] == "invalid_request_error"

        for _ in range(20):
            await asyncio.gather(*(one(data) for data in MALFORMED * 2))
        async with (
            aiohttp.ClientSession() as session,
            session.get(router.url + "/health") as response,
        ):
            assert response.status == 200

    assert not [raw for raw in router.raw if b"Traceback" in raw]
    assert not [line for line in router.lines if line.get("level") == "error"]
    warnings = router.events("malformed HTTP request answered 400")
    assert 1 <= len(warnings) <= 3
    assert warnings[0]["level"] == "warning"


async def test_content_codings_are_decoded_or_refused_with_the_ones_that_are(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    """gzip is decoded; a gzip header on bytes that are not gzip is the client's 400, with no
    traceback in the log; a coding the router does not decode (br and zstd, which the HTTP
    parser itself refuses, a list, an unknown name) is a 415 listing those it does. Every
    answer carries a request id, the parser's included."""
    body = json.dumps(HELLO).encode()
    async with _router_process(fleet, tmp_path) as router, aiohttp.ClientSession() as session:

        async def post(data: bytes, coding: str) -> tuple[int, dict[str, str], dict[str, Any]]:
            headers = {"Content-Type": "application/json", "Content-Encoding": coding}
            async with session.post(
                router.url + CHAT, data=data, headers=headers, compress=None
            ) as response:
                named = {name.lower(): value for name, value in response.headers.items()}
                return response.status, named, await response.json()

        status, headers, answer = await post(gzip.compress(body), "gzip")
        assert status == 200, answer
        status, headers, answer = await post(body, "gzip")
        assert status == 400
        assert answer["error"]["code"] == "invalid_request"
        assert "x-request-id" in headers
        for coding in ("br", "zstd", "gzip, br", "x-unknown"):
            status, headers, answer = await post(body, coding)
            assert status == 415, coding
            assert headers["accept-encoding"] == "gzip, deflate"
            assert answer["error"]["code"] == "unsupported_media_type"
            assert repr(coding) in answer["error"]["message"]
            assert "install" not in answer["error"]["message"]
            assert "x-request-id" in headers
        async with _raw(router.port) as (reader, writer):
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            status, raw_headers, _ = await _read_response(reader)
        assert status == 400
        assert raw_headers["x-request-id"]

    assert not [raw for raw in router.raw if b"Traceback" in raw]
    assert not [line for line in router.lines if line.get("level") == "error"]


async def test_an_oversized_body_is_logged_with_the_413_the_client_got(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    async with (
        _router_process(fleet, tmp_path, server="max_request_bytes = 1024") as router,
        aiohttp.ClientSession() as session,
    ):
        big = {"model": "fast", "messages": [{"role": "user", "content": "x" * 4096}]}
        async with session.post(router.url + CHAT, json=big) as response:
            assert response.status == 413
        async with _raw(router.port) as (reader, writer):
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
            )
            status, _, _ = await _read_response(reader)
            assert status == 413
        async with _raw(router.port) as (reader, writer):  # no Content-Length: read, then cut
            chunk = json.dumps(big).encode()
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + f"{len(chunk):x}\r\n".encode()
                + chunk
                + b"\r\n"
            )
            status, headers, _ = await _read_response(reader)
            assert status == 413
            assert headers["connection"] == "close"
            await _closed_by_server(reader, 2.0)
        await router.wait_for("request", 3)
    assert [line["status"] for line in router.events("request")] == [413, 413, 413]
